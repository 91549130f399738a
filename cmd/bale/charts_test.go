package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"

	"github.com/bale-project/bale/internal/testenv"
)

// helmEnv keeps every helm run of a test in its own cache, config and data directories.
func helmEnv(t *testing.T) []string {
	t.Helper()
	d := t.TempDir()
	return []string{"HELM_CACHE_HOME=" + filepath.Join(d, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(d, "config"),
		"HELM_DATA_HOME=" + filepath.Join(d, "data"), "HELM_REGISTRY_CONFIG=" + filepath.Join(d, "registry.json")}
}

// serveStatic serves dir with python3 -m http.server on a free 127.0.0.1 port, killed by PID
// at the end of the test, and returns its URL.
func serveStatic(t *testing.T, dir string) string {
	t.Helper()
	py := testenv.Need(t, "python3")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, fmt.Sprint(port))
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url + "/index.yaml")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("python3 http.server on %s did not answer: %v\n%s", url, err, logb.String())
		}
	}
}

// TestChartsUnpack: two versions of a chart made with helm create + helm package, pushed
// with helm push into docker-registry beside a stock oras artifact, packed from docker://,
// unpacked with --to charts: beside registry: (the .tgz hard-linked to its blob) and copied
// from the bundle; the directory, served by python3's http.server, gives the same .tgz to
// helm repo add + helm pull, and index.yaml carries their sha256.
func TestChartsUnpack(t *testing.T) {
	helm := testenv.NeedTool(t, "helm")
	oras := testenv.NeedTool(t, "oras")
	env := helmEnv(t)
	work := t.TempDir()
	src := filepath.Join(work, "src")
	os.MkdirAll(src, 0o755)
	runPeer(t, src, env, helm, "create", "demo")
	pkgs := map[string][]byte{}
	for _, v := range []string{"0.1.0", "0.2.0+build.7"} {
		runPeer(t, src, env, helm, "package", "--version", v, "-d", filepath.Join(src, "pkg"), "demo")
		p := filepath.Join(src, "pkg", "demo-"+v+".tgz")
		pkgs[v] = mustRead(t, p)
	}
	// 0.3.0 signed: helm package --sign writes demo-0.3.0.tgz.prov, which helm push uploads.
	secring, pubring := gpgKeys(t)
	runPeer(t, src, env, helm, "package", "--sign", "--key", "Bale Test", "--keyring", secring,
		"--version", "0.3.0", "-d", filepath.Join(src, "pkg"), "demo")
	pkgs["0.3.0"] = mustRead(t, filepath.Join(src, "pkg", "demo-0.3.0.tgz"))
	prov := mustRead(t, filepath.Join(src, "pkg", "demo-0.3.0.tgz.prov"))
	reg := testenv.StartRegistry(t, filepath.Join(work, "storage"))
	for v := range pkgs {
		runPeer(t, src, env, helm, "push", "--plain-http", filepath.Join(src, "pkg", "demo-"+v+".tgz"), "oci://"+reg.Addr+"/charts")
	}
	os.WriteFile(filepath.Join(src, "note.txt"), []byte("not a chart"), 0o644)
	runPeer(t, src, nil, oras, "push", "--plain-http", reg.Addr+"/files/note:v1", "note.txt")

	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "docker://"+reg.Addr)
	regOut := filepath.Join(work, "out", "registry")
	charts := filepath.Join(work, "out", "charts")
	res := mustBale(t, "unpack", "--to", "registry:"+regOut, "--to", "charts:"+charts, bundle)
	t.Log(res.stderr)
	if !strings.Contains(res.stderr, "3 charts written (4 hard links") || !strings.Contains(res.stderr, "1 images that are not Helm charts skipped") {
		t.Errorf("unpack's summary:\n%s", res.stderr)
	}
	for v, want := range pkgs {
		p := filepath.Join(charts, "demo-"+v+".tgz")
		if got := mustRead(t, p); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, not helm package's %d", p, len(got), len(want))
		}
		sum := sha256.Sum256(want)
		if inode(t, p) != inode(t, blobData(regOut, digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:])))) {
			t.Errorf("%s is not a hard link to its blob in the registry: target", p)
		}
	}
	if got := mustRead(t, filepath.Join(charts, "demo-0.3.0.tgz.prov")); !bytes.Equal(got, prov) {
		t.Errorf("demo-0.3.0.tgz.prov: %q, not helm package's", got)
	}
	if _, err := os.Stat(filepath.Join(charts, "demo-0.1.0.tgz.prov")); err == nil {
		t.Errorf("a .prov for the unsigned demo-0.1.0.tgz")
	}
	checkIndex(t, charts, pkgs)
	url := checkHelmRepo(t, helm, charts, pkgs)
	// helm pull --verify fetches the .prov beside the .tgz and checks it with the public key.
	henv := helmEnv(t)
	runPeer(t, "", henv, helm, "repo", "add", "site", url)
	runPeer(t, "", henv, helm, "pull", "--verify", "--keyring", pubring, "site/demo", "--version", "0.3.0", "-d", t.TempDir())

	copied := filepath.Join(work, "copied")
	res = mustBale(t, "copy", bundle, "charts:"+copied)
	if !strings.Contains(res.stderr, "3 charts written (0 hard links") {
		t.Errorf("copy's summary:\n%s", res.stderr)
	}
	checkIndex(t, copied, pkgs)
	if ents, _ := os.ReadDir(copied); len(ents) != 5 {
		t.Errorf("charts: from a bundle holds %d entries, want 3 charts, a .prov and index.yaml", len(ents))
	}
}

