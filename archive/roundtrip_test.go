package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// TestPackUnpackRoundTrip packs the fixture with Pack, unpacks it into a fresh store, and
// checks every tag, blob and link file of the result against what the test made.
func TestPackUnpackRoundTrip(t *testing.T) {
	fx := newFixture(t)
	out := filepath.Join(t.TempDir(), "images.bale")
	var progress []digest.Digest
	c, err := archive.Pack(context.Background(), out, fx.store, nil, archive.PackOptions{
		BaleVersion: "test",
		Write:       archive.WriteOptions{Progress: func(d digest.Digest, _ int64) { progress = append(progress, d) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Meta.Created.Equal(wantCreated) {
		t.Errorf("catalog created %v, want the newest config's %v", c.Meta.Created, wantCreated)
	}
	if len(progress) != len(fx.blobs) {
		t.Errorf("Progress called %d times, want once per blob (%d)", len(progress), len(fx.blobs))
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("bundle file: %v, %v", fi, err)
	}
	checkNoTemp(t, filepath.Dir(out))

	head, err := archive.ReadCatalog(out)
	if err != nil {
		t.Fatal(err)
	}
	if head.Meta.ID != c.Meta.ID || !head.Meta.Created.Equal(wantCreated) || head.Meta.BaleVersion != "test" {
		t.Errorf("ReadCatalog meta %+v, Pack returned %+v", head.Meta, c.Meta)
	}

	parent, dst := newTarget(t)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reported int
	res, err := archive.Unpack(context.Background(), f, dst, archive.UnpackOptions{Progress: func(d layout.Descriptor, reused bool) {
		reported++
		if reused {
			t.Errorf("blob %s reported reused in an empty target", d.Digest)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsWritten != len(fx.blobs) || res.BlobsReused != 0 || res.BytesWritten != fx.totalBytes() || reported != len(fx.blobs) {
		t.Errorf("result written=%d reused=%d bytes=%d progress=%d, want %d, 0, %d, %d",
			res.BlobsWritten, res.BlobsReused, res.BytesWritten, reported, len(fx.blobs), fx.totalBytes(), len(fx.blobs))
	}
	if res.Catalog == nil || res.Catalog.Meta.ID != c.Meta.ID {
		t.Errorf("result catalog %v, want id %s", res.Catalog, c.Meta.ID)
	}

	for _, tr := range fx.tags {
		got, err := dst.Resolve(layout.Ref{Repo: tr.repo, Tag: tr.tag})
		if err != nil || got != digest.Digest("sha256:"+tr.hex) {
			t.Errorf("%s:%s resolves to %s, %v; want sha256:%s", tr.repo, tr.tag, got, err, tr.hex)
		}
	}
	refs, err := dst.Refs()
	if err != nil || len(refs) != len(fx.tags) {
		t.Errorf("target refs %v, %v; want %d tags", refs, err, len(fx.tags))
	}
	checkUnpacked(t, fx, dst.Root())
	checkTagsComplete(t, dst.Root())
	checkOnlyTarget(t, parent)
}

// checkUnpacked compares the store at root with the fixture: exactly the fixture's blobs
// (byte for byte, mode 0444) and link files (exactly "sha256:<hex>").
func checkUnpacked(t *testing.T, fx *fixture, root string) {
	t.Helper()
	files := treeFiles(t, root)
	want := map[string]bool{}
	for h, b := range fx.blobs {
		name := blobName(h)
		want[name] = true
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("blob %s: %v", h, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("blob %s: content differs from the original", h)
		}
		if fi := files[name]; fi != nil && fi.Mode().Perm() != 0o444 {
			t.Errorf("blob %s: mode %v, want 0444", h, fi.Mode().Perm())
		}
	}
	for name, content := range fx.links {
		want[name] = true
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("link %s: %v", name, err)
			continue
		}
		if string(got) != content || len(got) != 71 {
			t.Errorf("link %s holds %q (%d bytes), want %q (71 bytes)", name, got, len(got), content)
		}
	}
	for _, name := range sortedKeys(files) {
		if !want[name] {
			t.Errorf("unexpected file in the target: %s", name)
		}
	}
}

// TestBundleMembers reads a bundle with archive/tar and checks its member order and headers.
func TestBundleMembers(t *testing.T) {
	fx := newFixture(t)
	bundle := fx.bundle(t)
	ms := readMembers(t, bundle)
	if len(ms) == 0 || ms[0].hdr.Name != archive.CatalogName {
		t.Fatalf("first member %q, want %q", ms[0].hdr.Name, archive.CatalogName)
	}
	wantTotal := 2 + len(fx.blobs) + len(fx.links)
	if len(ms) != wantTotal {
		t.Errorf("%d members, want catalog + list + %d blobs + %d links = %d", len(ms), len(fx.blobs), len(fx.links), wantTotal)
	}
	seen := map[string]bool{}
	const (
		phaseBlobs = iota
		phaseRepoLinks
		phaseTagLinks
	)
	phase := phaseBlobs
	var blobOrder []string
	for i, m := range ms {
		h := m.hdr
		if seen[h.Name] {
			t.Errorf("member %s appears twice", h.Name)
		}
		seen[h.Name] = true
		if h.Typeflag != tar.TypeReg {
			t.Errorf("member %s: type %q, want a regular file", h.Name, h.Typeflag)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("member %s: owner %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		if !h.ModTime.Equal(wantCreated) {
			t.Errorf("member %s: mtime %v, want the catalog's created time %v", h.Name, h.ModTime, wantCreated)
		}
		if int64(len(m.body)) != h.Size {
			t.Errorf("member %s: %d bytes, header says %d", h.Name, len(m.body), h.Size)
		}
		if i <= 1 {
			if want := []string{archive.CatalogName, archive.ListName}[i]; h.Name != want || h.Mode != 0o444 {
				t.Errorf("member %d: %s mode %o, want %s 0444", i, h.Name, h.Mode, want)
			}
			continue
		}
		switch {
		case isBlobName(h.Name):
			if phase != phaseBlobs {
				t.Errorf("blob member %s after link members", h.Name)
			}
			if h.Mode != 0o444 {
				t.Errorf("blob %s: mode %o, want 0444", h.Name, h.Mode)
			}
			hx := filepath.Base(filepath.Dir(h.Name))
			orig, ok := fx.blobs[hx]
			if !ok {
				t.Errorf("blob member %s is not a blob of the fixture", h.Name)
			} else if !bytes.Equal(orig, m.body) || hexOf(m.body) != hx {
				t.Errorf("blob member %s: content differs from the original", h.Name)
			}
			blobOrder = append(blobOrder, hx)
		case isTagLink(h.Name):
			phase = phaseTagLinks
			checkLinkMember(t, fx, m)
			if strings.Contains(h.Name, "/index/sha256/") {
				// The tag's current link follows its index link at once.
				cur := h.Name[:strings.Index(h.Name, "/index/sha256/")] + "/current/link"
				if i+1 >= len(ms) || ms[i+1].hdr.Name != cur {
					t.Errorf("tag index link %s is not followed by its current link %s", h.Name, cur)
				}
			} else if i == 0 || !strings.Contains(ms[i-1].hdr.Name, "/index/sha256/") ||
				!strings.HasPrefix(ms[i-1].hdr.Name, strings.TrimSuffix(h.Name, "current/link")) {
				t.Errorf("tag current link %s is not right after its index link", h.Name)
			}
		default:
			if phase == phaseTagLinks {
				t.Errorf("repository link %s after tag links", h.Name)
			}
			phase = phaseRepoLinks
			checkLinkMember(t, fx, m)
		}
	}
	if len(blobOrder) != len(fx.blobs) {
		t.Errorf("%d blob members, want %d", len(blobOrder), len(fx.blobs))
	}
	if !sort.StringsAreSorted(blobOrder) {
		t.Errorf("blob members are not in digest order: %v", blobOrder)
	}
	for name := range fx.links {
		if !seen[name] {
			t.Errorf("link %s missing from the bundle", name)
		}
	}
}

func checkLinkMember(t *testing.T, fx *fixture, m member) {
	t.Helper()
	want, ok := fx.links[m.hdr.Name]
	if !ok {
		t.Errorf("link member %s is not a link of the fixture", m.hdr.Name)
		return
	}
	if string(m.body) != want || len(m.body) != 71 {
		t.Errorf("link member %s holds %q, want %q", m.hdr.Name, m.body, want)
	}
	if m.hdr.Mode != 0o644 {
		t.Errorf("link member %s: mode %o, want 0644", m.hdr.Name, m.hdr.Mode)
	}
}

// TestWriteDeterministic writes the same images twice, from scratch each time, and packs
// them twice: the bytes must be identical.
func TestWriteDeterministic(t *testing.T) {
	fx := newFixture(t)
	a, b := fx.bundle(t), fx.bundle(t)
	if !bytes.Equal(a, b) {
		t.Errorf("two Writes of the same images differ (%d and %d bytes)", len(a), len(b))
	}
	c := fx.catalog(t)
	var w1, w2 bytes.Buffer
	if err := archive.Write(context.Background(), &w1, c, fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := archive.Write(context.Background(), &w2, c, fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w1.Bytes(), w2.Bytes()) || !bytes.Equal(w1.Bytes(), a) {
		t.Errorf("Write of one catalog twice is not byte-identical")
	}
	var files [][]byte
	for range 2 {
		out := filepath.Join(t.TempDir(), "x.bale")
		if _, err := archive.Pack(context.Background(), out, fx.store, nil, archive.PackOptions{BaleVersion: "v1.2.3"}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two Packs of the same images differ")
	}
}

// TestPackCreatedOverride checks that PackOptions.Created sets the catalog time and every
// member's mtime, truncated to the second.
func TestPackCreatedOverride(t *testing.T) {
	fx := newFixture(t)
	at := time.Date(2030, 6, 7, 8, 9, 10, 999, time.FixedZone("X", 3600))
	out := filepath.Join(t.TempDir(), "x.bale")
	c, err := archive.Pack(context.Background(), out, fx.store, nil, archive.PackOptions{Created: at})
	if err != nil {
		t.Fatal(err)
	}
	want := at.UTC().Truncate(time.Second)
	if !c.Meta.Created.Equal(want) {
		t.Errorf("created %v, want %v", c.Meta.Created, want)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range readMembers(t, data) {
		if !m.hdr.ModTime.Equal(want) {
			t.Errorf("member %s mtime %v, want %v", m.hdr.Name, m.hdr.ModTime, want)
		}
	}
}

// TestPackSubset packs one tag of the fixture: only its blobs and links are in the bundle.
func TestPackSubset(t *testing.T) {
	fx := newFixture(t)
	out := filepath.Join(t.TempDir(), "x.bale")
	c, err := archive.Pack(context.Background(), out, fx.store, []layout.Ref{{Repo: "a/b/c", Tag: "v1"}}, archive.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Blobs); got != 4 { // manifest, config, two layers
		t.Errorf("catalog holds %d blobs, want 4", got)
	}
	parent, dst := newTarget(t)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := archive.Unpack(context.Background(), f, dst, archive.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	links := linkFiles(t, dst.Root())
	for name, content := range fx.links {
		inRepo := strings.HasPrefix(name, repoDir("a/b/c"))
		if got, ok := links[name]; ok != inRepo || (ok && got != content) {
			t.Errorf("link %s: present=%v (%q), want present=%v", name, ok, got, inRepo)
		}
	}
	if len(links) != 6 { // 3 _layers (config, two layers), 1 revision, tag index + current
		t.Errorf("%d link files, want 6: %v", len(links), sortedKeys(links))
	}
	checkTagsComplete(t, dst.Root())
	checkOnlyTarget(t, parent)
}

// TestPackMissingImage asks for an image the store lacks: Pack reports it as an ImagesError
// and leaves no file, temporary or final.
func TestPackMissingImage(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.bale")
	_, err := archive.Pack(context.Background(), out, fx.store, []layout.Ref{{Repo: "a/b/c", Tag: "v1"}, {Repo: "nope", Tag: "x"}}, archive.PackOptions{})
	var ie *catalog.ImagesError
	if !errors.As(err, &ie) || !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "nope:x") {
		t.Fatalf("Pack with a missing image: %v, want an ImagesError naming nope:x", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Pack failed but left %v", ents)
	}
}

// TestWriteFileBlobMissing removes a blob from the source after cataloguing: WriteFile fails
// naming it and leaves nothing beside the output.
func TestWriteFileBlobMissing(t *testing.T) {
	fx := newFixture(t)
	c := fx.catalog(t)
	var victim string
	for h := range fx.blobs {
		if c.Manifests[digest.Digest("sha256:"+h)] == nil {
			victim = h
			break
		}
	}
	p, err := fx.store.Path(registry.BlobData{Digest: digest.Digest("sha256:" + victim)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	err = archive.WriteFile(context.Background(), filepath.Join(dir, "x.bale"), c, fx.store, archive.WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), victim) {
		t.Fatalf("WriteFile with a missing blob: %v, want an error naming %s", err, victim)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("WriteFile failed but left %v", ents)
	}
}

// TestWriteFileBlobCorrupt changes a blob in the source (same size): Write verifies what it
// reads and fails with ErrDigestMismatch.
func TestWriteFileBlobCorrupt(t *testing.T) {
	fx := newFixture(t)
	c := fx.catalog(t)
	var victim string
	for h := range fx.blobs {
		if c.Manifests[digest.Digest("sha256:"+h)] == nil {
			victim = h
			break
		}
	}
	p, _ := fx.store.Path(registry.BlobData{Digest: digest.Digest("sha256:" + victim)})
	bad := bytes.Clone(fx.blobs[victim])
	bad[len(bad)/2] ^= 0xff
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	err := archive.WriteFile(context.Background(), filepath.Join(dir, "x.bale"), c, fx.store, archive.WriteOptions{})
	if !errors.Is(err, layout.ErrDigestMismatch) || !strings.Contains(err.Error(), victim) {
		t.Fatalf("WriteFile with a corrupt blob: %v, want ErrDigestMismatch naming %s", err, victim)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("WriteFile failed but left %v", ents)
	}
}

// TestReadCatalogHeadOnly truncates a bundle whose blobs are mostly random data: ReadCatalog
// reads the head only and still succeeds, Unpack fails.
func TestReadCatalogHeadOnly(t *testing.T) {
	fx := bigFixture(t, 3<<20)
	dir := t.TempDir()
	full := filepath.Join(dir, "full.bale")
	c, err := archive.Pack(context.Background(), full, fx.store, nil, archive.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2<<20 {
		t.Fatalf("bundle of %d bytes: the random layer should not compress", len(data))
	}
	for _, cut := range []int{256 << 10, len(data) / 2, len(data) - 1} {
		p := filepath.Join(dir, "cut.bale")
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := archive.ReadCatalog(p)
		if err != nil {
			t.Errorf("ReadCatalog of the first %d of %d bytes: %v", cut, len(data), err)
			continue
		}
		if got.Meta.ID != c.Meta.ID || len(got.Blobs) != len(fx.blobs) {
			t.Errorf("ReadCatalog of a truncated bundle: id %s, %d blobs; want %s, %d", got.Meta.ID, len(got.Blobs), c.Meta.ID, len(fx.blobs))
		}
		parent, dst := newTarget(t)
		// How the error is classified is TestUnpackHostile/truncated's business.
		if _, err = unpackBytes(data[:cut], dst); err == nil {
			t.Errorf("Unpack of the first %d of %d bytes succeeded", cut, len(data))
		}
		checkTagsComplete(t, dst.Root())
		checkNoTemp(t, dst.Root())
		checkOnlyTarget(t, parent)
	}
	if _, err := archive.ReadCatalog(filepath.Join(dir, "absent.bale")); err == nil {
		t.Errorf("ReadCatalog of a missing file succeeded")
	}
}
