package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// TestPushBundleInPlace: push reads a bundle in place (nothing staged under TMPDIR). A bundle
// damaged in a frame of one image's own layer fails the push naming that layer; that image is
// not tagged in docker-registry, and every tag that is there pulls whole with skopeo. The
// undamaged bundle then completes the push.
func TestPushBundleInPlace(t *testing.T) {
	testenv.Need(t, "skopeo")
	root := bigStore(t, 4, 3<<20) // a shared 4 MiB layer, each image its own 3 MiB: frames of 1 MiB
	work := t.TempDir()
	good := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", good, "registry:"+root)
	st, err := registry.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]digest.Digest{}
	for i := range 4 {
		repo := fmt.Sprintf("big/app-%d", i)
		want[repo] = readLink(t, tagLink(root, repo, "v1"))
	}
	img, err := layout.LoadImage(st, "big/app-2", want["big/app-2"])
	if err != nil {
		t.Fatal(err)
	}
	own := img.Manifest.Layers[1] // app2.bin's layer, no other image's
	member, err := registry.PathFor(registry.BlobData{Digest: own.Digest})
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(work, "damaged.tar.zst")
	if err := os.WriteFile(damaged, readFile(t, good), 0o644); err != nil {
		t.Fatal(err)
	}
	damageMemberFrame(t, damaged, member, func(dataOff, size int64) int64 { return dataOff + size/2 })

	tmp := filepath.Join(work, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	reg := testenv.StartRegistry(t, filepath.Join(work, "dst"))
	dest := "docker://" + reg.Addr
	res := bale(t, "push", damaged, dest)
	if res.code == 0 {
		t.Fatalf("push of a bundle damaged in layer %s succeeded:\n%s", own.Digest, res.stderr)
	}
	if !strings.Contains(res.stderr, own.Digest.String()) {
		t.Errorf("the failed push does not name the damaged layer %s:\n%s", own.Digest, res.stderr)
	}
	t.Logf("damaged push: exit %d: %s", res.code, res.stderr)
	pushed := 0
	for repo, d := range want {
		_, err := os.Stat(tagLink(reg.Root, repo, "v1"))
		switch {
		case err == nil && repo == "big/app-2":
			t.Errorf("%s:v1 is tagged, but its layer %s was damaged in the bundle", repo, own.Digest)
		case err == nil:
			pushed++
			reg.CheckPull(t, repo, "v1", d, nil)
		case !os.IsNotExist(err):
			t.Fatal(err)
		}
	}
	t.Logf("%d of 3 undamaged images tagged by the damaged push", pushed)
	checkEmptyDir(t, tmp, "the TMPDIR of the failed push (nothing is staged)")

	res = mustBale(t, "push", good, dest)
	t.Logf("push of the undamaged bundle: %s", lastLine(res.stderr))
	for repo, d := range want {
		reg.CheckPull(t, repo, "v1", d, nil)
	}
	checkEmptyDir(t, tmp, "push's TMPDIR")
}

// checkEmptyDir fails the test unless dir holds nothing.
func checkEmptyDir(t *testing.T, dir, what string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("%s holds %v, want nothing", what, names)
	}
}
