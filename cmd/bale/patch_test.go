package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout/registry"
)

// releases are three genuine registry storages (A, B, C of imagetest.Releases) written by
// docker-registry from skopeo pushes, made once per test binary.
type releases struct {
	corpus [3]*imagetest.Corpus
	root   [3]string
}

var (
	relOnce sync.Once
	rel     *releases
)

func getReleases(t *testing.T) *releases {
	t.Helper()
	testenv.Need(t, "skopeo")
	testenv.Need(t, "docker-registry")
	relOnce.Do(func() {
		t.Run("releases", func(t *testing.T) {
			dir, err := os.MkdirTemp("", "bale-releases-")
			if err != nil {
				t.Fatal(err)
			}
			extraCleanup = append(extraCleanup, dir)
			r := &releases{}
			a, b, c := imagetest.Releases()
			r.corpus = [3]*imagetest.Corpus{a, b, c}
			for i, corpus := range r.corpus {
				r.root[i] = filepath.Join(dir, string(rune('a'+i)))
				reg := testenv.StartRegistry(t, r.root[i])
				src := t.TempDir()
				for _, img := range corpus.Images {
					p, err := corpus.WriteDir(src, img)
					if err != nil {
						t.Fatal(err)
					}
					reg.Push(t, "dir:"+p, img.Repo, img.Tag)
				}
				reg.Stop()
			}
			rel = r
		})
	})
	if rel == nil {
		t.Fatal("building the releases failed")
	}
	return rel
}

// bundleInfo is what `bale list --json` says of a bundle as a whole.
type bundleInfo struct {
	ID           string
	Bases        []struct{ Name string }
	CarriedBlobs int
	CarriedBytes int64
	RemovedTags  []string
	Images       []listed
}

func bundleInfoOf(t *testing.T, path string) bundleInfo {
	t.Helper()
	var bi bundleInfo
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", path).stdout), &bi); err != nil {
		t.Fatal(err)
	}
	return bi
}

