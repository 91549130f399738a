package archive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// poolImage writes image i of a pool: a layer shared by every eighth image plus a layer of
// its own, Docker or OCI by parity.
func poolImage(t *testing.T, fx *fixture, shared []layer, i int) built {
	t.Helper()
	own := makeLayer(t, fmt.Sprintf("app/%d", i), fmt.Sprintf("image %d of the pool\n", i))
	return fx.image(t, i%2 == 0, jplatform{OS: "linux", Architecture: "amd64"}, "2024-01-01T00:00:00Z", shared[i%len(shared)], own)
}

// TestAdditivePatch: a patch of 20 new tags and one moved tag onto a base of 200 records only
// those 21 tags with their manifests and blobs (format 4, its id binding its base), is at
// most 1.5x those tags packed alone, composes with its base into the release's catalog, and,
// extracted member by member over the base's unpacked storage as a plain tar -x would, gives
// storage holding every tag of the release.
func TestAdditivePatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fx := newStoreFixture(t)
	var shared []layer
	for i := range 8 {
		shared = append(shared, makeLayer(t, "base", fmt.Sprintf("shared base layer %d\n", i)))
	}
	repo := func(i int) string { return fmt.Sprintf("pool/app-%03d", i/4) }
	tag := func(i int) string { return fmt.Sprintf("v%d", i%4) }
	for i := range 200 {
		fx.link(t, repo(i), poolImage(t, fx, shared, i), nil, tag(i))
	}
	base := filepath.Join(dir, "base.tar.zst")
	baseC, err := archive.Pack(ctx, base, fx.store, nil, archive.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// 20 new tags: images 200-219 (repository pool/app-050 onwards, new), and one moved tag.
	want := map[string]digest.Digest{} // what the patch must record
	for i := 200; i < 220; i++ {
		b := poolImage(t, fx, shared, i)
		fx.link(t, repo(i), b, nil, tag(i))
		want[repo(i)+":"+tag(i)] = digest.Digest("sha256:" + b.hex)
	}
	moved := poolImage(t, fx, shared, 1000)
	fx.link(t, "pool/app-000", moved, nil, "v0")
	want["pool/app-000:v0"] = digest.Digest("sha256:" + moved.hex)

	patch := filepath.Join(dir, "patch.tar.zst")
	pc, err := archive.Pack(ctx, patch, fx.store, nil, archive.PackOptions{Bases: []catalog.NamedCatalog{{Name: base, Catalog: baseC}}})
	if err != nil {
		t.Fatal(err)
	}
	var refs []layout.Ref
	for name := range want {
		r, err := layout.ParseRef(name)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	alone := filepath.Join(dir, "alone.tar.zst")
	if _, err := archive.Pack(ctx, alone, fx.store, refs, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}

	// The patch as read back from its file.
	c, err := archive.ReadCatalog(patch)
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Format != 5 || len(c.Bases) != 1 || c.Meta.ID != pc.Meta.ID {
		t.Errorf("patch format %d, bases %v, id %s (packed %s)", c.Meta.Format, c.Bases, c.Meta.ID, pc.Meta.ID)
	}
	var got []string
	for _, e := range c.Entries() {
		got = append(got, e.Ref().String())
		if want[e.Ref().String()] != e.Digest {
			t.Errorf("patch records %s -> %s", e.Ref(), e.Digest)
		}
	}
	if len(got) != len(want) {
		t.Errorf("patch records %d entries, want the %d new or moved: %v", len(got), len(want), got)
	}
	// Manifests and blobs: exactly those of the recorded images (the id is computed here).
	wantBlobs := map[digest.Digest]bool{}
	for _, d := range want {
		wantBlobs[d] = true
		h := strings.TrimPrefix(string(d), "sha256:")
		m, err := layout.ParseManifest(fx.blobs[h])
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range append([]layout.Descriptor{*m.Config}, m.Layers...) {
			wantBlobs[b.Digest] = true
		}
	}
	if len(c.Manifests) != len(want) || len(c.Blobs) != len(wantBlobs) {
		t.Errorf("patch records %d manifests and %d blobs, want %d and %d", len(c.Manifests), len(c.Blobs), len(want), len(wantBlobs))
	}
	for d := range c.Blobs {
		if !wantBlobs[d] {
			t.Errorf("patch records blob %s of no new image", d)
		}
	}
	if n := len(c.ExpectedBlobs()); n != len(shared) {
		t.Errorf("patch expects %d blobs from its base, want the %d shared layers", n, len(shared))
	}
	// Its id: its own records, then its base.
	text := ""
	for _, e := range c.Entries() {
		text += fmt.Sprintf("ref %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	for _, d := range slices.Sorted(mapsKeys(wantBlobs)) {
		if b := c.Blobs[d]; b.Base != "" {
			text += fmt.Sprintf("blob %s %d base %s\n", d, b.Size, b.Base)
		} else {
			text += fmt.Sprintf("blob %s %d\n", d, b.Size)
		}
	}
	text += "base " + baseC.Meta.ID + "\n"
	if id := "sha256:" + hexOf([]byte(text)); c.Meta.ID != id {
		t.Errorf("patch id %s, want %s (its records, then its base)", c.Meta.ID, id)
	}

	// The base composed with the patch is the release: the catalog of every tag of the store.
	if composed, err := catalog.Compose(baseC, c); err != nil {
		t.Error(err)
	} else if release := fx.catalog(t); composed.Meta.ID != release.Meta.ID || len(composed.Blobs) != len(release.Blobs) {
		t.Errorf("base + patch composed: id %s, %d blobs; the release: id %s, %d blobs", composed.Meta.ID, len(composed.Blobs), release.Meta.ID, len(release.Blobs))
	}

	ps, as, bs := fileSizeOf(t, patch), fileSizeOf(t, alone), fileSizeOf(t, base)
	t.Logf("base (200 tags) %d bytes; patch (21 tags) %d; those tags alone %d (%.2fx)", bs, ps, as, float64(ps)/float64(as))
	if ps*2 > as*3 {
		t.Errorf("patch is %d bytes, %.2fx the %d of its tags packed alone (at most 1.5x)", ps, float64(ps)/float64(as), as)
	}

	// Base unpacked, then the patch's members written as plain tar -x would: every tag of
	// the release, complete.
	root := filepath.Join(dir, "storage")
	st, err := registry.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.UnpackFiles(ctx, []string{base}, st, archive.UnpackOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(patch)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range readMembers(t, raw) {
		if m.hdr.Name == "bale/catalog.db" {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(m.hdr.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, m.body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	extracted, err := registry.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	full, errs := catalog.VerifySource(extracted)
	if len(errs) > 0 {
		t.Fatalf("storage after tar -x of the patch: %v", errs)
	}
	if n := len(full.Entries()); n != 220 {
		t.Errorf("storage holds %d tags, want 220", n)
	}
	for _, tr := range fx.tags {
		d := digest.Digest("sha256:" + tr.hex)
		if tr.repo == "pool/app-000" && tr.tag == "v0" {
			d = digest.Digest("sha256:" + moved.hex)
		}
		if full.Repos[tr.repo] == nil || full.Repos[tr.repo].Tags[tr.tag] != d {
			t.Errorf("%s:%s is not %s after tar -x", tr.repo, tr.tag, d)
		}
	}

	// Read as one source, base then patch: every tag, the moved one from the patch.
	s, err := archive.OpenSource(ctx, []string{base, patch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sr, _ := s.Refs(); len(sr) != 220 {
		t.Errorf("base+patch source lists %d refs, want 220", len(sr))
	}
	if d, err := s.Resolve(layout.Ref{Repo: "pool/app-000", Tag: "v0"}); err != nil || d != digest.Digest("sha256:"+moved.hex) {
		t.Errorf("moved tag resolves to %s, %v", d, err)
	}
	if _, errs := catalog.VerifySource(s); len(errs) > 0 {
		t.Errorf("verify base+patch: %v", errs)
	}
}

func fileSizeOf(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func mapsKeys[V any](m map[digest.Digest]V) func(func(digest.Digest) bool) {
	return func(yield func(digest.Digest) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
