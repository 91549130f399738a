package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
)

// pullClients is how many clients pull the whole pool at once in the serve-pulls row.
const pullClients = 16

// manifestAccept is what a pulling client accepts for a manifest.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// puller pulls images from one server as a registry client does: each tag's manifest, every
// child of an index, then every blob, each hashed and checked against its digest.
type puller struct {
	addr   string
	client *http.Client
}

// get fetches path and checks that its body hashes to d (when d is set); it returns the body
// when keep is set (manifests), else discards it.
func (p *puller) get(path string, d digest.Digest, accept string, keep bool) ([]byte, digest.Digest, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return nil, "", err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	h := sha256.New()
	var body []byte
	if keep {
		if body, err = io.ReadAll(resp.Body); err != nil {
			return nil, "", fmt.Errorf("GET %s: %w", path, err)
		}
		h.Write(body)
	} else if _, err := io.Copy(h, resp.Body); err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", path, err)
	}
	got := digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if d != "" && got != d {
		return nil, "", fmt.Errorf("GET %s: body is %s", path, got)
	}
	return body, got, nil
}

// pullRef pulls one tag (or manifest by digest) of repo and everything below it; it returns
// the bytes it read.
func (p *puller) pullRef(repo, ref string, d digest.Digest) (int64, error) {
	raw, got, err := p.get("/v2/"+repo+"/manifests/"+ref, d, manifestAccept, true)
	if err != nil {
		return 0, err
	}
	m, err := layout.ParseManifest(raw)
	if err != nil {
		return 0, fmt.Errorf("%s:%s: %w", repo, ref, err)
	}
	if m.Digest != got {
		return 0, fmt.Errorf("%s:%s: manifest digest %s, body %s", repo, ref, m.Digest, got)
	}
	n := int64(len(raw))
	for _, c := range m.Manifests {
		k, err := p.pullRef(repo, c.Digest.String(), c.Digest)
		if err != nil {
			return 0, err
		}
		n += k
	}
	for _, b := range m.Blobs() {
		if layout.NonDistributable(b) {
			continue
		}
		if _, _, err := p.get("/v2/"+repo+"/blobs/"+b.Digest.String(), b.Digest, "", false); err != nil {
			return 0, err
		}
		n += b.Size
	}
	return n, nil
}

// pullAll runs clients pullers at once, each pulling every ref, and returns the wall time and
// the bytes read in all.
func pullAll(addr string, refs []layout.Ref, clients int) (time.Duration, int64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	var mu sync.Mutex
	var total int64
	t0 := time.Now()
	for range clients {
		wg.Go(func() {
			p := &puller{addr: addr, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}}
			defer p.client.CloseIdleConnections()
			var n int64
			for _, r := range refs {
				k, err := p.pullRef(r.Repo, r.Tag, "")
				if err != nil {
					errs <- err
					return
				}
				n += k
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	return took, total, <-errs
}

// busyCore keeps one core busy until stop is closed (the "one core busy elsewhere" variant).
func busyCore(stop <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := uint64(1)
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
}

// servePulls is the serve-pulls row (issue #19, goal 5): 16 clients each pull every tag of
// the bundle at once, hashing every blob, from bale serve of the bundle and from
// docker-registry serving the unpacked storage X; quiet, then with one core kept busy.
func (b *bench) servePulls() {
	r := row{name: "serve-pulls", ratio: "–", target: "bale serve ≥ docker-registry throughput (ratio of times ≤ 1.0)", result: "n/a", bale: "n/a", ref: "n/a"}
	defer func() { b.rows = append(b.rows, r) }()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		r.ref = "n/a (docker-registry not installed)"
		return
	}
	c, err := archive.ReadCatalog(b.bundle)
	if err != nil {
		r.bale = err.Error()
		return
	}
	var refs []layout.Ref
	for _, e := range c.Entries() {
		if e.Tag != "" {
			refs = append(refs, layout.Ref{Repo: e.Repo, Tag: e.Tag})
		}
	}
	b.logf("serve-pulls: %d clients pull %d tags each from bale serve and docker-registry", pullClients, len(refs))
	one := func(start func() (*daemon, error), busy bool) (time.Duration, int64, error) {
		d, err := start()
		if err != nil {
			return 0, 0, err
		}
		defer d.stop()
		if busy {
			stop := make(chan struct{})
			defer close(stop)
			go busyCore(stop)
		}
		return pullAll(d.addr, refs, pullClients)
	}
	var bale, ref, ratios []string
	ok := true
	for _, busy := range []bool{false, true} {
		what := "quiet"
		if busy {
			what = "one core busy"
		}
		// docker-registry first, then bale serve, then docker-registry again: the reference
		// is the better of its two runs, so that a load change favours it, not bale.
		r1, n, err := one(func() (*daemon, error) { return b.startRegistry(b.unX) }, busy)
		if err != nil {
			r.ref = "docker-registry: " + err.Error()
			return
		}
		bt, bn, err := one(func() (*daemon, error) { return b.startServe(b.bundle) }, busy)
		if err != nil {
			r.bale, r.result, b.failed = "bale serve: "+err.Error(), "FAIL", true
			return
		}
		if bn != n {
			r.bale, r.result, b.failed = fmt.Sprintf("bale serve gave %d bytes, docker-registry %d", bn, n), "FAIL", true
			return
		}
		r2, _, err := one(func() (*daemon, error) { return b.startRegistry(b.unX) }, busy)
		if err != nil {
			r.ref = "docker-registry: " + err.Error()
			return
		}
		rt := min(r1, r2)
		mbps := func(t time.Duration) float64 { return float64(n) / (1 << 20) / t.Seconds() }
		bale = append(bale, fmt.Sprintf("%s: %.2f s (%.0f MiB/s)", what, bt.Seconds(), mbps(bt)))
		ref = append(ref, fmt.Sprintf("%s: %.2f s, %.2f s (%.0f MiB/s best)", what, r1.Seconds(), r2.Seconds(), mbps(rt)))
		ratios = append(ratios, fmt.Sprintf("%s %.3f", what, bt.Seconds()/rt.Seconds()))
		ok = ok && bt <= rt
	}
	r.bale = fmt.Sprintf("%d × full pull of %d tags from `bale serve B.tar.zst`: %s", pullClients, len(refs), strings.Join(bale, "; "))
	r.ref = "`docker-registry` serving X (unpacked): " + strings.Join(ref, "; ")
	r.ratio = strings.Join(ratios, ", ")
	r.result = okMiss(ok)
}
