package layout_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// TestUnion: each repository is read from the source that holds it (the overlay's hide the
// base's), tags and blob paths too, and a FileSource pair stays a FileSource.
func TestUnion(t *testing.T) {
	base, err := registry.Open(filepath.Join("..", "testdata", "sample-registry"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := base.Refs()
	if err != nil || len(refs) < 2 {
		t.Fatalf("sample registry: %v %v", refs, err)
	}
	a, b := refs[0], refs[len(refs)-1]
	over := registry.New(t.TempDir())
	put := func(ref layout.Ref, from layout.Ref) {
		d, err := base.Resolve(from)
		if err != nil {
			t.Fatal(err)
		}
		img, err := layout.LoadImage(base, from.Repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := over.PutImage(ref, img, base); err != nil {
			t.Fatal(err)
		}
	}
	chart := layout.Ref{Repo: "charts/x", Tag: "1.0"}
	put(chart, a)
	shadow := layout.Ref{Repo: b.Repo, Tag: "only-in-overlay"}
	put(shadow, a)

	u, err := layout.NewUnion(base, over)
	if err != nil {
		t.Fatal(err)
	}
	fs, ok := u.(layout.FileSource)
	if !ok {
		t.Fatal("a union of two registry stores is no FileSource")
	}
	got, err := u.Refs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, chart) || !slices.Contains(got, shadow) || slices.Contains(got, b) || !slices.Contains(got, a) {
		t.Fatalf("Refs = %v", got)
	}
	if _, err := u.Resolve(b); !errors.Is(err, layout.ErrNotFound) {
		t.Fatalf("%s, hidden by the overlay, resolved: %v", b, err)
	}
	d, err := u.Resolve(chart)
	if err != nil {
		t.Fatal(err)
	}
	img, err := layout.LoadImage(u, chart.Repo, d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fs.BlobPath(chart.Repo, *img.Manifest.Config)
	if err != nil || !strings.HasPrefix(p, over.Root()+string(filepath.Separator)) {
		t.Fatalf("BlobPath: %s %v", p, err)
	}
	tags, err := u.(layout.TagLister).Tags(chart.Repo)
	if err != nil || !slices.Equal(tags, []string{"1.0"}) {
		t.Fatalf("Tags = %v %v", tags, err)
	}
}
