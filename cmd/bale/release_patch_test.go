package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bale-project/bale/internal/charttest"
	"github.com/bale-project/bale/internal/testenv"
)

// indexVersions reads the versions of demo that dir/index.yaml lists, sorted.
func indexVersions(t *testing.T, dir string) []string {
	t.Helper()
	var idx struct {
		Entries map[string][]struct {
			Version string   `yaml:"version"`
			URLs    []string `yaml:"urls"`
		} `yaml:"entries"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(dir, "index.yaml")), &idx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range idx.Entries["demo"] {
		out = append(out, e.Version)
	}
	slices.Sort(out)
	return out
}

// TestReleasePatch: a release's next version (a new chart version, a changed 3 MiB file of
// random bytes under the same tag, a file dropped) ships as a patch of at most the new .tgz
// and the file plus 128 KiB. Applied alone onto the outputs the base was unpacked into
// (registry:, files:, charts:), the file is replaced by a new one renamed over it (the old
// inode, held open, still reads the old bytes) and the new chart joins index.yaml; without
// --remove-absent-tags the old chart and file stay, with it they go, and only them: a file of
// the site's beside them stays. Applied with its base in one run onto new outputs, the same.
func TestReleasePatch(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	work := t.TempDir()
	d := releaseDir(work)
	d.write(t, "images.txt", []byte("busybox:latest\n"), 0o644)
	kube1 := randomBytes(t, 3<<20)
	d.write(t, "bin/kubeadm", kube1, 0o755)
	oldTool := randomBytes(t, 64<<10)
	d.write(t, "bin/old-tool", oldTool, 0o755)
	rel1 := d.write(t, "r1.yaml", releaseYAML(repo.URL, "0.1.3",
		[3]string{"bin/kubeadm", "tools/kubeadm", "v1.28"}, [3]string{"bin/old-tool", "tools/old-tool", "v1"}), 0o644)
	src := "registry:../../testdata/sample-registry"
	base := filepath.Join(work, "base.tar.zst")
	mustBale(t, "pack", "-f", rel1, "-o", base, src)

	kube2 := randomBytes(t, 3<<20)
	d.write(t, "bin/kubeadm", kube2, 0o755)
	rel2 := d.write(t, "r2.yaml", releaseYAML(repo.URL, "0.1.5", [3]string{"bin/kubeadm", "tools/kubeadm", "v1.28"}), 0o644)
	keep := filepath.Join(work, "keep.tar.zst")
	mustBale(t, "pack", "-f", rel2, "--base", base, "-o", keep, src)
	rm := filepath.Join(work, "rm.tar.zst")
	mustBale(t, "pack", "-f", rel2, "--base", base, "--remove-absent-tags", "-o", rm, src)
	tgz := mustRead(t, repo.Tgz("0.1.5"))
	limit := int64(len(kube2)+len(tgz)) + 128<<10
	for _, p := range []string{keep, rm} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes (the file and the chart: %d)", filepath.Base(p), fi.Size(), len(kube2)+len(tgz))
		if fi.Size() > limit {
			t.Errorf("%s is %d bytes, more than the new file and chart + 128 KiB (%d)", p, fi.Size(), limit)
		}
	}

	site := filepath.Join(work, "site")
	x, files, charts := filepath.Join(site, "registry"), filepath.Join(site, "files"), filepath.Join(site, "charts")
	outs := []string{"--to", "registry:" + x, "--to", "files:" + files, "--to", "charts:" + charts}
	mustBale(t, append(append([]string{"unpack"}, outs...), base)...)
	kubePath := filepath.Join(files, "tools", "kubeadm", "kubeadm")
	if !bytes.Equal(mustRead(t, kubePath), kube1) {
		t.Fatalf("files:: kubeadm of the base differs")
	}
	// The site's own files beside bale's.
	d2 := releaseDir(files)
	d2.write(t, "tools/old-tool/NOTES", []byte("site notes"), 0o644)
	d2.write(t, "site.txt", []byte("site"), 0o644)
	held, err := os.Open(kubePath)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	oldInode := inode(t, kubePath)

	checkNew := func(what, files, charts string) {
		t.Helper()
		if got := mustRead(t, filepath.Join(files, "tools", "kubeadm", "kubeadm")); !bytes.Equal(got, kube2) {
			t.Errorf("%s: files:: kubeadm is not the new file", what)
		}
		if fi, err := os.Stat(filepath.Join(files, "tools", "kubeadm", "kubeadm")); err != nil || fi.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s: files:: kubeadm not executable: %v", what, err)
		}
		if got := mustRead(t, filepath.Join(charts, "demo-0.1.5.tgz")); !bytes.Equal(got, tgz) {
			t.Errorf("%s: charts:: demo-0.1.5.tgz is not the repository's", what)
		}
	}
	// The patch alone, without --remove-absent-tags: the old chart and file stay.
	mustBale(t, append(append([]string{"unpack"}, outs...), keep)...)
	checkNew("keep", files, charts)
	if inode(t, kubePath) == oldInode {
		t.Errorf("files:: kubeadm was rewritten in place, not renamed over")
	}
	if b, err := io.ReadAll(held); err != nil || !bytes.Equal(b, kube1) {
		t.Errorf("the old kubeadm, held open, no longer reads its bytes: %v", err)
	}
	if got := indexVersions(t, charts); !slices.Equal(got, []string{"0.1.3", "0.1.5"}) {
		t.Errorf("keep: index.yaml lists %v", got)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(files, "tools", "old-tool", "old-tool")), oldTool) {
		t.Errorf("keep: files:: old-tool is gone")
	}

	// The patch that removes absent tags, alone: the old chart and file go, nothing else.
	mustBale(t, append(append([]string{"unpack"}, outs...), rm)...)
	checkNew("remove", files, charts)
	checkRemoved := func(what, files, charts string) {
		t.Helper()
		for _, p := range []string{filepath.Join(charts, "demo-0.1.3.tgz"), filepath.Join(files, "tools", "old-tool", "old-tool")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s: %s is still there", what, p)
			}
		}
		if got := indexVersions(t, charts); !slices.Equal(got, []string{"0.1.5"}) {
			t.Errorf("%s: index.yaml lists %v", what, got)
		}
	}
	checkRemoved("remove", files, charts)
	for _, p := range []string{"tools/old-tool/NOTES", "site.txt"} {
		if _, err := os.Stat(filepath.Join(files, p)); err != nil {
			t.Errorf("the site's %s was removed: %v", p, err)
		}
	}

	// Base and patch in one run onto new outputs.
	site2 := filepath.Join(work, "site2")
	files2, charts2 := filepath.Join(site2, "files"), filepath.Join(site2, "charts")
	mustBale(t, "unpack", "--to", "registry:"+filepath.Join(site2, "registry"), "--to", "files:"+files2, "--to", "charts:"+charts2, base, rm)
	checkNew("base and patch", files2, charts2)
	checkRemoved("base and patch", files2, charts2)
}

// TestReleaseHelmPull: the real helm pull of a chart that pack --release carried gives the
// repository's .tgz byte for byte (its sha256 as in index.yaml) from bale serve of the bundle
// and from docker-registry after bale push, and helm template renders it.
func TestReleaseHelmPull(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	work := t.TempDir()
	d := releaseDir(work)
	d.write(t, "images.txt", []byte("busybox:latest\n"), 0o644)
	rel := d.write(t, "release.yaml", releaseYAML(repo.URL, "~0.1.4"), 0o644)
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-f", rel, "-o", bundle, "registry:../../testdata/sample-registry")

	pushed := testenv.StartRegistry(t, t.TempDir())
	mustBale(t, "push", "--dest-tls-verify=false", bundle, "docker://"+pushed.Addr)
	served := startServe(t, bundle)
	for what, addr := range map[string]string{"bale serve": served.Addr, "docker-registry after bale push": pushed.Addr} {
		out := t.TempDir()
		h.Run(t, out, "pull", "oci://"+addr+"/charts/demo", "--version", "0.1.5", "--plain-http", "-d", out)
		tgz := filepath.Join(out, "demo-0.1.5.tgz")
		sum := sha256.Sum256(mustRead(t, tgz))
		if hex.EncodeToString(sum[:]) != repo.Digests["0.1.5"] {
			t.Errorf("helm pull from %s: sha256 %x, index.yaml %s", what, sum, repo.Digests["0.1.5"])
		}
		if got := h.Run(t, out, "template", tgz); !bytes.Contains(got, []byte("kind: Deployment")) {
			t.Errorf("helm template of the chart from %s:\n%s", what, got)
		}
	}
}
