package ociarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/ocidir"
)

// corpusTree writes the standard corpus as a skopeo dir tree, plus (with referrer) an
// artifact whose subject is busybox:1.36.1, stored as busybox@sha256:<hex>/.
func corpusTree(t *testing.T, referrer bool) (*imagetest.Corpus, string, digest.Digest) {
	t.Helper()
	c := imagetest.Standard()
	root := t.TempDir()
	for _, img := range c.Images {
		if _, err := c.WriteDir(root, img); err != nil {
			t.Fatal(err)
		}
	}
	if !referrer {
		return c, root, ""
	}
	var subject imagetest.Image
	for _, img := range c.Images {
		if img.Name() == "busybox:1.36.1" {
			subject = img
		}
	}
	empty, sbom := []byte("{}"), []byte(`{"spdxVersion":"SPDX-2.3"}`)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/spdx+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},`+
		`"layers":[{"mediaType":"application/spdx+json","digest":%q,"size":%d}],`+
		`"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		layout.MediaTypeOCIManifest, digest.FromBytes(empty), digest.FromBytes(sbom), len(sbom),
		subject.MediaType, subject.Digest, len(c.Blobs[subject.Digest]))
	d := digest.FromString(m)
	dir := filepath.Join(root, "busybox@"+string(d))
	os.MkdirAll(dir, 0o755)
	for name, b := range map[string][]byte{"manifest.json": []byte(m), "version": []byte(imagetest.DirVersion),
		digest.FromBytes(empty).Encoded(): empty, digest.FromBytes(sbom).Encoded(): sbom} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c, root, d
}

// writeArchive copies every image of the tree at root into the archive path.
func writeArchive(t *testing.T, root, path string, opt Options) error {
	t.Helper()
	src, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.CopyWith(context.Background(), src, w, nil, layout.CopyOptions{}); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// indexOf reads index.json out of the plain archive at path.
func indexOf(t *testing.T, path string) ocidir.Index {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no index.json in %s: %v", path, err)
		}
		if h.Name == "index.json" {
			b, _ := io.ReadAll(tr)
			idx, err := ocidir.ParseIndex(b)
			if err != nil {
				t.Fatal(err)
			}
			return idx
		}
	}
}

// TestRoundTrip writes every image of the corpus and a referrer, plain and compressed, and
// reads them back: the same digests, every blob verified, names as runtimes want them.
func TestRoundTrip(t *testing.T) {
	c, root, refDigest := corpusTree(t, true)
	for _, name := range []string{"images.tar", "images.tar.zst", "images.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			if err := writeArchive(t, root, p, Options{}); err != nil {
				t.Fatal(err)
			}
			r, err := Open(p, OpenOptions{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, img := range c.Images {
				repo := img.Repo
				if repo == "busybox" {
					repo = "library/busybox" // docker.io/library/busybox, read back without the host
				}
				d, err := r.Resolve(layout.Ref{Repo: repo, Tag: img.Tag})
				if err != nil || d != img.Digest {
					t.Errorf("%s: Resolve = %s, %v; want %s", img.Name(), d, err, img.Digest)
				}
			}
			if _, errs := catalog.VerifySource(r); len(errs) > 0 {
				t.Errorf("verify: %v", errs)
			}
			refs, err := r.Referrers("library/busybox", c.Images[0].Digest)
			if err != nil || len(refs) != 1 || refs[0].Digest != refDigest || refs[0].ArtifactType != "application/spdx+json" {
				t.Errorf("Referrers = %v, %v; want %s", refs, err, refDigest)
			}
			if name != "images.tar" {
				return
			}
			idx := indexOf(t, p)
			named := map[string]bool{}
			for _, d := range idx.Manifests {
				ref, img := d.Annotations[ocidir.RefNameKey], d.Annotations[ImageNameKey]
				if d.Digest == refDigest {
					if img != "" || ref != "" || !strings.HasPrefix(d.Annotations[ReferrerNameKey], "docker.io/library/busybox@sha256:") {
						t.Errorf("the referrer is named %v", d.Annotations)
					}
					continue
				}
				if img != ref {
					t.Errorf("%s: image name %q, ref name %q", d.Digest, img, ref)
				}
				named[img] = true
			}
			for _, want := range []string{"docker.io/library/busybox:1.36.1", "docker.io/library/busybox:latest",
				"docker.io/kubesphere/kube-apiserver:v1.20.6", "docker.io/a/b/c:v0.1.0-alpha.1_build", "docker.io/multiarch/pause:3.2"} {
				if !named[want] {
					t.Errorf("%s is not named in index.json (%v)", want, named)
				}
			}
			if len(named) != len(c.Images)-1 { // busybox:1.36.1 and library/busybox:1.36.1 are one name
				t.Errorf("%d names, want %d", len(named), len(c.Images)-1)
			}
		})
	}
}

