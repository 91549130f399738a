package helmchart_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/charttest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/helmchart"
	"github.com/bale-project/bale/layout/registry"
	"github.com/bale-project/bale/layout/remote"
)

// getManifest fetches repo:ref's manifest bytes from the registry at addr.
func getManifest(t *testing.T, addr, repo, ref string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	return b
}

// TestChartMatchesHelmPush: the artifact bale writes for a .tgz (with a .prov beside it) is
// the one the real helm push writes, byte for byte, and helm pulls bale's back.
func TestChartMatchesHelmPush(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	dir := t.TempDir()
	tgz := filepath.Join(dir, "demo-"+charttest.ProvVersion+".tgz")
	for _, s := range []string{"", ".prov"} {
		b, err := os.ReadFile(repo.Tgz(charttest.ProvVersion) + s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tgz+s, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Date(2026, 11, 2, 10, 20, 30, 0, time.UTC)
	if err := os.Chtimes(tgz, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, t.TempDir())
	h.Run(t, dir, "push", tgz, "oci://"+reg.Addr+"/charts", "--plain-http")
	want := getManifest(t, reg.Addr, "charts/demo", charttest.ProvVersion)

	t.Setenv("TZ", "UTC") // helm push formats the time in its local zone: UTC in charttest's env
	a, err := helmchart.FromFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Manifest, want) {
		t.Fatalf("manifest differs from helm push's:\nbale %s\nhelm %s", a.Manifest, want)
	}
	if !strings.Contains(string(want), helmchart.ProvLayerMediaType) {
		t.Fatalf("helm push's manifest has no provenance layer: %s", want)
	}
	if got := hex.EncodeToString(sha256Of(a.Chart)); got != repo.Digests[charttest.ProvVersion] {
		t.Fatalf("chart layer sha256 %s, index.yaml %s", got, repo.Digests[charttest.ProvVersion])
	}

	// Written into registry storage, served by docker-registry, helm pulls it back.
	root := t.TempDir()
	ref, err := a.Put(registry.New(root))
	if err != nil {
		t.Fatal(err)
	}
	if ref.String() != "charts/demo:"+charttest.ProvVersion {
		t.Fatalf("ref = %s", ref)
	}
	mine := testenv.StartRegistry(t, root)
	if got := getManifest(t, mine.Addr, "charts/demo", charttest.ProvVersion); !bytes.Equal(got, want) {
		t.Fatalf("served manifest differs:\n%s", got)
	}
	pull := t.TempDir()
	h.Run(t, pull, "pull", "oci://"+mine.Addr+"/charts/demo", "--version", charttest.ProvVersion, "--plain-http", "-d", pull)
	assertSameFile(t, filepath.Join(pull, "demo-"+charttest.ProvVersion+".tgz"), repo.Tgz(charttest.ProvVersion))

	// The same chart copied from an OCI registry keeps helm's manifest byte for byte.
	st := registry.New(t.TempDir())
	oref, otgz, err := helmchart.PutOCI(context.Background(), remote.Options{NoTLSVerify: true}, st, "oci://"+reg.Addr+"/charts/demo", ">=0.1.0 <0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Resolve(oref)
	if err != nil || d != digest.FromBytes(want) || !bytes.Equal(otgz, a.Chart) {
		t.Fatalf("PutOCI %s: %s, %v; want %s", oref, d, err, digest.FromBytes(want))
	}
	if _, _, err := helmchart.PutOCI(context.Background(), remote.Options{NoTLSVerify: true}, st, reg.Addr+"/charts/demo", ">=1.0.0"); !errors.Is(err, helmchart.ErrNoMatch) {
		t.Fatalf("a range nothing matches: %v", err)
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func assertSameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("%s (%d bytes) differs from %s (%d bytes)", got, len(g), want, len(w))
	}
}

// TestChartFromRepo: a semver range picks the newest match from index.yaml; the .tgz is the
// repository's, its .prov travels; a range nothing matches and a repository that does not
// answer are errors.
func TestChartFromRepo(t *testing.T) {
	h := charttest.NewHelm(t)
	repo := charttest.StartRepo(t, h)
	ctx := context.Background()
	a, err := helmchart.FromRepo(ctx, helmchart.HTTP{}, repo.URL, "demo", ">=0.1.0 <0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata.Version != "0.1.5" || a.Prov == nil {
		t.Fatalf("got %s (prov %v), want 0.1.5 with its .prov", a.Metadata.Version, a.Prov != nil)
	}
	if got := hex.EncodeToString(sha256Of(a.Chart)); got != repo.Digests["0.1.5"] {
		t.Fatalf("sha256 %s, index.yaml %s", got, repo.Digests["0.1.5"])
	}
	a, err = helmchart.FromRepo(ctx, helmchart.HTTP{}, repo.URL+"/", "demo", "")
	if err != nil || a.Metadata.Version != "0.2.0" || a.Prov != nil {
		t.Fatalf("newest: %v %v", a, err)
	}
	if _, err := helmchart.FromRepo(ctx, helmchart.HTTP{}, repo.URL, "demo", "~0.3"); !errors.Is(err, helmchart.ErrNoMatch) {
		t.Fatalf("no match: %v", err)
	}
	if _, err := helmchart.FromRepo(ctx, helmchart.HTTP{}, repo.URL, "nope", ""); !errors.Is(err, helmchart.ErrNoMatch) {
		t.Fatalf("no chart: %v", err)
	}
	if _, err := helmchart.FromRepo(ctx, helmchart.HTTP{}, "http://127.0.0.1:1", "demo", ""); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("no answer: %v", err)
	}
}

// TestImages: the images of demo, rendered by helm's engine with its values and with the
// site's, are exactly those written by hand (the ConfigMap's and NOTES.txt's image-like text
// are not images).
func TestImages(t *testing.T) {
	a, err := helmchart.FromDir(filepath.Join(charttest.Dir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata.Name != "demo" || a.Metadata.Version != "0.1.3" {
		t.Fatalf("packaged %s %s", a.Metadata.Name, a.Metadata.Version)
	}
	for _, tc := range []struct {
		v    helmchart.Values
		want []string
	}{
		{helmchart.Values{}, []string{"busybox:1.36", "example/app:1.0", "example/backup:1.0", "example/db:5.7", "example/debug:latest", "quay.io/example/tool:2.0"}},
		{helmchart.Values{Files: []string{filepath.Join(charttest.Dir(), "site-values.yaml")}}, readList(t, filepath.Join(charttest.Dir(), "site-images.txt"))},
		{helmchart.Values{Set: []string{"sub.enabled=false", "image.tag=2"}}, []string{"busybox:1.36", "example/app:2", "example/backup:2", "quay.io/example/tool:2.0"}},
	} {
		ch, err := helmchart.LoadArchive(a.Chart)
		if err != nil {
			t.Fatal(err)
		}
		got, err := helmchart.Images(ch, tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("values %+v:\ngot  %q\nwant %q", tc.v, got, tc.want)
		}
	}
}

// readList reads an image list written by hand.
func readList(t *testing.T, p string) []string {
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

func TestManifestImages(t *testing.T) {
	got, err := helmchart.ManifestImages([]byte(`kind: List
items:
  - kind: Job
    spec: {template: {spec: {containers: [{image: a/b@sha256:` + strings.Repeat("0", 64) + `}]}}}
---
kind: Service
spec: {containers: [{image: not/me}]}
---
kind: ReplicationController
spec: {template: {spec: {initContainers: [{image: " c "}]}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b@sha256:" + strings.Repeat("0", 64), "c:latest"}; !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	for _, bad := range []string{"kind: Pod\nspec: {containers: [{image: [1]}]}\n", "kind: Pod\nspec: {containers: [{image: 'A B'}]}\n", "kind: [\n"} {
		if _, err := helmchart.ManifestImages([]byte(bad)); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzManifestImages: rendered manifests come from charts of anyone; the extraction never
// panics and gives only references an image list takes.
func FuzzManifestImages(f *testing.F) {
	f.Add([]byte("kind: Pod\nspec: {containers: [{image: a:1}], ephemeralContainers: [{image: b}]}\n"))
	f.Add([]byte("kind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{image: x/y:2}]}}}}}\n---\nkind: List\nitems: [{kind: Pod}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		imgs, err := helmchart.ManifestImages(b)
		if err != nil {
			return
		}
		for _, i := range imgs {
			if _, err := layout.ParseRef(i); err != nil {
				t.Fatalf("gave %q: %v", i, err)
			}
		}
	})
}

// TestChartFromDirStable: a chart directory packaged twice, a second apart, gives the same
// artifact (manifest included), so that packing the same release twice gives the same bundle;
// the real helm renders the .tgz.
func TestChartFromDirStable(t *testing.T) {
	dir := filepath.Join(charttest.Dir(), "demo")
	a, err := helmchart.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	b, err := helmchart.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Chart, b.Chart) || !bytes.Equal(a.Manifest, b.Manifest) {
		t.Fatalf("packaged twice, two artifacts:\n%s\n%s", a.Manifest, b.Manifest)
	}
	h := charttest.NewHelm(t)
	tgz := filepath.Join(t.TempDir(), "demo.tgz")
	if err := os.WriteFile(tgz, a.Chart, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := h.Run(t, "", "template", tgz); !strings.Contains(string(out), "example/app:1.0") {
		t.Fatalf("helm template:\n%s", out)
	}
}
