package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bale-project/bale/internal/charttest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// chartSource is registry storage holding busybox:1.36.1 of the fixture under its own name
// and under every name the demo chart uses with the site's values, and one image nothing
// names (other/unused:1).
func chartSource(t *testing.T, f *fixture) string {
	t.Helper()
	from, err := registry.Open(f.registry)
	if err != nil {
		t.Fatal(err)
	}
	d, err := from.Resolve(layout.Ref{Repo: "busybox", Tag: "1.36.1"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := layout.LoadImage(from, "busybox", d)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "source")
	dst := registry.New(root)
	names := append(readImageLines(t, filepath.Join(charttest.Dir(), "site-images.txt")), "busybox:1.36.1", "other/unused:1")
	for _, n := range names {
		ref, err := layout.ParseRef(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.PutImage(ref, img, from); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readImageLines reads a hand-written image list.
func readImageLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestReleasePack: bale pack --release with a chart of a served repository picked by a semver
// range (images: true with the site's values) and a chart directory; unpacked into registry
// storage served by docker-registry, helm pull gives the repository's .tgz byte for byte and
// helm template renders it; the bundle holds the release's image list, the chart's images
// (from SOURCE) and the charts, nothing else; the stage is gone.
func TestReleasePack(t *testing.T) {
	f := getFixture(t)
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	src := chartSource(t, f)
	work := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	site, err := os.ReadFile(filepath.Join(charttest.Dir(), "site-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("site-values.yaml", string(site))
	write("images-list.txt", "busybox:1.36.1\n")
	// An OCI chart: 0.2.0 pushed by the real helm; a range picks it among the tags.
	charts := testenv.StartRegistry(t, t.TempDir())
	h.Run(t, repo.Dir, "push", repo.Tgz("0.2.0"), "oci://"+charts.Addr+"/up/charts", "--plain-http")
	pushed := getChartManifest(t, charts.Addr, "up/charts/demo", "0.2.0")
	rel := write("release.yaml", `images: [images-list.txt]
charts:
  - repo: `+repo.URL+`
    name: demo
    version: ">=0.1.0 <0.2.0"
    images: true
    values: [site-values.yaml]
  - path: `+filepath.Join(charttest.Dir(), "demo")+`
  - oci: oci://`+charts.Addr+`/up/charts/demo
    version: ^0.2
`)
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "--release", rel, "--src-tls-verify=false", "-o", bundle, "registry:"+src)
	if _, err := os.Stat(bundle + ".bale-release"); !os.IsNotExist(err) {
		t.Fatalf("stage left behind: %v", err)
	}

	var got []string
	for _, l := range listJSON(t, bundle) {
		got = append(got, l.Repo+":"+l.Tag)
	}
	slices.Sort(got)
	want := []string{"busybox:1.36", "busybox:1.36.1", "charts/demo:0.1.3", "charts/demo:0.1.5", "charts/demo:0.2.0", "example/app:1.1", "example/backup:1.1",
		"example/db:5.7", "example/debug:latest", "example/sidecar:0.9", "example/tool:2.0"}
	if !slices.Equal(got, want) {
		t.Fatalf("bundle holds\n%q\nwant\n%q", got, want)
	}

	// From a live registry (SOURCE staged, the union read through a pull) the same.
	live := testenv.StartRegistry(t, src)
	bundle2 := filepath.Join(work, "release-live.tar.zst")
	mustBale(t, "pack", "-f", rel, "-o", bundle2, "--src-tls-verify=false", "docker://"+live.Addr)
	var got2 []string
	for _, l := range listJSON(t, bundle2) {
		got2 = append(got2, l.Repo+":"+l.Tag)
	}
	slices.Sort(got2)
	if !slices.Equal(got2, want) {
		t.Fatalf("bundle from docker:// holds\n%q\nwant\n%q", got2, want)
	}
	for _, p := range []string{bundle2 + ".bale-release", bundle2 + ".bale-pull"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", p, err)
		}
	}

	// A release whose only images are those its chart uses: nothing else of SOURCE.
	only := write("only-chart.yaml", "charts:\n  - repo: "+repo.URL+"\n    name: demo\n    version: 0.1.5\n    images: true\n    values: [site-values.yaml]\n")
	bundle3 := filepath.Join(work, "only-chart.tar.zst")
	mustBale(t, "pack", "-f", only, "-o", bundle3, "registry:"+src)
	var got3 []string
	for _, l := range listJSON(t, bundle3) {
		got3 = append(got3, l.Repo+":"+l.Tag)
	}
	slices.Sort(got3)
	want3 := slices.DeleteFunc(slices.Clone(want), func(s string) bool {
		return s == "busybox:1.36.1" || s == "charts/demo:0.1.3" || s == "charts/demo:0.2.0"
	})
	if !slices.Equal(got3, want3) {
		t.Fatalf("bundle of the chart alone holds\n%q\nwant\n%q", got3, want3)
	}

	x := filepath.Join(work, "site")
	mustBale(t, "unpack", "--to", "registry:"+x, bundle)
	reg := testenv.StartRegistry(t, x)
	pull := t.TempDir()
	h.Run(t, pull, "pull", "oci://"+reg.Addr+"/charts/demo", "--version", "0.1.5", "--plain-http", "-d", pull)
	tgz := filepath.Join(pull, "demo-0.1.5.tgz")
	b, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != repo.Digests["0.1.5"] {
		t.Fatalf("pulled chart sha256 %x, index.yaml %s", sum, repo.Digests["0.1.5"])
	}
	if out := h.Run(t, pull, "template", tgz, "-f", filepath.Join(work, "site-values.yaml")); !strings.Contains(string(out), "registry.site:5000/example/app:1.1") {
		t.Fatalf("helm template:\n%s", out)
	}
	h.Run(t, pull, "pull", "oci://"+reg.Addr+"/charts/demo", "--version", "0.1.3", "--plain-http", "-d", pull)
	if got := getChartManifest(t, reg.Addr, "charts/demo", "0.2.0"); !bytes.Equal(got, pushed) {
		t.Fatalf("the OCI chart's manifest changed on the way:\n%s\nwant\n%s", got, pushed)
	}
}

// getChartManifest fetches repo:tag's manifest bytes from the registry at addr.
func getChartManifest(t *testing.T, addr, repo, tag string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s:%s: %s %v", repo, tag, resp.Status, err)
	}
	return b
}

// TestReleasePackErrors: a range nothing matches, a repository that does not answer, a
// missing chart path, a missing file and a URL whose sha256 differs are each named at once, and nothing is written.
func TestReleasePackErrors(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	src := t.TempDir()
	if _, err := registry.Create(src); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, charts, want string }{
		{"no match", "charts:\n  - repo: " + repo.URL + "\n    name: demo\n    version: \">=0.3.0\"\n", "no matching chart version"},
		{"no answer", "charts:\n  - repo: http://127.0.0.1:1\n    name: demo\n", "http://127.0.0.1:1"},
		{"missing path", "charts:\n  - path: nowhere/demo\n", "nowhere/demo"},
		{"missing file", "files:\n  - path: bin/kubeadm\n", "bin/kubeadm"},
		{"file sha256", "files:\n  - url: " + repo.URL + "/index.yaml\n    sha256: " + strings.Repeat("0", 64) + "\n", repo.URL + "/index.yaml"},
		{"bad file", "charts:\n  - path: x\n    oci: h/x\n", "release.yaml:2: chart: want exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			rel := filepath.Join(work, "release.yaml")
			if err := os.WriteFile(rel, []byte(tc.charts), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(work, "out", "b.tar.zst")
			os.MkdirAll(filepath.Dir(out), 0o755)
			res := bale(t, "pack", "-f", rel, "-o", out, "registry:"+src)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant it to name %q", res.code, res.stderr, tc.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("files left behind: %v", ents)
			}
		})
	}
}

// TestImagesCommand: bale images prints exactly the hand-written list, for the chart of a
// served repository picked by a range and for the chart directory; pack --images takes it.
func TestImagesCommand(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	site := filepath.Join(charttest.Dir(), "site-values.yaml")
	want := strings.Join(readImageLines(t, filepath.Join(charttest.Dir(), "site-images.txt")), "\n") + "\n"
	charts := testenv.StartRegistry(t, t.TempDir())
	h.Run(t, repo.Dir, "push", repo.Tgz("0.1.3"), "oci://"+charts.Addr+"/charts", "--plain-http")
	for _, args := range [][]string{
		{"images", "-f", site, "--repo", repo.URL, "demo", "--version", ">=0.1.0 <0.2.0"},
		{"images", "-f", site, "--src-tls-verify=false", "oci://" + charts.Addr + "/charts/demo", "--version", "~0.1"},
		{"images", "--values", site, filepath.Join(charttest.Dir(), "demo")},
		{"images", "--values", site, repo.Tgz("0.2.0")},
	} {
		res := mustBale(t, args...)
		if res.stdout != want {
			t.Errorf("bale %v:\n%s\nwant\n%s", args, res.stdout, want)
		}
		if _, err := layout.ParseImageList(strings.NewReader(res.stdout), "out"); err != nil {
			t.Errorf("not an image list: %v", err)
		}
	}
	if res := bale(t, "images", "--repo", repo.URL, "demo", "--version", "9.x"); res.code == 0 || !strings.Contains(res.stderr, "no matching chart version") {
		t.Fatalf("a range nothing matches: exit %d %s", res.code, res.stderr)
	}
}

// TestImagesRepoAuth: a chart repository that asks for basic auth gets the credentials of
// --src-authfile for its host, as a docker:// registry would; without them it is refused.
func TestImagesRepoAuth(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	files := http.FileServer(http.Dir(repo.Dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "chartuser" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	// index.yaml names the python server's URLs: serve the .tgz by its relative name instead.
	idx, err := os.ReadFile(filepath.Join(repo.Dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo.Dir, "index.yaml"), []byte(strings.ReplaceAll(string(idx), repo.URL+"/", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	auth := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(auth, []byte(`{"auths":{"`+host+`":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("chartuser:s3cret"))+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	res := mustBale(t, "images", "--src-authfile", auth, "--repo", srv.URL, "demo", "--version", "0.1.3")
	if !strings.Contains(res.stdout, "example/app:1.0\n") {
		t.Fatalf("stdout:\n%s", res.stdout)
	}
	if res := bale(t, "images", "--src-creds", "chartuser:wrong", "--repo", srv.URL, "demo"); res.code == 0 || !strings.Contains(res.stderr, "401") {
		t.Fatalf("wrong credentials: exit %d %s", res.code, res.stderr)
	}
}

// TestReleaseFiles: the files: of a release file (an executable, a directory, a URL checked by
// its sha256) travel in the bundle; unpack --to files: gives each back byte for byte with its
// mode, the directory whole, and the real oras pulls the same bytes from docker-registry
// serving the unpacked storage.
func TestReleaseFiles(t *testing.T) {
	oras := testenv.NeedTool(t, "oras")
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h) // a static web server for the URL
	work := t.TempDir()
	src := filepath.Join(work, "src")
	if _, err := registry.Create(src); err != nil {
		t.Fatal(err)
	}
	kubeadm := bytes.Repeat([]byte("#!/bin/sh\necho kubeadm\n"), 1000)
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "bin", "kubeadm"), kubeadm, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "osrepo", "pool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "osrepo", "pool", "a.deb"), []byte("deb a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "osrepo", "Release"), []byte("Origin: test"), 0o644); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(repo.Dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(index)
	rel := filepath.Join(work, "release.yaml")
	if err := os.WriteFile(rel, []byte(`files:
  - path: bin/kubeadm
    name: tools/kubeadm
    tag: v1.28.2
  - path: osrepo/
    name: os/debian-12
    tag: "2026.12"
  - url: `+repo.URL+`/index.yaml
    sha256: `+hex.EncodeToString(sum[:])+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-f", rel, "-o", bundle, "registry:"+src)
	out := filepath.Join(work, "files")
	x := filepath.Join(work, "x")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "files:"+out, bundle)
	got := mustRead(t, filepath.Join(out, "tools", "kubeadm", "kubeadm"))
	if !bytes.Equal(got, kubeadm) {
		t.Errorf("files:: kubeadm differs (%d bytes, want %d)", len(got), len(kubeadm))
	}
	if fi, err := os.Stat(filepath.Join(out, "tools", "kubeadm", "kubeadm")); err != nil || fi.Mode().Perm()&0o111 != 0o111 {
		t.Errorf("files:: kubeadm not executable: %v %v", fi.Mode(), err)
	}
	if got := mustRead(t, filepath.Join(out, "os", "debian-12", "osrepo", "pool", "a.deb")); string(got) != "deb a" {
		t.Errorf("files:: the directory's a.deb is %q", got)
	}
	if got := mustRead(t, filepath.Join(out, "index.yaml", "index.yaml")); !bytes.Equal(got, index) {
		t.Errorf("files:: the URL's file differs")
	}
	reg := testenv.StartRegistry(t, x)
	pulled := t.TempDir()
	runPeer(t, pulled, nil, oras, "pull", "--plain-http", "-o", pulled, reg.Addr+"/files/tools/kubeadm:v1.28.2")
	if got := mustRead(t, filepath.Join(pulled, "kubeadm")); !bytes.Equal(got, kubeadm) {
		t.Errorf("oras pull: kubeadm differs")
	}
}
