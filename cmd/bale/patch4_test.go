package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// memberNames lists every member of a bundle after the catalog, read with bale's reader.
func memberNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := archive.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Name)
	}
	return out
}

// TestPatchAdditive: the patch A->B (format 4) records only what B adds to or moves in A
// (rel/app-4 and rel/app-5 moved, rel/new added, rel/old removed) and the links of those
// images only; applied over A it gives B in registry storage served by docker-registry and
// pulled by skopeo, in a dir: tree, through bale serve A PATCH and bale push A PATCH (the
// patch alone is refused); bale diff A PATCH composes the two; a chain A -> B -> C made with both bases applies; a patch with nothing to add is empty.
func TestPatchAdditive(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	a, ab := filepath.Join(work, "a.tar.zst"), filepath.Join(work, "a-b.tar.zst")
	mustBale(t, "pack", "-o", a, r.root[0])
	mustBale(t, "pack", "--base", a, "--remove-absent-tags", "-o", ab, r.root[1])

	var info struct {
		bundleInfo
		Format   int
		Additive bool
	}
	checkListHead(t, ab)
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", ab).stdout), &info); err != nil {
		t.Fatal(err)
	}
	changed := []imagetest.Image{imageNamed(r.corpus[1], "rel/app-4:v1"), imageNamed(r.corpus[1], "rel/app-5:v1"), imageNamed(r.corpus[1], "rel/new:v1")}
	if info.Format != 5 || !info.Additive || len(info.Bases) != 1 || info.Bases[0].Name != a {
		t.Errorf("patch: format %d, additive %v, bases %+v", info.Format, info.Additive, info.Bases)
	}
	checkListedImages(t, info.Images, changed)
	if got := strings.Join(info.RemovedTags, " "); got != "rel/old:v1" {
		t.Errorf("patch removes %q, want rel/old:v1", got)
	}
	if out := mustBale(t, "list", ab).stdout; !strings.Contains(out, "what it adds to or moves in its bases") || !strings.Contains(out, a) {
		t.Errorf("bale list of the patch does not say it lists what it adds, or does not name its base:\n%s", out)
	}
	// Members: the tag links of the three images only; rel/new (a new repository) gets the
	// _layers link of its base layer, which A carries.
	var tagLinks []string
	layersOfNew := 0
	for _, n := range memberNames(t, ab) {
		if i := strings.Index(n, "/_manifests/tags/"); i >= 0 && strings.HasSuffix(n, "/current/link") {
			tagLinks = append(tagLinks, strings.TrimPrefix(n[:i], "docker/registry/v2/repositories/"))
		}
		if strings.HasPrefix(n, "docker/registry/v2/repositories/rel/new/_layers/") {
			layersOfNew++
		}
	}
	sort.Strings(tagLinks)
	if got := strings.Join(tagLinks, " "); got != "rel/app-4 rel/app-5 rel/new" {
		t.Errorf("patch has tag links of %q, want those of rel/app-4 rel/app-5 rel/new", got)
	}
	if layersOfNew != 3 { // config, base layer (carried by A), top layer
		t.Errorf("patch has %d _layers links for rel/new, want 3", layersOfNew)
	}
	mustBale(t, "verify", ab)

	// A then the patch into registry storage and a dir tree: B, rel/old removed.
	x, y := filepath.Join(work, "x"), filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "registry:"+x, a)
	mustBale(t, "unpack", "--to", "registry:"+x, ab)
	mustBale(t, "verify", "registry:"+x)
	checkList(t, "registry:"+x, r.corpus[1].Images)
	t.Run("served", func(t *testing.T) { checkServed(t, x, "", r.corpus[1].Images) })
	mustBale(t, "unpack", "--to", "dir:"+y, a)
	mustBale(t, "unpack", "--to", "dir:"+y, ab)
	mustBale(t, "verify", "dir:"+y)
	checkList(t, "dir:"+y, r.corpus[1].Images)

	// bale serve A PATCH serves every tag of B.
	t.Run("bale serve", func(t *testing.T) {
		srv := startServe(t, a, ab)
		for _, img := range r.corpus[1].Images {
			srv.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
		}
	})

	// bale push A PATCH pushes B; the patch alone is refused.
	t.Run("bale push", func(t *testing.T) {
		dst := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "pushed"))
		if res := bale(t, "push", "--dest-tls-verify=false", ab, "docker://"+dst.Addr); res.code == 0 || !strings.Contains(res.stderr, "give its base first") {
			t.Errorf("push of the patch alone: exit %d\n%s", res.code, res.stderr)
		}
		mustBale(t, "push", "--dest-tls-verify=false", a, ab, "docker://"+dst.Addr)
		for _, img := range r.corpus[1].Images {
			dst.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
		}
	})

	// diff A PATCH is diff A B; a patch as OLD is refused.
	var diff struct{ Added, Removed, Changed []struct{ Repo, Tag string } }
	if err := json.Unmarshal([]byte(mustBale(t, "diff", "--json", a, ab).stdout), &diff); err != nil {
		t.Fatal(err)
	}
	if len(diff.Added) != 1 || diff.Added[0].Repo != "rel/new" || len(diff.Removed) != 1 || diff.Removed[0].Repo != "rel/old" || len(diff.Changed) != 2 {
		t.Errorf("diff A PATCH: %+v", diff)
	}
	if res := bale(t, "diff", ab, r.root[1]); res.code == 0 || !strings.Contains(res.stderr, "format-4 patch") {
		t.Errorf("diff with a patch as OLD: exit %d\n%s", res.code, res.stderr)
	}

	// A chain: C against A and the patch, applied in one command.
	bc := filepath.Join(work, "b-c.tar.zst")
	if res := bale(t, "pack", "--base", ab, "-o", bc, r.root[2]); res.code == 0 || !strings.Contains(res.stderr, "give every bundle of the chain") {
		t.Errorf("pack against the patch alone: exit %d\n%s", res.code, res.stderr)
	}
	mustBale(t, "pack", "--base", a, "--base", ab, "-o", bc, r.root[2])
	z := filepath.Join(work, "z")
	mustBale(t, "unpack", "--to", "registry:"+z, a, ab, bc)
	checkList(t, "registry:"+z, r.corpus[2].Images)
	checkServed(t, z, "", r.corpus[2].Images)

	// Nothing to add: an empty patch, which applies.
	same := filepath.Join(work, "same.tar.zst")
	mustBale(t, "pack", "--base", a, "-o", same, r.root[0])
	if n := len(bundleInfoOf(t, same).Images); n != 0 {
		t.Errorf("a patch of A against A lists %d images", n)
	}
	w := filepath.Join(work, "w")
	mustBale(t, "unpack", "--to", "registry:"+w, a, same)
	checkList(t, "registry:"+w, r.corpus[0].Images)
}

