package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout/dirtree"
)

// checkNoRegistryStage fails if registry storage (docker/registry/v2, or the .bale-staging
// directory older bales kept it in) appears anywhere inside the dir tree at root.
func checkNoRegistryStage(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == ".bale-staging" || strings.HasSuffix(p, filepath.Join("docker", "registry", "v2")) {
			t.Errorf("registry storage staged inside the dir tree: %s", p)
			return filepath.SkipDir
		}
		return nil
	})
}

// checkOnlyImages fails if root holds anything but image directories (and the folders of
// nested repository names): no content store, lock file or temporary file is left.
func checkOnlyImages(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".bale") {
			t.Errorf("left in the dir tree: %s", p)
		}
		return nil
	})
}

// TestUnpackDirAloneCopiesWithSkopeo: unpack --to dir: alone writes the tree straight from
// the bundle (no registry storage staged in it, nothing but images left), each blob once on
// disk, and the real skopeo copies every image of it (dir:PATH/<repo>:<tag>, --all
// --preserve-digests) into docker-registry, which serves it at the same digests.
func TestUnpackDirAloneCopiesWithSkopeo(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, f.registry)
	y := filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "dir:"+y, bundle)
	checkNoRegistryStage(t, y)
	checkOnlyImages(t, y)
	mustBale(t, "verify", "dir:"+y)
	checkList(t, "dir:"+y, f.corpus.Images)

	inodes := map[digest.Digest]uint64{}
	for _, img := range f.corpus.Images {
		blobs, err := f.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range blobs {
			ino := inode(t, filepath.Join(y, img.Repo+":"+img.Tag, d.Encoded()))
			if old, ok := inodes[d]; ok && old != ino {
				t.Errorf("blob %s stored twice (inodes %d and %d)", d, old, ino)
			}
			inodes[d] = ino
		}
	}

	reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "copied"))
	for _, img := range f.corpus.Images {
		src := "dir:" + filepath.Join(y, img.Repo+":"+img.Tag)
		testenv.Skopeo(t, append(append([]string{"copy", "--all", "--preserve-digests"}, reg.SkopeoFlags("dest-")...),
			src, reg.Ref("copied/"+img.Repo, img.Tag))...)
		reg.CheckPull(t, "copied/"+img.Repo, img.Tag, img.Digest, img.Children)
	}
}

// TestUnpackDirAloneKilled kills bale unpack --to dir: alone with SIGKILL at points spread
// over its run: after every kill no registry storage is staged in the tree and every image
// directory there is complete (bale verify), and a final re-run completes everything, verified,
// with nothing but images left and each blob once on disk.
func TestUnpackDirAloneKilled(t *testing.T) {
	work := t.TempDir()
	bundle := filepath.Join(work, "big.tar.zst")
	mustBale(t, "pack", "-o", bundle, bigStore(t, 8, 12<<20))
	y := filepath.Join(work, "y")
	args := []string{"unpack", "--to", "dir:" + y, bundle}

	start := time.Now()
	mustBale(t, "unpack", "--to", "dir:"+filepath.Join(work, "scratch"), bundle)
	full := time.Since(start)
	os.RemoveAll(filepath.Join(work, "scratch"))

	killed := killRuns(t, args, full, 8, func(i int) {
		checkNoRegistryStage(t, y)
		if dirtree.Is(y) { // every image directory there is whole
			mustBale(t, "verify", "dir:"+y)
		}
		if i%4 == 0 { // sometimes from scratch; the last run after a kill never is
			os.RemoveAll(y)
		}
	})
	t.Logf("a whole unpack takes %v; killed %d runs", full, killed)
	mustBale(t, args...)
	mustBale(t, "verify", "dir:"+y)
	checkOnlyImages(t, y)
	shared := map[uint64]bool{}
	for i := range 8 {
		ents, err := os.ReadDir(filepath.Join(y, "big", fmt.Sprintf("app-%d:v1", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			// The base layer: a tar of 4 MiB (the others are 12 MiB, or configs).
			if fi, err := e.Info(); err == nil && fi.Size() > 4<<20 && fi.Size() < 4<<20+4096 {
				shared[fi.Sys().(*syscall.Stat_t).Ino] = true
			}
		}
	}
	if len(shared) != 1 {
		t.Errorf("the base layer shared by the 8 images is %d files on disk, want 1", len(shared))
	}
}

// TestUnpackDirAloneChain: a base and two patches (the first removing a tag) into dir: alone,
// in one command and one at a time onto the tree, end with the last release's images, the
// removal reported both ways, nothing but images left.
func TestUnpackDirAloneChain(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	full := filepath.Join(work, "a.tar.zst")
	mustBale(t, "pack", "-o", full, r.root[0])
	ab := filepath.Join(work, "a-b.tar.zst")
	mustBale(t, "pack", "--base", full, "--remove-absent-tags", "-o", ab, r.root[1])
	bc := filepath.Join(work, "b-c.tar.zst")
	mustBale(t, "pack", "--base", full, "--base", ab, "-o", bc, r.root[2])

	y := filepath.Join(work, "y")
	res := mustBale(t, "unpack", "--to", "dir:"+y, full, ab, bc)
	if !strings.Contains(res.stderr, "removed tag rel/old:v1") {
		t.Errorf("unpack of the chain did not report the removal:\n%s", res.stderr)
	}
	checkList(t, "dir:"+y, r.corpus[2].Images)
	mustBale(t, "verify", "dir:"+y)
	checkOnlyImages(t, y)

	y2 := filepath.Join(work, "y2")
	mustBale(t, "unpack", "--to", "dir:"+y2, full)
	res = mustBale(t, "unpack", "--to", "dir:"+y2, ab)
	if !strings.Contains(res.stderr, "removed tag rel/old:v1") {
		t.Errorf("unpack of the patch onto the tree did not report the removal:\n%s", res.stderr)
	}
	checkList(t, "dir:"+y2, r.corpus[1].Images)
	mustBale(t, "unpack", "--to", "dir:"+y2, bc)
	checkList(t, "dir:"+y2, r.corpus[2].Images)
	mustBale(t, "verify", "dir:"+y2)
	checkNoRegistryStage(t, y2)
	checkOnlyImages(t, y2)
}

// TestUnpackDirAloneReferrers: signatures, attestations, SBOMs, the referrers tag and an
// untagged referrer (cosign and oras made them) land in a dir: tree written alone exactly as
// in one hard-linked from registry storage: the same image directories, the same files, the
// same bytes.
func TestUnpackDirAloneReferrers(t *testing.T) {
	s := newSignedSource(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "--images", s.list, "-o", bundle, "registry:"+s.root)
	y, z := filepath.Join(work, "y"), filepath.Join(work, "z")
	mustBale(t, "unpack", "--to", "registry:"+filepath.Join(work, "x"), "--to", "dir:"+y, bundle)
	mustBale(t, "unpack", "--to", "dir:"+z, bundle)
	mustBale(t, "verify", "dir:"+z)
	checkOnlyImages(t, z)
	files := func(root string) map[string]digest.Digest {
		out := map[string]digest.Digest{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".bale") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out[rel] = digest.FromBytes(b)
			return nil
		})
		return out
	}
	want, got := files(y), files(z)
	for p, d := range want {
		if got[p] != d {
			t.Errorf("%s: %q in the tree written alone, %q in the one linked from registry storage", p, got[p], d)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: only in the tree written alone", p)
		}
	}
	if len(want) == 0 {
		t.Fatal("the tree linked from registry storage is empty")
	}
	t.Logf("%d files compared", len(want))
}
