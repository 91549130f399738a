package dirtree_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/registry"
)

func sha(b []byte) digest.Digest {
	h := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(h[:]))
}

func desc(mt string, b []byte) layout.Descriptor {
	return layout.Descriptor{MediaType: mt, Digest: sha(b), Size: int64(len(b))}
}

func descJSON(d layout.Descriptor) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, d.MediaType, d.Digest, d.Size)
}

// source is registry storage holding a single image and an index of two images, both
// tagged in repositories "a/b" and "multi".
type source struct {
	store         *registry.Store
	single, index *layout.Image
}

func newSource(t *testing.T) source {
	t.Helper()
	s, err := registry.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(mt string, b []byte) layout.Descriptor {
		d := desc(mt, b)
		if err := s.WriteBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	image := func(arch string) *layout.Manifest {
		cfg := put(layout.MediaTypeOCIConfig, []byte(`{"architecture":"`+arch+`","os":"linux"}`))
		l := put("application/vnd.oci.image.layer.v1.tar+gzip", []byte("layer "+arch))
		shared := put("application/vnd.oci.image.layer.v1.tar+gzip", []byte("shared layer"))
		raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIManifest + `","config":` + descJSON(cfg) +
			`,"layers":[` + descJSON(l) + `,` + descJSON(shared) + `]}`)
		put(layout.MediaTypeOCIManifest, raw)
		m, err := layout.ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	amd, arm := image("amd64"), image("arm64")
	raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIIndex + `","manifests":[` +
		descJSON(amd.Descriptor()) + `,` + descJSON(arm.Descriptor()) + `]}`)
	put(layout.MediaTypeOCIIndex, raw)
	idx, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	src := source{store: s, single: &layout.Image{Manifest: amd}, index: &layout.Image{Manifest: idx, Children: []*layout.Manifest{amd, arm}}}
	for _, r := range []struct {
		repo, tag string
		img       *layout.Image
	}{{"a/b", "v1", src.single}, {"multi", "1.0", src.index}} {
		if err := s.LinkImage(r.repo, r.img); err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(r.repo, r.tag, r.img.Digest()); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func TestImageDir(t *testing.T) {
	d := sha([]byte("x"))
	tests := []struct {
		ref  layout.Ref
		want string // "" for an error
	}{
		{layout.Ref{Repo: "a/b/c", Tag: "v1.0"}, "a/b/c:v1.0"},
		{layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"}, "kubesphere/kube-apiserver:v1.20.6"},
		{layout.Ref{Repo: "x", Digest: d}, "x@" + string(d)},
		{layout.Ref{Repo: "x", Tag: "t", Digest: d}, "x:t"},
		{layout.Ref{Repo: "x"}, ""},
		{layout.Ref{Repo: "../x", Tag: "t"}, ""},
		{layout.Ref{Repo: "x", Tag: "../t"}, ""},
		{layout.Ref{Repo: "x", Digest: "sha256:../../etc"}, ""},
	}
	root := t.TempDir()
	for _, tt := range tests {
		got, err := dirtree.ImageDir(root, tt.ref)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ImageDir(%+v) = %q, want an error", tt.ref, got)
			}
			continue
		}
		if want := filepath.Join(root, filepath.FromSlash(tt.want)); err != nil || got != want {
			t.Errorf("ImageDir(%+v) = %q, %v; want %q", tt.ref, got, err, want)
		}
	}
}

func TestPutImageAndOpen(t *testing.T) {
	src := newSource(t)
	root := filepath.Join(filepath.Dir(src.store.Root()), "tree")
	tree, err := dirtree.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	refs := []layout.Ref{{Repo: "a/b", Tag: "v1"}, {Repo: "multi", Tag: "1.0"}, {Repo: "multi", Digest: src.index.Digest()}}
	if err := layout.CopyImages(context.Background(), src.store, tree, refs); err != nil {
		t.Fatalf("CopyImages: %v", err)
	}
	if tree.Copied != 0 {
		t.Errorf("Copied = %d, want 0 (hard links on one file system)", tree.Copied)
	}
	// The files of one image directory.
	dir := filepath.Join(root, "multi:1.0")
	want := map[string]bool{dirtree.VersionFile: true, dirtree.ManifestFile: true}
	for _, c := range src.index.Children {
		want[c.Digest.Encoded()+".manifest.json"] = true
	}
	for _, b := range src.index.Blobs() {
		want[b.Digest.Encoded()] = true
	}
	ents, _ := os.ReadDir(dir)
	got := map[string]bool{}
	for _, e := range ents {
		got[e.Name()] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
	if v, _ := os.ReadFile(filepath.Join(dir, dirtree.VersionFile)); string(v) != dirtree.VersionContent {
		t.Errorf("version file %q", v)
	}
	if m, _ := os.ReadFile(filepath.Join(dir, dirtree.ManifestFile)); !bytes.Equal(m, src.index.Manifest.Raw) {
		t.Error("manifest.json is not the index byte for byte")
	}

	opened, err := dirtree.Open(root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	listed, _ := opened.Refs()
	var names []string
	for _, r := range listed {
		names = append(names, r.String())
	}
	if want := []string{"a/b:v1", "multi:1.0", "multi@" + string(src.index.Digest())}; !reflect.DeepEqual(names, want) {
		t.Errorf("Refs = %q, want %q", names, want)
	}
	for _, r := range listed {
		d, err := opened.Resolve(r)
		if err != nil {
			t.Errorf("Resolve(%s): %v", r, err)
			continue
		}
		img, err := layout.LoadImage(opened, r.Repo, d)
		if err != nil {
			t.Errorf("LoadImage(%s): %v", r, err)
			continue
		}
		for _, b := range img.Blobs() {
			rc, err := opened.OpenBlob(r.Repo, b)
			if err != nil {
				t.Errorf("OpenBlob(%s): %v", b.Digest, err)
				continue
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(layout.NewVerifier(rc, b))
			rc.Close()
			if err != nil {
				t.Errorf("blob %s: %v", b.Digest, err)
			}
		}
	}
	if _, err := opened.Resolve(layout.Ref{Repo: "multi", Tag: "2.0"}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("Resolve(missing tag) = %v", err)
	}
	if _, err := opened.Resolve(layout.Ref{Repo: "a/b", Digest: src.index.Digest()}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("Resolve(digest of another repo) = %v", err)
	}

	// Putting a tag again replaces the directory and leaves no temporary directory.
	if err := tree.PutImage(layout.Ref{Repo: "multi", Tag: "1.0"}, src.single, src.store); err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(dir, dirtree.ManifestFile)); !bytes.Equal(m, src.single.Manifest.Raw) {
		t.Error("the replaced image directory does not hold the new manifest")
	}
	for _, e := range mustReadDir(t, root) {
		if e.Name() != "a" && e.Name() != "multi:1.0" && e.Name() != "multi@"+string(src.index.Digest()) {
			t.Errorf("unexpected entry %q in the tree root", e.Name())
		}
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

func TestOpenRefuses(t *testing.T) {
	src := newSource(t)
	root := filepath.Join(filepath.Dir(src.store.Root()), "tree")
	tree, _ := dirtree.Create(root)
	if err := tree.PutImage(layout.Ref{Repo: "good", Tag: "1"}, src.single, src.store); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(p, 0o755)
		os.WriteFile(filepath.Join(p, dirtree.ManifestFile), src.single.Manifest.Raw, 0o644)
	}
	mk("Bad:1")
	mk("other@" + string(sha([]byte("not this manifest"))))
	_, err := dirtree.Open(root)
	if err == nil {
		t.Fatal("Open accepted bad image directories")
	}
	if !errors.Is(err, layout.ErrInvalid) || !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("Open = %v, want both the bad name and the digest mismatch", err)
	}
	if _, err := dirtree.Open(filepath.Join(root, "good:1")); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("Open(image dir itself) = %v, want ErrInvalid", err)
	}
}

// TestTreeKeepsDottedRepoNames puts an image of repository "foo.bar/app" (a valid name, e.g.
// a registry mirror's "docker.io/..." kept as a path) into a tree and opens the tree again:
// the image must come back under the same repository.
func TestTreeKeepsDottedRepoNames(t *testing.T) {
	src := newSource(t)
	root := filepath.Join(filepath.Dir(src.store.Root()), "tree")
	tree, _ := dirtree.Create(root)
	ref := layout.Ref{Repo: "foo.bar/app", Tag: "1"}
	if err := tree.PutImage(ref, src.single, src.store); err != nil {
		t.Fatal(err)
	}
	opened, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := opened.Refs()
	if len(refs) != 1 || refs[0] != ref {
		t.Errorf("Refs = %v, want [%s]", refs, ref)
	}
}
