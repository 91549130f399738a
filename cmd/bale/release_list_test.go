package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/internal/charttest"
)

// releaseDir is a directory for release files: write puts body at name (directories made).
type releaseDir string

func (d releaseDir) write(t *testing.T, name string, body []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(string(d), name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomBytes is n bytes of crypto/rand: incompressible, so no patch can carry them smaller.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// releaseYAML is a release file: busybox:latest of SOURCE, chart demo at version of repo, and
// each file entry (path, name, tag; "" for the defaults).
func releaseYAML(repo, version string, files ...[3]string) []byte {
	s := "images: [images.txt]\ncharts:\n  - repo: " + repo + "\n    name: demo\n    version: \"" + version + "\"\n"
	if len(files) > 0 {
		s += "files:\n"
	}
	for _, f := range files {
		s += "  - path: " + f[0] + "\n"
		if f[1] != "" {
			s += "    name: " + f[1] + "\n"
		}
		if f[2] != "" {
			s += "    tag: \"" + f[2] + "\"\n"
		}
	}
	return []byte(s)
}

// listedKind is an entry of bale list --json with what it is.
type listedKind struct {
	Kind, Name, Version, Repo, Tag, Digest string
	Size                                   int64
}

// TestListReleaseKinds: bale list of a bundle made by pack --release shows the Helm chart and
// the file artifact as kinds of their own, in text (CHART and FILE tables after the images,
// with name, version or tag, and size) and in --json (kind, name, version); bale diff of two
// such bundles names the new chart version, the removed one and the changed file as such.
func TestListReleaseKinds(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	work := t.TempDir()
	d := releaseDir(work)
	d.write(t, "images.txt", []byte("busybox:latest\n"), 0o644)
	kubeadm := randomBytes(t, 200<<10)
	d.write(t, "bin/kubeadm", kubeadm, 0o755)
	rel1 := d.write(t, "r1.yaml", releaseYAML(repo.URL, "0.1.3", [3]string{"bin/kubeadm", "tools/kubeadm", "v1"}), 0o644)
	old := filepath.Join(work, "old.tar.zst")
	src := "registry:../../testdata/sample-registry"
	mustBale(t, "pack", "-f", rel1, "-o", old, src)

	checkListHead(t, old)
	res := mustBale(t, "list", "--json", old)
	var doc struct{ Images []listedKind }
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("bale list --json: %v\n%s", err, res.stdout)
	}
	byRef := map[string]listedKind{}
	for _, l := range doc.Images {
		byRef[l.Repo+":"+l.Tag] = l
	}
	tgz := mustRead(t, repo.Tgz("0.1.3"))
	if l := byRef["busybox:latest"]; l.Kind != "image" || l.Name != "" {
		t.Errorf("busybox:latest listed as %+v", l)
	}
	// A chart's size: its manifest, the config (a few hundred bytes) and the .tgz.
	if l := byRef["charts/demo:0.1.3"]; l.Kind != "chart" || l.Name != "demo" || l.Version != "0.1.3" || l.Size < int64(len(tgz)) || l.Size > int64(len(tgz))+4096 {
		t.Errorf("charts/demo:0.1.3 listed as %+v (the .tgz is %d bytes)", l, len(tgz))
	}
	if l := byRef["files/tools/kubeadm:v1"]; l.Kind != "file" || l.Name != "tools/kubeadm" || l.Size < int64(len(kubeadm)) || l.Size > int64(len(kubeadm))+4096 {
		t.Errorf("files/tools/kubeadm:v1 listed as %+v (the file is %d bytes)", l, len(kubeadm))
	}
	if len(doc.Images) != 3 {
		t.Errorf("bale list --json: %d entries, want 3: %+v", len(doc.Images), doc.Images)
	}

	// The text: the images, then a CHART table and a FILE table.
	text := mustBale(t, "list", old).stdout
	var tables [][][]string
	for _, block := range strings.Split(strings.TrimSpace(text), "\n\n") {
		var rows [][]string
		for l := range strings.Lines(block) {
			rows = append(rows, strings.Fields(l))
		}
		tables = append(tables, rows)
	}
	if len(tables) != 3 {
		t.Fatalf("bale list: %d tables, want images, charts and files:\n%s", len(tables), text)
	}
	want := [][]string{
		{"REPOSITORY", "busybox"},
		{"CHART", "demo", "0.1.3", "charts/demo"},
		{"FILE", "tools/kubeadm", "v1"},
	}
	for i, w := range want {
		tb := tables[i]
		if len(tb) < 2 || tb[0][0] != w[0] || len(tb[1]) < len(w)-1 || strings.Join(tb[1][:len(w)-1], " ") != strings.Join(w[1:], " ") {
			t.Errorf("bale list: table %d is %q, want header %s and row %q", i, tb, w[0], w[1:])
		}
	}
	if !strings.Contains(text, "\n1 images, 1 charts, 1 files, ") {
		t.Errorf("bale list: the summary does not count 1 image, 1 chart, 1 file:\n%s", text)
	}

	// A newer release: the chart's next version, the file changed.
	d.write(t, "bin/kubeadm", randomBytes(t, 200<<10), 0o755)
	rel2 := d.write(t, "r2.yaml", releaseYAML(repo.URL, "0.1.5", [3]string{"bin/kubeadm", "tools/kubeadm", "v1"}), 0o644)
	newer := filepath.Join(work, "new.tar.zst")
	mustBale(t, "pack", "-f", rel2, "-o", newer, src)
	diff := mustBale(t, "diff", old, newer).stdout
	for _, w := range []string{"+ chart demo 0.1.5 (charts/demo:0.1.5) sha256:", "- chart demo 0.1.3 (charts/demo:0.1.3) sha256:",
		"~ file tools/kubeadm:v1 sha256:", "of those tags, charts: 1 added, 1 removed, 0 changed; files: 0 added, 0 removed, 1 changed"} {
		if !strings.Contains(diff, w) {
			t.Errorf("bale diff does not say %q:\n%s", w, diff)
		}
	}
	var dj struct{ Added, Removed, Changed []listedKind }
	if err := json.Unmarshal([]byte(mustBale(t, "diff", "--json", old, newer).stdout), &dj); err != nil {
		t.Fatal(err)
	}
	if len(dj.Added) != 1 || dj.Added[0].Kind != "chart" || dj.Added[0].Name != "demo" || dj.Added[0].Version != "0.1.5" ||
		len(dj.Removed) != 1 || dj.Removed[0].Kind != "chart" || dj.Removed[0].Version != "0.1.3" ||
		len(dj.Changed) != 1 || dj.Changed[0].Kind != "file" || dj.Changed[0].Name != "tools/kubeadm" || dj.Changed[0].Tag != "v1" {
		t.Errorf("bale diff --json: added %+v removed %+v changed %+v", dj.Added, dj.Removed, dj.Changed)
	}
}
