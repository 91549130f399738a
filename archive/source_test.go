package archive_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// TestSourceWithPatch reads a base and its patch as one source: the patched tags, every blob
// from the bundle that carries it and verified; a patch alone is refused, naming what it
// lacks; a damaged blob fails naming the bundle.
func TestSourceWithPatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fx := newFixture(t)
	base := filepath.Join(dir, "base.tar.zst")
	c1, err := archive.Pack(ctx, base, fx.store, nil, archive.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	added := fx.image(t, false, jplatform{OS: "linux", Architecture: "amd64"}, "2024-06-01T00:00:00Z", makeLayer(t, "new", "new layer\n"))
	fx.link(t, "library/alpine", added, nil, "3.20", "latest")
	patch := filepath.Join(dir, "patch.tar.zst")
	if _, err := archive.Pack(ctx, patch, fx.store, nil, archive.PackOptions{Bases: []catalog.NamedCatalog{{Name: base, Catalog: c1}}}); err != nil {
		t.Fatal(err)
	}

	s, err := archive.OpenSource(ctx, []string{base, patch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	refs, _ := s.Refs()
	var got []string
	for _, r := range refs {
		got = append(got, r.String())
	}
	if want := "a/b/c:v1 library/alpine:3.19 library/alpine:3.20 library/alpine:latest multi:2.0"; strings.Join(got, " ") != want {
		t.Errorf("Refs = %v, want %s", got, want)
	}
	if d, err := s.Resolve(layout.Ref{Repo: "library/alpine", Tag: "latest"}); err != nil || d != digest.Digest("sha256:"+added.hex) {
		t.Errorf("latest = %s, %v; want the patch's %s", d, err, added.hex)
	}
	if _, errs := catalog.VerifySource(s); len(errs) > 0 {
		t.Errorf("verify: %v", errs)
	}
	tags, _ := s.Tags("library/alpine")
	if strings.Join(tags, " ") != "3.19 3.20 latest" {
		t.Errorf("Tags = %v", tags)
	}

	if _, err := archive.OpenSource(ctx, []string{patch}); !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "give its base first") {
		t.Errorf("a patch alone: %v", err)
	}
}
