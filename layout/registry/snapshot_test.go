package registry

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/bale-project/bale/layout"
)

// TestSnapshotReadsOnce checks that a snapshot view answers what it read before from what it
// kept (the links and tag list are removed from disk after the first reads), that it finds
// the same referrers as the store itself, that a write through it is seen, and that it still
// refuses a bad link.
func TestSnapshotReadsOnce(t *testing.T) {
	s := newStore(t)
	img := testImage(t, s, "r")
	d := img.Digest()
	if err := s.LinkImage("a/b", img); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("a/b", "v1", d); err != nil {
		t.Fatal(err)
	}
	cfg := putBlob(t, s, "application/vnd.oci.empty.v1+json", []byte("{}"))
	raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIManifest + `","artifactType":"application/x-test","config":` +
		descJSON(cfg) + `,"layers":[` + descJSON(cfg) + `],"subject":` + descJSON(img.Manifest.Descriptor()) + `}`)
	putBlob(t, s, layout.MediaTypeOCIManifest, raw)
	rm, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LinkImage("a/b", &layout.Image{Manifest: rm}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Referrers("a/b", d)
	if err != nil || len(want) != 1 || want[0].Digest != rm.Digest {
		t.Fatalf("store: Referrers = %v, %v; want %s", want, err, rm.Digest)
	}

	v := s.Snapshot().(*Store)
	tags, err := v.Tags("a/b")
	if err != nil || !reflect.DeepEqual(tags, []string{"v1"}) {
		t.Fatalf("view: Tags = %v, %v", tags, err)
	}
	loaded, err := layout.ResolveImage(v, layout.Ref{Repo: "a/b", Tag: "v1"}, nil)
	if err != nil || loaded.Digest() != d {
		t.Fatalf("view: ResolveImage = %v, %v", loaded, err)
	}
	got, err := v.Referrers("a/b", d)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("view: Referrers = %v, %v; want %v", got, err, want)
	}

	// What the view read is kept: the tag's current link and the image's revision link are
	// read once, however often pack asks.
	for _, spec := range []PathSpec{TagCurrent{Repo: "a/b", Tag: "v1"}, RevisionLink{Repo: "a/b", Digest: d}} {
		if err := os.Remove(mustPath(t, s, spec)); err != nil {
			t.Fatal(err)
		}
	}
	if tags, err := v.Tags("a/b"); err != nil || !reflect.DeepEqual(tags, []string{"v1"}) {
		t.Errorf("view: Tags again = %v, %v", tags, err)
	}
	if got, err := v.Resolve(layout.Ref{Repo: "a/b", Tag: "v1"}); err != nil || got != d {
		t.Errorf("view: Resolve again = %s, %v; want %s", got, err, d)
	}
	if _, err := v.ReadManifest("a/b", d); err != nil {
		t.Errorf("view: ReadManifest again: %v", err)
	}
	if _, err := s.Resolve(layout.Ref{Repo: "a/b", Tag: "v1"}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("store: Resolve after removal = %v, want ErrNotFound", err)
	}
	// A fresh view reads the disk again.
	if _, err := s.Snapshot().Resolve(layout.Ref{Repo: "a/b", Tag: "v1"}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("new view: Resolve after removal = %v, want ErrNotFound", err)
	}

	// A write through the view is seen by it.
	if err := v.Tag("a/b", "v1", rm.Digest); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Resolve(layout.Ref{Repo: "a/b", Tag: "v1"}); err != nil || got != rm.Digest {
		t.Errorf("view: Resolve after retag = %s, %v; want %s", got, err, rm.Digest)
	}

	// A bad link is refused through the view, as by the store, and not kept.
	bad := TagCurrent{Repo: "a/b", Tag: "bad"}
	p := mustPath(t, s, bad)
	if err := os.MkdirAll(p[:len(p)-len("/link")], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(string(d)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := v.ReadLink(bad); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("view: ReadLink(bad) = %s, %v; want ErrInvalid", got, err)
		}
	}
}
