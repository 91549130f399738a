package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// layerHex returns the hex digest of a layer blob of the fixture (not a manifest or config).
func layerHex(t *testing.T, fx *fixture) string {
	t.Helper()
	l2 := makeLayer(t, "usr/share/doc/readme", "shared layer\n") // shared by two images
	h := hexOf(l2.gz)
	if _, ok := fx.blobs[h]; !ok {
		t.Fatal("fixture lacks the shared layer")
	}
	return h
}

func blobPath(st *registry.Store, h string) string {
	return filepath.Join(st.Root(), filepath.FromSlash(blobName(h)))
}

// TestUnpackReplacesDamagedBlob unpacks into a target whose copy of one blob is damaged in
// various ways: Unpack must replace it with the bundle's verified content, reuse every other
// blob, and never write through a symlink.
func TestUnpackReplacesDamagedBlob(t *testing.T) {
	g := newGenuine(t)
	fx := g.fx
	victim := layerHex(t, fx)
	orig := fx.blobs[victim]
	outside := filepath.Join(t.TempDir(), "outside")
	wrong := bytes.Clone(orig)
	wrong[len(wrong)/2] ^= 0x20
	cases := []struct {
		name   string
		damage func(t *testing.T, p string)
	}{
		{"same size wrong bytes", func(t *testing.T, p string) { rewrite(t, p, wrong) }},
		{"shorter", func(t *testing.T, p string) { rewrite(t, p, orig[:len(orig)-3]) }},
		{"longer", func(t *testing.T, p string) { rewrite(t, p, append(bytes.Clone(orig), "xyz"...)) }},
		{"empty", func(t *testing.T, p string) { rewrite(t, p, nil) }},
		{"symlink to an outside file", func(t *testing.T, p string) {
			if err := os.WriteFile(outside, wrong, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to an outside file with the right content", func(t *testing.T, p string) {
			if err := os.WriteFile(outside, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, dst := newTarget(t)
			if _, err := unpackBytes(g.bundle, dst); err != nil {
				t.Fatal(err)
			}
			p := blobPath(dst, victim)
			tc.damage(t, p)
			var outsideBefore []byte
			if strings.HasPrefix(tc.name, "symlink") {
				outsideBefore, _ = os.ReadFile(outside)
			}
			res, err := unpackBytes(g.bundle, dst)
			if err != nil {
				t.Fatal(err)
			}
			if res.BlobsWritten != 1 || res.BlobsReused != len(fx.blobs)-1 || res.BytesWritten != int64(len(orig)) {
				t.Errorf("written=%d reused=%d bytes=%d, want 1, %d, %d", res.BlobsWritten, res.BlobsReused, res.BytesWritten, len(fx.blobs)-1, len(orig))
			}
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o444 {
				t.Fatalf("blob after Unpack: %v, %v; want a regular file of mode 0444", fi, err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, orig) || hexOf(got) != victim {
				t.Errorf("blob after Unpack does not verify")
			}
			if err := dst.VerifyBlob(layout.Descriptor{Digest: digest.Digest("sha256:" + victim), Size: int64(len(orig))}); err != nil {
				t.Error(err)
			}
			if outsideBefore != nil {
				if after, _ := os.ReadFile(outside); !bytes.Equal(after, outsideBefore) {
					t.Errorf("Unpack wrote through a symlink to a file outside the target")
				}
			}
			checkUnpacked(t, fx, dst.Root())
			checkOnlyTarget(t, parent)
			checkNoTemp(t, dst.Root())
		})
	}
}

func rewrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUnpackReusesBlobs unpacks the same bundle twice: the second time every blob is reused.
func TestUnpackReusesBlobs(t *testing.T) {
	g := newGenuine(t)
	_, dst := newTarget(t)
	if _, err := unpackBytes(g.bundle, dst); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dst.Root())
	reused := 0
	res, err := archive.Unpack(context.Background(), bytes.NewReader(g.bundle), dst, archive.UnpackOptions{Progress: func(d layout.Descriptor, r bool) {
		if r {
			reused++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := len(g.fx.blobs)
	if res.BlobsReused != n || res.BlobsWritten != 0 || res.BytesWritten != 0 || reused != n {
		t.Errorf("second Unpack: reused=%d written=%d bytes=%d progress-reused=%d; want %d, 0, 0, %d",
			res.BlobsReused, res.BlobsWritten, res.BytesWritten, reused, n, n)
	}
	after := snapshot(t, dst.Root())
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed on the second Unpack", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d files after the second Unpack, %d before", len(after), len(before))
	}
	checkNoTemp(t, dst.Root())
}

// snapshot reads every file under root: relative path -> content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rel := range treeFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = string(b)
	}
	return out
}

// TestUnpackBundleBlobCorruptTargetValid has the target hold a valid copy of a blob whose
// bundle copy is damaged: Unpack reuses the target's copy but must still verify the member,
// fail, and leave the valid copy alone.
func TestUnpackBundleBlobCorruptTargetValid(t *testing.T) {
	g := newGenuine(t)
	_, dst := newTarget(t)
	if _, err := unpackBytes(g.bundle, dst); err != nil {
		t.Fatal(err)
	}
	ms := g.ms()
	ms[1].body[0] ^= 0xff
	h := blob0Hex(g)
	_, err := unpackBytes(craft(t, ms), dst)
	if !errors.Is(err, layout.ErrDigestMismatch) || !strings.Contains(err.Error(), h) {
		t.Errorf("Unpack: %v; want ErrDigestMismatch naming %s", err, h)
	}
	if got, _ := os.ReadFile(blobPath(dst, h)); !bytes.Equal(got, g.fx.blobs[h]) {
		t.Errorf("the target's valid copy of %s was changed", h)
	}
	checkTagsComplete(t, dst.Root())
	checkNoTemp(t, dst.Root())
}

// TestUnpackKeepsOtherContent unpacks into a target holding other repositories and tags,
// including other tags of a repository of the bundle: they must stay as they were, except
// the tag the bundle itself carries, which now points at the bundle's image.
func TestUnpackKeepsOtherContent(t *testing.T) {
	g := newGenuine(t)
	parent, dst := newTarget(t)
	other := &fixture{store: dst, blobs: map[string][]byte{}, links: map[string]string{}}
	img := other.image(t, true, jplatform{OS: "linux", Architecture: "riscv64"}, "2019-01-01T00:00:00Z",
		makeLayer(t, "other", "other content\n"))
	other.link(t, "other/repo", img, nil, "keep", "also")
	other.link(t, "library/alpine", img, nil, "old", "latest") // latest is in the bundle too
	before := linkFiles(t, dst.Root())
	replaced := tagCurrentName("library/alpine", "latest")

	if _, err := unpackBytes(g.bundle, dst); err != nil {
		t.Fatal(err)
	}
	after := linkFiles(t, dst.Root())
	for name, content := range before {
		switch {
		case name == replaced:
			want := g.fx.links[replaced]
			if after[name] != want {
				t.Errorf("%s holds %q, want the bundle's %q", name, after[name], want)
			}
		case after[name] != content:
			t.Errorf("%s changed from %q to %q", name, content, after[name])
		}
	}
	for name, content := range g.fx.links {
		if after[name] != content {
			t.Errorf("bundle link %s holds %q, want %q", name, after[name], content)
		}
	}
	for h, b := range other.blobs {
		if got, _ := os.ReadFile(blobPath(dst, h)); !bytes.Equal(got, b) {
			t.Errorf("the target's own blob %s changed", h)
		}
	}
	// other.tags[3] is library/alpine:latest, which the bundle's own tag replaces.
	for _, tr := range append(other.tags[:3:3], g.fx.tags...) {
		got, err := dst.Resolve(layout.Ref{Repo: tr.repo, Tag: tr.tag})
		if err != nil || got != digest.Digest("sha256:"+tr.hex) {
			t.Errorf("%s:%s resolves to %s, %v; want sha256:%s", tr.repo, tr.tag, got, err, tr.hex)
		}
	}
	checkTagsComplete(t, dst.Root())
	checkOnlyTarget(t, parent)
	checkNoTemp(t, dst.Root())
}

// TestUnpackFailureLeavesNoTemp fails Unpack on the last blob, after the others were written:
// the written blobs verify, no temporary file and no link is left.
func TestUnpackFailureLeavesNoTemp(t *testing.T) {
	g := newGenuine(t)
	ms := g.ms()
	last := ms[g.nBlobs]
	last.body[len(last.body)-1] ^= 0x01
	parent, dst := newTarget(t)
	res, err := unpackBytes(craft(t, ms), dst)
	if !errors.Is(err, layout.ErrDigestMismatch) || !strings.Contains(err.Error(), last.hdr.Name) {
		t.Fatalf("Unpack: %v; want ErrDigestMismatch naming %s", err, last.hdr.Name)
	}
	if res == nil || res.BlobsWritten != g.nBlobs-1 {
		t.Errorf("result %+v; want %d blobs written before the failure", res, g.nBlobs-1)
	}
	for rel := range treeFiles(t, dst.Root()) {
		if !isBlobName(rel) {
			t.Errorf("unexpected file after a failed Unpack: %s", rel)
			continue
		}
		h := filepath.Base(filepath.Dir(rel))
		if b, _ := os.ReadFile(filepath.Join(dst.Root(), filepath.FromSlash(rel))); hexOf(b) != h {
			t.Errorf("blob %s left by a failed Unpack does not verify", h)
		}
	}
	checkNoTemp(t, dst.Root())
	checkOnlyTarget(t, parent)
}

// TestUnpackAlso unpacks into a registry store and, through UnpackOptions.Also, into a second
// one: both must hold every image.
func TestUnpackAlso(t *testing.T) {
	g := newGenuine(t)
	_, dst := newTarget(t)
	also, err := registry.Create(filepath.Join(t.TempDir(), "also"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Unpack(context.Background(), bytes.NewReader(g.bundle), dst, archive.UnpackOptions{Also: []layout.Sink{also}}); err != nil {
		t.Fatal(err)
	}
	checkUnpacked(t, g.fx, dst.Root())
	checkUnpacked(t, g.fx, also.Root())
	checkTagsComplete(t, also.Root())
}
