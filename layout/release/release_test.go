package release_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/release"
)

// issueExample is the release file of issue #20, with a real sha256.
const issueExample = `images:                        # image lists
  - images-list.txt
charts:
  - repo: https://charts.example.com/stable
    name: demo
    version: ">=0.1.0 <0.2.0"
    images: true
    values: [site-values.yaml]
  - oci: registry.example.com/charts/redis
    version: 19.0.1
  - path: charts/ks-core
files:
  - path: bin/kubeadm
    name: tools/kubeadm
    tag: v1.28.2
  - path: osrepo/
    name: os/debian-12
    tag: "2026.12"
  - url: https://dl.example.com/helm-v3.21.4-linux-amd64.tar.gz
    sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`

func TestParseIssueExample(t *testing.T) {
	r, err := release.Parse([]byte(issueExample), "/rel/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &release.Release{
		File: "/rel/release.yaml", Dir: "/rel",
		Images: []string{"/rel/images-list.txt"},
		Charts: []release.Chart{
			{Repo: "https://charts.example.com/stable", Name: "demo", Version: ">=0.1.0 <0.2.0", Images: true,
				Values: []string{"/rel/site-values.yaml"}, Line: 4},
			{OCI: "registry.example.com/charts/redis", Version: "19.0.1", Line: 9},
			{Path: "/rel/charts/ks-core", Line: 11},
		},
		Files: []release.File{
			{Path: "/rel/bin/kubeadm", Name: "tools/kubeadm", Tag: "v1.28.2", Line: 13},
			{Path: "/rel/osrepo", Name: "os/debian-12", Tag: "2026.12", Line: 16},
			{URL: "https://dl.example.com/helm-v3.21.4-linux-amd64.tar.gz",
				SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Name:   "helm-v3.21.4-linux-amd64.tar.gz", Tag: "latest", Line: 19},
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", r, want)
	}
}

func TestParseDefaults(t *testing.T) {
	r, err := release.Parse([]byte("files:\n  - path: /abs/bin/Kubelet\ncharts:\n  - oci: oci://h:5000/c/x\n"), "/d/r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Files[0]; f.Path != "/abs/bin/Kubelet" || f.Name != "kubelet" || f.Tag != "latest" {
		t.Fatalf("file = %+v", f)
	}
	if c := r.Charts[0]; c.OCI != "h:5000/c/x" || c.Version != "" {
		t.Fatalf("chart = %+v", c)
	}
}

// TestParseErrors: every rule broken is named with its line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown top key", "image:\n  - a.txt\n", `r.yaml:1: the release file: unknown key "image"`},
		{"unknown chart key", "charts:\n  - path: x\n    valuez: [a]\n", `r.yaml:3: chart: unknown key "valuez"`},
		{"unknown file key", "files:\n  - path: x\n    mode: 0755\n", `r.yaml:3: file: unknown key "mode"`},
		{"two sources", "charts:\n  - path: x\n    oci: h/x\n", `r.yaml:2: chart: want exactly one of repo (with name), oci or path, not 2`},
		{"no source", "charts:\n  - version: 1.0.0\n", `r.yaml:2: chart: want exactly one`},
		{"repo without name", "charts:\n  - repo: https://h/c\n", `r.yaml:2: chart: repo https://h/c needs name`},
		{"name without repo", "charts:\n  - oci: h/c/x\n    name: y\n", `r.yaml:2: chart: name is the chart of a repo`},
		{"repo not http", "charts:\n  - repo: ftp://h/c\n    name: x\n", `r.yaml:2: chart: repo "ftp://h/c"`},
		{"oci with tag", "charts:\n  - oci: h/c/x:1.0\n", `r.yaml:2: chart: oci "h/c/x:1.0"`},
		{"bad range", "charts:\n  - path: x\n    version: \">=a.b\"\n", `r.yaml:3: version ">=a.b"`},
		{"images not bool", "charts:\n  - path: x\n    images: yes please\n", `r.yaml:3: images: want true or false`},
		{"values without images", "charts:\n  - path: x\n    values: [v.yaml]\n", `r.yaml:2: chart: values are used to find the images`},
		{"url without sha256", "files:\n  - url: https://h/f\n", `r.yaml:2: file: url https://h/f needs sha256`},
		{"bad sha256", "files:\n  - url: https://h/f\n    sha256: abc\n", `r.yaml:2: file: sha256 "abc"`},
		{"path and url", "files:\n  - path: a\n    url: https://h/f\n", `r.yaml:2: file: want exactly one of path or url`},
		{"bad name", "files:\n  - path: a\n    name: Tools/X\n", `r.yaml:2: file: name "Tools/X"`},
		{"bad tag", "files:\n  - path: a\n    tag: \"-x\"\n", `r.yaml:2: file: tag "-x"`},
		{"twice", "charts:\n  - path: a\n    path: b\n", `r.yaml:3: chart: key "path" given twice`},
		{"not a list", "charts: path\n", `r.yaml:1: charts: want a list`},
		{"empty", "images: []\n", `r.yaml:1: names no images, charts or files`},
		{"not yaml", "charts: [\n", `r.yaml: yaml: line 1`},
		{"nothing", "", `r.yaml: empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := release.Parse([]byte(tc.in), "/d/r.yaml")
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to hold %q", err, tc.want)
			}
			if !errors.Is(err, layout.ErrInvalid) || !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// TestParseAllErrors: several broken entries are all named.
func TestParseAllErrors(t *testing.T) {
	_, err := release.Parse([]byte("charts:\n  - path: a\n    oci: h/x\n  - repo: https://h\nfiles:\n  - url: https://h/f\n"), "/d/r.yaml")
	for _, want := range []string{"r.yaml:2:", "r.yaml:4:", "r.yaml:6:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not name %s", err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "release.yaml")
	if err := os.WriteFile(p, []byte("images: [lists/a.txt]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := release.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "lists/a.txt"); r.Images[0] != want {
		t.Fatalf("images = %v, want %s", r.Images, want)
	}
	if _, err := release.Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzParse checks that Parse never panics and that what it accepts keeps its rules.
func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte("charts:\n  - path: a\n    oci: h/x\n"))
	f.Add([]byte("files:\n  - url: https://h/f\n"))
	f.Add([]byte("images: &a [x]\ncharts: *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := release.Parse(b, "/d/r.yaml")
		if err != nil {
			if r != nil || !errors.Is(err, layout.ErrInvalid) {
				t.Fatalf("Parse returned %v with error %v", r, err)
			}
			return
		}
		for _, c := range r.Charts {
			n := 0
			for _, s := range []string{c.Repo, c.OCI, c.Path} {
				if s != "" {
					n++
				}
			}
			if n != 1 || (c.Repo != "") != (c.Name != "") {
				t.Fatalf("accepted chart %+v", c)
			}
			if c.Path != "" && !filepath.IsAbs(c.Path) {
				t.Fatalf("relative path %q", c.Path)
			}
		}
		for _, f := range r.Files {
			if (f.Path == "") == (f.URL == "") || (f.URL != "" && len(f.SHA256) != 64) || f.Name == "" || f.Tag == "" {
				t.Fatalf("accepted file %+v", f)
			}
			if layout.ValidateRepo("files/"+f.Name) != nil || layout.ValidateTag(f.Tag) != nil {
				t.Fatalf("accepted file name %q tag %q", f.Name, f.Tag)
			}
		}
		for _, p := range r.Images {
			if !filepath.IsAbs(p) {
				t.Fatalf("relative image list %q", p)
			}
		}
	})
}