// carriedBlobs lists the blob members of a bundle, read with bale's own reader.
func carriedBlobs(t *testing.T, path string) []string {
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
		if _, ok := m.Spec.(registry.BlobData); ok {
			out = append(out, string(m.Blob.Digest))
		}
	}
	sort.Strings(out)
	return out
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestPatchJourney: release A as a full bundle, the patch A->B, applied on top of A into a
// registry dir and a dir tree, checked with the real registry and skopeo; sizes; diff.
func TestPatchJourney(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	full := filepath.Join(work, "a.tar.zst")
	mustBale(t, "pack", "-o", full, r.root[0])

	// diff predicts the patch.
	var diff struct {
		Added, Removed, Changed []struct{ Repo, Tag, Old, New string }
		PatchBytes, PatchSize   int64
	}
	if err := json.Unmarshal([]byte(mustBale(t, "diff", "--json", full, "registry:"+r.root[1]).stdout), &diff); err != nil {
		t.Fatal(err)
	}
	names := func(l []struct{ Repo, Tag, Old, New string }) string {
		var s []string
		for _, x := range l {
			s = append(s, x.Repo+":"+x.Tag)
		}
		return strings.Join(s, " ")
	}
	if got := names(diff.Added); got != "rel/new:v1" {
		t.Errorf("diff added %q", got)
	}
	if got := names(diff.Removed); got != "rel/old:v1" {
		t.Errorf("diff removed %q", got)
	}
	if got := names(diff.Changed); got != "rel/app-4:v1 rel/app-5:v1" {
		t.Errorf("diff changed %q", got)
	}

	patch := filepath.Join(work, "a-b.tar.zst")
	mustBale(t, "pack", "--base", full, "-o", patch, r.root[1])
	pi, fi := bundleInfoOf(t, patch), bundleInfoOf(t, full)
	if len(pi.Bases) != 1 || pi.Bases[0].Name != full {
		t.Errorf("patch bases %+v", pi.Bases)
	}
	// A format-4 patch lists what it adds to or moves in its base.
	checkListedImages(t, pi.Images, []imagetest.Image{imageNamed(r.corpus[1], "rel/app-4:v1"), imageNamed(r.corpus[1], "rel/app-5:v1"), imageNamed(r.corpus[1], "rel/new:v1")})

	// The patch carries exactly the blobs of B that A lacks, and its size is bounded.
	inA := map[string]bool{}
	for d := range r.corpus[0].Blobs {
		inA[string(d)] = true
	}
	var want []string
	var wantBytes int64
	for d, b := range r.corpus[1].Blobs {
		if !inA[string(d)] {
			want = append(want, string(d))
			wantBytes += int64(len(b))
		}
	}
	sort.Strings(want)
	if got := carriedBlobs(t, patch); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("patch carries %d blobs, want the %d of B that A lacks", len(got), len(want))
	}
	if pi.CarriedBytes != wantBytes || diff.PatchBytes != wantBytes {
		t.Errorf("carried bytes: list %d, diff %d, want %d", pi.CarriedBytes, diff.PatchBytes, wantBytes)
	}
	size := fileSize(t, patch)
	catalogSize := catalogBytesOf(t, patch)
	if limit := wantBytes + catalogSize + (wantBytes+catalogSize)/100; size > limit {
		t.Errorf("patch is %d bytes; limit %d (carried %d + catalog %d + 1%%)", size, limit, wantBytes, catalogSize)
	}
	if d := diff.PatchSize - size; d*100 > size || -d*100 > size {
		t.Errorf("diff predicted %d bytes, the patch is %d (more than 1%% off)", diff.PatchSize, size)
	}
	t.Logf("full A %d bytes; patch A->B %d bytes carrying %d; diff predicted %d", fileSize(t, full), size, wantBytes, diff.PatchSize)
	if fi.CarriedBytes <= pi.CarriedBytes {
		t.Errorf("patch carries %d bytes, the full bundle %d", pi.CarriedBytes, fi.CarriedBytes)
	}

	// Applied alone onto an empty target, the patch fails before writing anything.
	empty := filepath.Join(work, "empty")
	res := bale(t, "unpack", "--to", "registry:"+empty, patch)
	if res.code != exitNotFound {
		t.Fatalf("patch alone: exit %d, want %d\n%s", res.code, exitNotFound, res.stderr)
	}
	for _, s := range []string{fi.ID, "rel/app-4:v1", "missing sha256:"} {
		if !strings.Contains(res.stderr, s) {
			t.Errorf("the error does not say %q:\n%s", s, res.stderr)
		}
	}
	if _, err := os.Lstat(empty); !os.IsNotExist(err) {
		t.Errorf("a refused patch created the target (%v)", err)
	}
	// The same onto a dir tree target.
	emptyDir := filepath.Join(work, "empty-dir")
	if res := bale(t, "unpack", "--to", "dir:"+emptyDir, patch); res.code != exitNotFound {
		t.Errorf("patch alone into dir: exit %d, want %d\n%s", res.code, exitNotFound, res.stderr)
	}
	if _, err := os.Lstat(emptyDir); !os.IsNotExist(err) {
		t.Errorf("a refused patch created the dir target (%v)", err)
	}

	// A, then the patch, into registry storage and a dir tree.
	x, y := filepath.Join(work, "x"), filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, full)
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, patch)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "dir:"+y)
	// A tag absent from the patch is left alone: rel/old:v1 is still there.
	withOld := append(append([]imagetest.Image{}, r.corpus[1].Images...), imageNamed(r.corpus[0], "rel/old:v1"))
	checkList(t, "registry:"+x, withOld)
	checkList(t, "dir:"+y, withOld)
	t.Run("served", func(t *testing.T) { checkServed(t, x, "", r.corpus[1].Images) })
	t.Run("skopeo sync --src dir", func(t *testing.T) {
		reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "synced"))
		testenv.Skopeo(t, "sync", "--all", "--preserve-digests", "--scoped", "--src", "dir", "--dest", "docker",
			"--dest-tls-verify=false", "--dest-no-creds", y, reg.Addr+"/synced")
		for _, img := range r.corpus[1].Images {
			reg.CheckPull(t, "synced/"+img.Repo, img.Tag, img.Digest, img.Children)
		}
	})

	// With dir: alone, the patch takes the base's blobs from the images already in the tree.
	y2 := filepath.Join(work, "y2")
	mustBale(t, "unpack", "--to", "dir:"+y2, full)
	mustBale(t, "unpack", "--to", "dir:"+y2, patch)
	mustBale(t, "verify", "dir:"+y2)
	checkList(t, "dir:"+y2, withOld)
}