// TestNamePrefix names every image under the prefix.
func TestNamePrefix(t *testing.T) {
	_, root, _ := corpusTree(t, false)
	p := filepath.Join(t.TempDir(), "x.tar")
	if err := writeArchive(t, root, p, Options{NamePrefix: "registry.site:5000/mirror"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range indexOf(t, p).Manifests {
		if n := d.Annotations[ImageNameKey]; !strings.HasPrefix(n, "registry.site:5000/mirror/") {
			t.Errorf("name %q", n)
		}
	}
	r, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Resolve(layout.Ref{Repo: "mirror/kubesphere/kube-proxy", Tag: "v1.20.6"}); err != nil {
		t.Error(err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "y.tar"), Options{NamePrefix: "Bad Prefix"}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("a bad prefix: %v", err)
	}
}

// TestDamagedSourceWritesNothing: a blob that fails its digest stops the copy, and the
// archive is not written (nor any temporary file left).
func TestDamagedSourceWritesNothing(t *testing.T) {
	c, root, _ := corpusTree(t, false)
	img := c.Images[3] // kubesphere/kube-apiserver
	blobs, _ := c.BlobDigests(img)
	layer := filepath.Join(root, img.Repo+":"+img.Tag, blobs[len(blobs)-1].Encoded())
	b, _ := os.ReadFile(layer)
	b[len(b)/2] ^= 0xff
	os.WriteFile(layer, b, 0o644)
	dir := t.TempDir()
	err := writeArchive(t, root, filepath.Join(dir, "x.tar"), Options{})
	if !errors.Is(err, layout.ErrDigestMismatch) || !strings.Contains(err.Error(), blobs[len(blobs)-1].String()) {
		t.Fatalf("err = %v, want a digest mismatch naming %s", err, blobs[len(blobs)-1])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestReadForeignArchives reads what containerd's export and skopeo write: a bare tag as the
// ref name with the full name in containerd's annotation, and a repo:tag ref name.
func TestReadForeignArchives(t *testing.T) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		layout.MediaTypeOCIManifest, layout.MediaTypeOCIConfig, digest.FromBytes(cfg), len(cfg)))
	desc := func(ann string) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"annotations":{%s}}`, layout.MediaTypeOCIManifest, digest.FromBytes(m), len(m), ann)
	}
	idx := `{"schemaVersion":2,"manifests":[` +
		desc(`"io.containerd.image.name":"docker.io/library/alpine:3.19","org.opencontainers.image.ref.name":"3.19"`) + "," +
		desc(`"org.opencontainers.image.ref.name":"quay.io/x/app:v1"`) + "," +
		desc(`"org.opencontainers.image.ref.name":"v2"`) + "]}"
	p := filepath.Join(t.TempDir(), "Vendor Images.tar.gz")
	_, err := createRaw(p, map[string][]byte{"index.json": []byte(idx), "oci-layout": []byte(`{"imageLayoutVersion": "1.0.0"}`),
		"blobs/sha256/" + digest.FromBytes(m).Encoded(): m, "blobs/sha256/" + digest.FromBytes(cfg).Encoded(): cfg})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	refs, err := r.Refs()
	var got []string
	for _, x := range refs {
		got = append(got, x.String())
	}
	if want := "library/alpine:3.19 vendor-images:v2 x/app:v1"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("Refs = %v, %v; want %s", got, err, want)
	}
	if _, errs := catalog.VerifySource(r); len(errs) > 0 {
		t.Error(errs)
	}
}

// createRaw writes an archive of the given members (sorted by name) with tarfile's writer.
func createRaw(p string, members map[string][]byte) (string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(members)) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(members[name])), Mode: 0o644})
		tw.Write(members[name])
	}
	tw.Close()
	out := buf.Bytes()
	if strings.HasSuffix(p, ".gz") {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(out)
		zw.Close()
		out = gz.Bytes()
	}
	return p, os.WriteFile(p, out, 0o644)
}

// FuzzIndexJSON opens an archive whose index.json is arbitrary: Open and Refs must not panic,
// and every ref they give must be a valid name that resolves.
func FuzzIndexJSON(f *testing.F) {
	d := digest.FromString("m")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(d) + `","size":1,"annotations":{"io.containerd.image.name":"docker.io/library/busybox:1"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + string(d) + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x","annotations":{"org.opencontainers.image.ref.name":"a/../b@sha256:x"}}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, index []byte) {
		p, err := createRaw(filepath.Join(dir, "f.tar"), map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(p, OpenOptions{})
		if err != nil {
			return
		}
		defer r.Close()
		refs, _ := r.Refs()
		for _, ref := range refs {
			if layout.ValidateRepo(ref.Repo) != nil || (ref.Tag == "" && ref.Digest == "") {
				t.Fatalf("ref %+v from index.json %q", ref, index)
			}
			if d, err := r.Resolve(ref); err == nil {
				r.ReadManifest(ref.Repo, d) // not there: an error, not a panic
			}
		}
	})
}

