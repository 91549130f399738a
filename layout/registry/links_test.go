package registry

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
)

// TestImageLinksForeignLayer: a non-distributable layer the storage lacks gets no _layers
// link from LinkImageIn and is not asked for by CheckLinks (as a registry that never received
// it); once its blob is stored, both want its link.
func TestImageLinksForeignLayer(t *testing.T) {
	s := newStore(t)
	cfg := putBlob(t, s, layout.MediaTypeDockerConfig, []byte(`{"architecture":"amd64","os":"windows"}`))
	foreign := descOf(layout.MediaTypeDockerForeignLayer, []byte("a windows base layer"))
	raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerManifest + `","config":` + descJSON(cfg) +
		`,"layers":[` + descJSON(foreign) + `]}`)
	putBlob(t, s, layout.MediaTypeDockerManifest, raw)
	m, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	img := &layout.Image{Manifest: m}
	if err := s.LinkImage("win", img); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("win", "ltsc", img.Digest()); err != nil {
		t.Fatal(err)
	}
	if s.HasLink(LayerLink{Repo: "win", Digest: foreign.Digest}) {
		t.Error("LinkImage linked an absent foreign layer")
	}
	if errs := CheckLinks(s, "win", "ltsc", img); len(errs) != 0 {
		t.Errorf("CheckLinks wants a link for an absent foreign layer: %v", errs)
	}
	putBlob(t, s, layout.MediaTypeDockerForeignLayer, []byte("a windows base layer"))
	errs := CheckLinks(s, "win", "ltsc", img)
	if len(errs) != 1 || !errors.Is(errs[0], layout.ErrNotFound) || !strings.Contains(errs[0].Error(), foreign.Digest.String()) {
		t.Errorf("CheckLinks with the foreign layer stored = %v, want its _layers link missing", errs)
	}
}

// TestCheckTags: every link kind removed, or rewritten with another digest, is reported once,
// naming its path; a tag directory without a current link is reported although Tags and Refs
// do not list it.
func TestCheckTags(t *testing.T) {
	build := func(t *testing.T) (*Store, *layout.Image) {
		s := newStore(t)
		idx := testIndex(t, s)
		if err := s.LinkImage("multi", idx); err != nil {
			t.Fatal(err)
		}
		if err := s.Tag("multi", "v1", idx.Digest()); err != nil {
			t.Fatal(err)
		}
		if errs := CheckTags(s); len(errs) != 0 {
			t.Fatalf("CheckTags of a whole index: %v", errs)
		}
		return s, idx
	}
	_, idx := build(t)
	child, layer := idx.Children[1].Digest, idx.Children[0].Blobs()[1].Digest
	cases := []struct {
		name    string
		spec    PathSpec
		content string
	}{
		{"current", TagCurrent{Repo: "multi", Tag: "v1"}, ""},
		{"index", TagIndex{Repo: "multi", Tag: "v1", Digest: idx.Digest()}, ""},
		{"revision", RevisionLink{Repo: "multi", Digest: child}, ""},
		{"layers", LayerLink{Repo: "multi", Digest: layer}, ""},
		{"wrong", LayerLink{Repo: "multi", Digest: layer}, child.String()},
		{"badcurrent", TagCurrent{Repo: "multi", Tag: "v1"}, child.String() + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := build(t)
			p := mustPath(t, s, c.spec)
			var err error
			if c.content == "" {
				err = os.Remove(p)
			} else {
				err = os.WriteFile(p, []byte(c.content), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := PathFor(c.spec)
			errs := CheckTags(s)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), rel) && c.name != "badcurrent" {
				t.Fatalf("CheckTags = %v, want one problem naming %s", errs, rel)
			}
			t.Log(errs[0])
		})
	}
	t.Run("tagdir", func(t *testing.T) {
		s, _ := build(t)
		if err := os.MkdirAll(mustPath(t, s, TagDir{Repo: "multi", Tag: "ghost"}), 0o755); err != nil {
			t.Fatal(err)
		}
		errs := CheckTags(s)
		if len(errs) != 1 || !errors.Is(errs[0], layout.ErrNotFound) || !strings.Contains(errs[0].Error(), "multi:ghost") {
			t.Fatalf("CheckTags = %v, want multi:ghost without a current link", errs)
		}
	})
}