// TestPatchRemoveTagsAndChain: --remove-absent-tags removes what B dropped; a chain
// A -> B -> C applies in one command; a patch made against `bale catalog` of an unpacked A
// carries the same blobs as one made against A's bundle.
func TestPatchRemoveTagsAndChain(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	full := filepath.Join(work, "a.tar.zst")
	mustBale(t, "pack", "-o", full, r.root[0])
	ab := filepath.Join(work, "a-b.tar.zst")
	mustBale(t, "pack", "--base", full, "--remove-absent-tags", "-o", ab, r.root[1])
	if got := bundleInfoOf(t, ab).RemovedTags; strings.Join(got, " ") != "rel/old:v1" {
		t.Errorf("patch removes %v, want rel/old:v1", got)
	}
	bc := filepath.Join(work, "b-c.tar.zst")
	mustBale(t, "pack", "--base", full, "--base", ab, "-o", bc, r.root[2])

	x := filepath.Join(work, "x")
	res := mustBale(t, "unpack", "--to", "registry:"+x, full, ab, bc)
	if !strings.Contains(res.stderr, "removed tag rel/old:v1") {
		t.Errorf("unpack did not report the removal:\n%s", res.stderr)
	}
	checkImageLines(t, "unpack", res.stderr, r.corpus[0].Images, r.corpus[1].Images, r.corpus[2].Images)
	checkList(t, "registry:"+x, r.corpus[2].Images)
	mustBale(t, "verify", "registry:"+x)
	checkServed(t, x, "", r.corpus[2].Images)

	// A site's catalog instead of the base bundle gives the same patch content.
	site := filepath.Join(work, "site")
	mustBale(t, "unpack", "--to", "registry:"+site, full)
	siteDB := filepath.Join(work, "site.db")
	mustBale(t, "catalog", "-o", siteDB, "registry:"+site)
	fromSite := filepath.Join(work, "a-b-site.tar.zst")
	mustBale(t, "pack", "--base", siteDB, "-o", fromSite, r.root[1])
	plain := filepath.Join(work, "a-b-plain.tar.zst")
	mustBale(t, "pack", "--base", full, "-o", plain, r.root[1])
	if a, b := carriedBlobs(t, fromSite), carriedBlobs(t, plain); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("the patch from the site catalog carries %d blobs, from the bundle %d", len(a), len(b))
	}
	if a, b := bundleInfoOf(t, siteDB).ID, bundleInfoOf(t, full).ID; a != b {
		t.Errorf("the catalog of unpacked A has id %s, A's bundle %s", a, b)
	}
}

// checkImageLines checks the progress lines of a command off a terminal ("unpack rel/app-0:v1
// (1.8 MiB) 3/10"): one for each image the bundles record (the union of sets), each once,
// counted 1 to n.
func checkImageLines(t *testing.T, what, stderr string, sets ...[]imagetest.Image) {
	t.Helper()
	want := map[string]bool{}
	for _, set := range sets {
		for _, img := range set {
			want[img.Name()] = true
		}
	}
	got := map[string]bool{}
	for _, l := range strings.Split(stderr, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != what || !strings.Contains(f[len(f)-1], "/") {
			continue
		}
		if got[f[1]] || !want[f[1]] {
			t.Errorf("progress line %q: a second line for %s, or an image the bundles do not record", l, f[1])
		}
		got[f[1]] = true
		if c := fmt.Sprintf("%d/%d", len(got), len(want)); f[len(f)-1] != c {
			t.Errorf("progress line %q: want the count %s", l, c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s logged %d images, want %d:\n%s", what, len(got), len(want), stderr)
	}
}

func checkListedImages(t *testing.T, got []listed, want []imagetest.Image) {
	t.Helper()
	if g, w := strings.Join(gotListed(got), "\n"), strings.Join(wantListed(want), "\n"); g != w {
		t.Errorf("listed:\n%s\nwant:\n%s", g, w)
	}
}

func imageNamed(c *imagetest.Corpus, name string) imagetest.Image {
	for _, img := range c.Images {
		if img.Name() == name {
			return img
		}
	}
	panic("no image " + name)
}

// catalogBytesOf is the size of a bundle's catalog member.
func catalogBytesOf(t *testing.T, bundle string) int64 {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustBale(t, "catalog", "-o", db, bundle)
	return fileSize(t, db)
}
