package main

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
)

// serveLoadRSSKB: bale serve stays under 128 MiB however many clients pull (issue #17).
const serveLoadRSSKB = 128 << 10

// rangeSpan is the bytes each request of the serve-load row asks for.
const rangeSpan = 1 << 20

// rangeReq is one Range request of a load: a blob of a repository, from off on.
type rangeReq struct {
	repo string
	d    digest.Digest
	off  int64
	size int64 // of the blob
}

// serveLoads are the two loads of the serve-load row: 256 concurrent 1 MiB Range requests
// spread over the largest layer of the bundle, and 200 concurrent ones over its 200 largest
// layers (the first MiB of each; fewer layers are cycled).
func serveLoads(bundle string) (spread, many []rangeReq, largest int64, err error) {
	c, err := archive.ReadCatalog(bundle)
	if err != nil {
		return nil, nil, 0, err
	}
	var layers []rangeReq
	seen := map[digest.Digest]bool{}
	for _, name := range c.RepoNames() {
		for _, d := range c.RepoLayers(name) {
			if !seen[d] && c.Carried(d) {
				seen[d] = true
				layers = append(layers, rangeReq{repo: name, d: d, size: c.Blobs[d].Size})
			}
		}
	}
	if len(layers) == 0 {
		return nil, nil, 0, fmt.Errorf("%s carries no layer", bundle)
	}
	slices.SortFunc(layers, func(a, b rangeReq) int {
		if a.size != b.size {
			return cmp.Compare(b.size, a.size)
		}
		return strings.Compare(a.d.String(), b.d.String())
	})
	big := layers[0]
	for k := range 256 {
		r := big
		if big.size > rangeSpan {
			r.off = int64(k) * (big.size - rangeSpan) / 255
		}
		spread = append(spread, r)
	}
	for k := range 200 {
		many = append(many, layers[k%len(layers)])
	}
	return spread, many, big.size, nil
}

// load sends reqs to addr all at once (each on its own connection) and waits for every body;
// every answer must be a 206 of the asked bytes.
func load(addr string, reqs []rangeReq) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(reqs), DisableCompression: true}}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	errs := make(chan error, len(reqs))
	var wg sync.WaitGroup
	for _, rq := range reqs {
		wg.Go(func() {
			end := min(rq.off+rangeSpan, rq.size) - 1
			req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/blobs/%s", addr, rq.repo, rq.d), nil)
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rq.off, end))
			<-start
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && (resp.StatusCode != http.StatusPartialContent || n != end-rq.off+1) {
				err = fmt.Errorf("%s bytes %d-%d: %s, %d bytes", rq.d, rq.off, end, resp.Status, n)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	return took, <-errs
}

// serveLoadRun starts a server (start), puts one load on it and returns its RSS before, its
// peak RSS and the time the load took; each load gets a fresh server, so that the peaks are
// its own.
func serveLoadRun(start func() (*daemon, error), reqs []rangeReq) (idleKB, peakKB int64, took time.Duration, err error) {
	d, err := start()
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.stop()
	fmt.Sscanf(procField(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid), "VmRSS"), "%d kB", &idleKB)
	if took, err = load(d.addr, reqs); err != nil {
		return 0, 0, 0, err
	}
	return idleKB, d.peakRSS(), took, nil
}

// serveLoad is the serve-load row: the peak RSS of bale serve of the bundle under the two
// loads of serveLoads, next to docker-registry serving the unpacked storage X.
func (b *bench) serveLoad() {
	r := row{name: "serve-load", ratio: "–", target: fmt.Sprintf("bale serve peak RSS < %d MiB", serveLoadRSSKB>>10), result: "n/a", bale: "n/a", ref: "n/a"}
	defer func() { b.rows = append(b.rows, r) }()
	spread, many, largest, err := serveLoads(b.bundle)
	if err != nil {
		r.bale = err.Error()
		return
	}
	b.logf("serve-load: 256 Range requests over a %s layer, 200 over %d layers, on bale serve and docker-registry", mib(largest), len(many))
	side := func(start func() (*daemon, error)) (string, int64, error) {
		var cells []string
		var peak int64
		for _, l := range []struct {
			what string
			reqs []rangeReq
		}{
			{fmt.Sprintf("256 × 1 MiB Range over the largest layer (%s)", mib(largest)), spread},
			{"200 × 1 MiB Range over 200 layers", many},
		} {
			idle, p, took, err := serveLoadRun(start, l.reqs)
			if err != nil {
				return "", 0, err
			}
			peak = max(peak, p)
			cells = append(cells, fmt.Sprintf("%s: %.3f s, peak RSS %.1f MiB (%.1f MiB idle)", l.what, took.Seconds(), float64(p)/1024, float64(idle)/1024))
		}
		return cells[0] + "; " + cells[1], peak, nil
	}
	bale, balePeak, err := side(func() (*daemon, error) { return b.startServe(b.bundle) })
	if err != nil {
		r.bale, r.result, b.failed = "bale serve: "+err.Error(), "FAIL", true
		return
	}
	r.bale = "`bale serve B.tar.zst`: " + bale
	r.result = okMiss(balePeak < serveLoadRSSKB)
	if _, err := exec.LookPath("docker-registry"); err != nil {
		r.ref = "n/a (docker-registry not installed)"
		return
	}
	ref, refPeak, err := side(func() (*daemon, error) { return b.startRegistry(b.unX) })
	if err != nil {
		r.ref = "docker-registry: " + err.Error()
		return
	}
	r.ref = "`docker-registry` serving X (unpacked): " + ref
	r.ratio = fmt.Sprintf("%.3f (peak RSS)", float64(balePeak)/float64(refPeak))
}