// checkIndex reads dir/index.yaml as YAML: one entry per version, each URL the file name and
// the digest the sha256 of the .tgz, as helm repo index writes them.
func checkIndex(t *testing.T, dir string, pkgs map[string][]byte) {
	t.Helper()
	var idx struct {
		APIVersion string `yaml:"apiVersion"`
		Entries    map[string][]struct {
			Version string   `yaml:"version"`
			URLs    []string `yaml:"urls"`
			Digest  string   `yaml:"digest"`
		} `yaml:"entries"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(dir, "index.yaml")), &idx); err != nil {
		t.Fatal(err)
	}
	if idx.APIVersion != "v1" || len(idx.Entries["demo"]) != len(pkgs) {
		t.Fatalf("index.yaml: %+v", idx)
	}
	for _, e := range idx.Entries["demo"] {
		sum := sha256.Sum256(pkgs[e.Version])
		if e.Digest != hex.EncodeToString(sum[:]) || len(e.URLs) != 1 || e.URLs[0] != "demo-"+e.Version+".tgz" {
			t.Errorf("index.yaml entry %+v, want digest %x", e, sum)
		}
	}
}

// checkHelmRepo serves dir and has the real helm add it as a repository and pull each
// version: the same bytes as helm package wrote.
func checkHelmRepo(t *testing.T, helm, dir string, pkgs map[string][]byte) string {
	t.Helper()
	url := serveStatic(t, dir)
	env := helmEnv(t)
	runPeer(t, "", env, helm, "repo", "add", "site", url)
	runPeer(t, "", env, helm, "repo", "update")
	for v, want := range pkgs {
		out := t.TempDir()
		runPeer(t, "", env, helm, "pull", "site/demo", "--version", v, "-d", out)
		if got := mustRead(t, filepath.Join(out, "demo-"+v+".tgz")); !bytes.Equal(got, want) {
			t.Errorf("helm pull site/demo --version %s: %d bytes, not helm package's %d", v, len(got), len(want))
		}
	}
	return url
}

// gpgKeys makes an RSA signing key "Bale Test" with the real gpg in a GNUPGHOME of its own and
// exports it as the binary keyrings helm reads: the secret one and the public one.
func gpgKeys(t *testing.T) (secring, pubring string) {
	t.Helper()
	gpg := testenv.Need(t, "gpg")
	home := t.TempDir()
	os.Chmod(home, 0o700)
	env := []string{"GNUPGHOME=" + home}
	runPeer(t, home, env, gpg, "--batch", "--passphrase", "", "--quick-gen-key", "Bale Test <test@bale.invalid>", "rsa2048", "sign", "never")
	secring, pubring = filepath.Join(home, "secring.gpg"), filepath.Join(home, "pubring.gpg")
	if err := os.WriteFile(secring, []byte(runPeer(t, home, env, gpg, "--batch", "--export-secret-keys")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubring, []byte(runPeer(t, home, env, gpg, "--batch", "--export")), 0o600); err != nil {
		t.Fatal(err)
	}
	return secring, pubring
}
