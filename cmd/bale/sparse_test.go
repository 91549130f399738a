package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// TestSparseIndex: several --platform values keep every index byte for byte (its digest
// unchanged) with only the chosen platforms' images. bale list, verify and diff say so;
// docker-registry serving the unpacked storage gives skopeo the original index, and skopeo
// copy --override-arch pulls the chosen platform; bale serve does the same; a dir tree copy
// and bale verify of every layout accept the sparse indexes.
func TestSparseIndex(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "amd64.tar.zst")
	mustBale(t, "pack", "--platform", "linux/amd64", "--platform", "linux/s390x", "-o", bundle, "registry:"+f.registry)
	checkList(t, bundle, f.corpus.Images) // every tag keeps its digest, indexes included
	ls := mustBale(t, "list", bundle).stdout
	checkListHead(t, bundle)
	var sparse []imagetest.Image
	for _, img := range f.corpus.Images {
		if img.IsIndex() {
			sparse = append(sparse, img)
		}
	}
	if len(sparse) == 0 || strings.Count(ls, "(sparse: 1 of 2 platforms)") != len(sparse) || !strings.Contains(ls, "format 5") {
		t.Fatalf("bale list of the sparse bundle:\n%s", ls)
	}
	if v := mustBale(t, "verify", bundle).stdout; !strings.Contains(v, fmt.Sprintf("sparse: %d index(es)", len(sparse))) {
		t.Errorf("bale verify does not report the sparse indexes:\n%s", v)
	}

	full := filepath.Join(work, "full.tar.zst")
	mustBale(t, "pack", "-o", full, "registry:"+f.registry)
	if d := mustBale(t, "diff", bundle, full).stdout; strings.Count(d, "(same index): platforms linux/amd64 -> ") != len(sparse) {
		t.Errorf("bale diff of the sparse and the full bundle:\n%s", d)
	}
	x := filepath.Join(work, "x")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+filepath.Join(work, "d"), bundle)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "dir:"+filepath.Join(work, "d"))
	reg := testenv.StartRegistry(t, x)
	srv := startServe(t, bundle)
	for _, img := range sparse {
		amd64 := amd64Child(t, f.corpus, img).Digest
		for name, r := range map[string]*testenv.Registry{"docker-registry": reg, "bale serve": srv} {
			raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, r.SkopeoFlags("")...), r.Ref(img.Repo, img.Tag))...)
			if got := digest.FromBytes(raw); got != img.Digest {
				t.Errorf("%s serves %s:%s as %s, want the original index %s", name, img.Repo, img.Tag, got, img.Digest)
			}
			dir := filepath.Join(t.TempDir(), "pull")
			testenv.Skopeo(t, append(append([]string{"copy", "--override-os", "linux", "--override-arch", "amd64"}, r.SkopeoFlags("src-")...), r.Ref(img.Repo, img.Tag), "dir:"+dir)...)
			b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil || digest.FromBytes(b) != amd64 {
				t.Errorf("%s: skopeo copy --override-arch amd64 of %s:%s gave %v, want the child %s", name, img.Repo, img.Tag, err, amd64)
			}
		}
	}
}

// amd64Child is the linux/amd64 child descriptor of the corpus index img.
func amd64Child(t *testing.T, c *imagetest.Corpus, img imagetest.Image) imagetest.Descriptor {
	t.Helper()
	var idx imagetest.IndexJSON
	if err := json.Unmarshal(c.Manifest(img.Digest), &idx); err != nil {
		t.Fatal(err)
	}
	var child imagetest.Descriptor
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			child = d
		}
	}
	return child
}