// FuzzParseName maps arbitrary names: a result is always a valid reference.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"v1", "docker.io/library/busybox:1.36.1", "busybox@sha256:" + strings.Repeat("a", 64), "host:5000/a/b:c", "../x:y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseName(s, "repo")
		if err != nil {
			return
		}
		if layout.ValidateRepo(ref.Repo) != nil || (ref.Tag != "" && layout.ValidateTag(ref.Tag) != nil) || strings.Contains(ref.Repo, "..") {
			t.Fatalf("ParseName(%q) = %+v", s, ref)
		}
	})
}

// TestRealWorldNames writes imagetest.RealWorld (but the index of an index, which a dir tree
// cannot hold): each BuildKit index is named as an image (io.containerd.image.name), not as a
// referrer, and alpine:3.14 and library/alpine:3.14 are reported as one merged name.
func TestRealWorldNames(t *testing.T) {
	c := imagetest.RealWorld()
	root := t.TempDir()
	written := 0
	for _, img := range c.Images {
		if c.NestsIndex(img) {
			continue
		}
		written++
		if _, err := c.WriteDir(root, img); err != nil {
			t.Fatal(err)
		}
	}
	src, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "shapes.tar")
	w, err := Create(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.CopyWith(context.Background(), src, w, nil, layout.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]layout.Ref{"docker.io/library/alpine:3.14": {{Repo: "alpine", Tag: "3.14"}, {Repo: "library/alpine", Tag: "3.14"}}}
	if got := w.Merged(); fmt.Sprint(got) != fmt.Sprint(want) || w.Names() != written-1 {
		t.Errorf("Merged() = %v, Names() = %d; want %v, %d", got, w.Names(), want, written-1)
	}
	for _, d := range indexOf(t, p).Manifests {
		if d.Annotations[ImageNameKey] == "" || d.Annotations[ReferrerNameKey] != "" {
			t.Errorf("%s is not named as an image: %v", d.Digest, d.Annotations)
		}
	}
}
