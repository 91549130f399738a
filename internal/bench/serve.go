package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// serveTarget: skopeo copy --all from bale serve takes at most 1.2x the time from
// docker-registry serving the unpacked storage.
const serveTarget = 1.2

// daemon is a server the bench started; stop kills it by PID.
type daemon struct {
	cmd  *exec.Cmd
	addr string
}

func (d *daemon) stop() {
	if d != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
	}
}

// peakRSS is the daemon's VmHWM in KB.
func (d *daemon) peakRSS() int64 {
	var kb int64
	fmt.Sscanf(procField(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid), "VmHWM"), "%d kB", &kb)
	return kb
}

// startRegistry serves root with docker-registry on a free 127.0.0.1 port.
func (b *bench) startRegistry(root string) (*daemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(b.work, "registry.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %q}, maintenance: {uploadpurging: {enabled: false}}}\nhttp: {addr: %q}\n", root, addr), 0o644); err != nil {
		return nil, err
	}
	d := &daemon{cmd: exec.Command("docker-registry", "serve", cfg), addr: addr}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	for range 200 {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return d, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	d.stop()
	return nil, fmt.Errorf("docker-registry on %s did not start", addr)
}

// startServe runs bale serve of bundle on a free port.
func (b *bench) startServe(bundle string) (*daemon, error) {
	d := &daemon{cmd: exec.Command(b.bale, "serve", "--addr", "127.0.0.1:0", bundle)}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stderr)
	if sc.Scan() {
		if m := regexp.MustCompile(`on http://(\S+) `).FindStringSubmatch(sc.Text()); m != nil {
			d.addr = m[1]
			go func() {
				for sc.Scan() {
				}
			}()
			return d, nil
		}
	}
	d.stop()
	return nil, fmt.Errorf("bale serve did not start: %s", sc.Text())
}

// servePull times skopeo copy --all of every serveEvery-th image from addr into a dir: image,
// removed (untimed) after each copy.
func (b *bench) servePull(addr string) (float64, error) {
	out := filepath.Join(b.work, "PULL")
	defer os.RemoveAll(out)
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	if err := warm(); err != nil {
		return 0, err
	}
	var total time.Duration
	for i, im := range b.images {
		if i%b.serveEvery != 0 {
			continue
		}
		dir := filepath.Join(out, fmt.Sprint(i))
		start := time.Now()
		r := execute(b.ctx, "", "skopeo", "copy", "-q", "--all", "--src-tls-verify=false", "--src-no-creds",
			"docker://"+addr+"/"+im.String(), "dir:"+dir)
		total += time.Since(start)
		if !r.ok() {
			return 0, fmt.Errorf("skopeo copy from %s: %v: %s", addr, r.err, r.tail())
		}
		os.RemoveAll(dir) // untimed: the disk holds one image at a time
	}
	return total.Seconds(), nil
}

// serve compares pulling from bale serve of the bundle with pulling from docker-registry
// serving the unpacked storage X.
func (b *bench) serve() {
	r := row{name: "serve", ratio: "–", target: fmt.Sprintf("≤ %.2f", serveTarget), result: "n/a", bale: "n/a", ref: "n/a"}
	defer func() { b.rows = append(b.rows, r) }()
	for _, tool := range []string{"skopeo", "docker-registry"} {
		if _, err := exec.LookPath(tool); err != nil {
			r.bale = "n/a (" + tool + " not installed)"
			return
		}
	}
	reg, err := b.startRegistry(b.unX)
	if err != nil {
		r.ref = err.Error()
		return
	}
	defer reg.stop()
	srv, err := b.startServe(b.bundle)
	if err != nil {
		r.bale = err.Error()
		return
	}
	defer srv.stop()
	n := (len(b.images) + b.serveEvery - 1) / b.serveEvery
	b.logf("pulling %d images from docker-registry and from bale serve", n)
	refSecs, err := b.servePull(reg.addr)
	if err != nil {
		r.ref = err.Error()
		return
	}
	baleSecs, err := b.servePull(srv.addr)
	if err != nil {
		r.bale, r.result, b.failed = err.Error(), "FAIL", true
		return
	}
	first := b.firstByte(srv.addr)
	which := "every tag"
	if b.serveEvery > 1 {
		which = fmt.Sprintf("every %dth", b.serveEvery)
	}
	r.bale = fmt.Sprintf("`skopeo copy --all` of %d images (%s) from `bale serve B.tar.zst`: %.3f s, bale serve max RSS %.0f MiB, first byte of a blob %s", n, which, baleSecs, float64(srv.peakRSS())/1024, first)
	r.ref = fmt.Sprintf("the same from `docker-registry` serving X (unpacked): %.3f s", refSecs)
	ratio := baleSecs / refSecs
	r.ratio, r.result = fmt.Sprintf("%.3f", ratio), okMiss(ratio <= serveTarget)
}

// firstByte times the first byte of the biggest blob of the first image, three tries, best.
func (b *bench) firstByte(addr string) string {
	im := b.images[0]
	resp, err := http.Get("http://" + addr + "/v2/" + im.repo + "/manifests/" + im.tag)
	if err != nil {
		return "?"
	}
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	err = jsonDecode(resp, &m)
	if err != nil || len(m.Layers) == 0 {
		return "?"
	}
	best := time.Hour
	for range 3 {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+im.repo+"/blobs/"+m.Layers[0].Digest, nil)
		req.Header.Set("Range", "bytes=0-0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "?"
		}
		buf := make([]byte, 1)
		resp.Body.Read(buf)
		resp.Body.Close()
		best = min(best, time.Since(start))
	}
	return strings.TrimSpace(fmt.Sprintf("%.1f ms", float64(best.Microseconds())/1000))
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
