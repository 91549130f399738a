// Package charttest makes a real classic Helm chart repository for tests: the demo chart of
// testdata (a subchart, images in values, a helm.sh/images annotation) packaged with the real
// `helm package` in several versions, indexed with `helm repo index`, and served by
// `python3 -m http.server` on 127.0.0.1.
package charttest

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bale-project/bale/internal/testenv"
)

// Versions are the versions of demo the repository holds; ProvVersion is the one with a
// provenance file beside it.
var Versions = []string{"0.1.3", "0.1.5", "0.2.0"}

// ProvVersion has a .prov file in the repository.
const ProvVersion = "0.1.5"

// Dir is the testdata directory: demo/ (the chart), site-values.yaml and site-images.txt
// (the images of demo rendered with site-values.yaml, written by hand).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Helm runs the real helm CLI with HELM_*_HOME in a temporary directory.
type Helm struct {
	Bin string
	Env []string
}

// NewHelm finds helm (testenv.NeedTool) and gives it homes of its own.
func NewHelm(t testing.TB) *Helm {
	t.Helper()
	bin := testenv.NeedTool(t, "helm")
	home := t.TempDir()
	return &Helm{Bin: bin, Env: append(os.Environ(), "TZ=UTC",
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))}
}

// Run runs helm args in dir and returns its standard output; a failure fails the test.
func (h *Helm) Run(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(h.Bin, args...)
	cmd.Dir, cmd.Env = dir, h.Env
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, stderr)
	}
	return out
}

// Repo is a served chart repository.
type Repo struct {
	// URL is http://127.0.0.1:PORT; Dir the directory served.
	URL, Dir string
	// Digests are the sha256 of each version's .tgz as index.yaml has them.
	Digests map[string]string
}

// Tgz is the path of version's .tgz in the repository.
func (r *Repo) Tgz(version string) string { return filepath.Join(r.Dir, "demo-"+version+".tgz") }

// StartRepo packages demo in every Versions, indexes them and serves the directory; the
// server is killed by PID at the end of the test.
func StartRepo(t testing.TB, h *Helm) *Repo {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3: %v", err)
	}
	dir := t.TempDir()
	for _, v := range Versions {
		h.Run(t, dir, "package", filepath.Join(Dir(), "demo"), "--version", v, "-d", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo-"+ProvVersion+".tgz.prov"), []byte("-----BEGIN PGP SIGNED MESSAGE-----\nbale test provenance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	url := "http://" + addr
	h.Run(t, dir, "repo", "index", dir, "--url", url)
	cmd := exec.Command(py, "-m", "http.server", "--bind", "127.0.0.1", port)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(url + "/index.yaml")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("python3 -m http.server on %s: no answer: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &Repo{URL: url, Dir: dir, Digests: indexDigests(t, filepath.Join(dir, "index.yaml"))}
}

// indexDigests reads each demo version's digest from index.yaml.
func indexDigests(t testing.TB, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Entries map[string][]struct {
			Version string `yaml:"version"`
			Digest  string `yaml:"digest"`
		} `yaml:"entries"`
	}
	if err := yaml.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.yaml: %v", err)
	}
	out := map[string]string{}
	for _, e := range idx.Entries["demo"] {
		out[e.Version] = e.Digest
	}
	if len(out) != len(Versions) {
		t.Fatalf("index.yaml lists %v, want %v", out, Versions)
	}
	return out
}