// TestPatchOldFormatReads: testdata/old-patch holds a base and a patch written by bale at
// c457b46, before format 4 (its patch catalog records the whole release, format 1):
//
//	SOURCE_DATE_EPOCH=1700000000 bale pack --images base.list -o base.tar.zst ../sample-registry
//	SOURCE_DATE_EPOCH=1700000000 bale pack --base base.tar.zst -o patch.tar.zst ../sample-registry
//
// (base.list: busybox:1.36.1, a/b:rc_1, multiarch/pause:3.2, kubesphere/kube-proxy:v1.20.6).
// This bale lists, verifies, unpacks and serves them as before. That bale refuses a format-4
// patch with "bundle format "4", this bale reads formats 1 to 3" (exit 4; checked by hand).
func TestPatchOldFormatReads(t *testing.T) {
	base, patch := filepath.Join("..", "..", "testdata", "old-patch", "base.tar.zst"), filepath.Join("..", "..", "testdata", "old-patch", "patch.tar.zst")
	sample := filepath.Join("..", "..", "testdata", "sample-registry")
	want := gotListed(listJSON(t, "registry:"+sample))
	if got := gotListed(listJSON(t, patch)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the old patch lists:\n%s\nwant the whole release:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mustBale(t, "verify", patch)
	x := filepath.Join(t.TempDir(), "x")
	mustBale(t, "unpack", "--to", "registry:"+x, base, patch)
	mustBale(t, "verify", "registry:"+x)
	if got := gotListed(listJSON(t, "registry:"+x)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("base + old patch unpacked lists:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	srv := startServe(t, base, patch)
	for _, l := range listJSON(t, "registry:"+sample) {
		srv.CheckPull(t, l.Repo, l.Tag, digest.Digest(l.Digest), nil)
	}
}
