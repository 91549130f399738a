package catalog_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// artifactJSON is an OCI 1.1 artifact manifest whose subject is subj.
func artifactJSON(at string, subj blob, content string) blob {
	empty := blob{"application/vnd.oci.empty.v1+json", []byte("{}")}
	layer := blob{"application/spdx+json", []byte(content)}
	return blob{layout.MediaTypeOCIManifest, []byte(fmt.Sprintf(
		`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":%s,"layers":[%s],"subject":%s,"annotations":{"k":"v"}}`,
		layout.MediaTypeOCIManifest, at, descJSON(empty.desc()), descJSON(layer.desc()), descJSON(subj.desc())))}
}

// referrersCatalog: the small catalog, an SBOM of app's single image, a signature on the
// SBOM, a cosign tag on the image, and an index of the multi-arch index (nested).
func referrersCatalog(t *testing.T) (*catalog.Catalog, blob, blob) {
	t.Helper()
	f := newFixture()
	c := f.smallCatalog(t)
	if c.Meta.Format != catalog.FormatCatalog {
		t.Fatalf("the small catalog is format %d, want %d", c.Meta.Format, catalog.FormatCatalog)
	}
	sbom := artifactJSON("application/spdx+json", f.single, "sbom")
	sig := artifactJSON("application/vnd.dev.cosign.artifact.sig.v1+json", sbom, "sig")
	c.AddReferrer("app", &layout.Image{Manifest: parse(t, sbom)}, nil)
	c.AddReferrer("app", &layout.Image{Manifest: parse(t, sig)}, nil)
	cosign := manifestJSON(layout.MediaTypeOCIManifest, f.cfgOCI, blob{ociLayer, []byte("cosign payload")})
	c.Add("app", layout.ReferrersTag(sha(f.single.data))+".sig", &layout.Image{Manifest: parse(t, cosign)}, nil)
	c.Settle()
	if c.Meta.Format != catalog.FormatCatalog {
		t.Fatalf("a catalog with referrers is format %d, want %d", c.Meta.Format, catalog.FormatCatalog)
	}
	c.Meta.ID = c.ComputeID()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c, sbom, sig
}

func TestReferrersCatalog(t *testing.T) {
	c, sbom, sig := referrersCatalog(t)
	f := newFixture()
	p, _ := writeCatalog(t, c)
	got, err := catalog.Read(p)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if d := catalogDiff(got, c); d != "" {
		t.Errorf("Read(Write(c)) differs:\n%s", d)
	}
	if got.Meta.Format != catalog.FormatCatalog || got.Validate() != nil || got.ComputeID() != c.Meta.ID {
		t.Errorf("read back: format %d, validate %v", got.Meta.Format, got.Validate())
	}
	refs := got.Referrers("app", sha(f.single.data))
	if len(refs) != 1 || refs[0].Digest != sha(sbom.data) || refs[0].ArtifactType != "application/spdx+json" ||
		refs[0].MediaType != layout.MediaTypeOCIManifest || refs[0].Size != int64(len(sbom.data)) || refs[0].Annotations["k"] != "v" {
		t.Errorf("Referrers(app, single) = %+v", refs)
	}
	if r := got.Referrers("app", sha([]byte("nothing"))); r == nil || len(r) != 0 {
		t.Errorf("Referrers of a digest without any = %#v, want empty and not nil", r)
	}
	if r := got.Referrers("a/b/multi", sha(f.single.data)); len(r) != 0 {
		t.Errorf("referrers of another repository: %+v", r)
	}

	images, attached := got.ImageAttachments()
	var names []string
	for _, e := range images {
		names = append(names, e.Ref().String())
	}
	// app:v1 and app:latest name the same manifest; its attachments go to the first.
	if want := []string{"a/b/multi:1.0", "app:latest", "app:v1", "app@" + string(sha(f.ociImage.data))}; !slices.Equal(names, want) {
		t.Fatalf("images = %v, want %v", names, want)
	}
	var kinds []string
	for _, a := range attached[1] {
		kinds = append(kinds, a.Kind)
	}
	if want := []string{"application/spdx+json", "application/vnd.dev.cosign.artifact.sig.v1+json", "sig"}; !slices.Equal(kinds, want) {
		t.Errorf("app:latest attachments = %v, want %v (the SBOM, the signature on it, the cosign tag)", kinds, want)
	}
	if n := catalog.CountKinds(attached[1]); len(n) != 3 {
		t.Errorf("CountKinds = %v", n)
	}
	_ = sig

	// A referrer whose record a format 2 catalog holds is inconsistent.
	bad := got.Clone()
	bad.Meta.Format = 2
	if err := bad.Validate(); err == nil {
		t.Error("a format 2 catalog with referrers validates")
	}
	bad = got.Clone()
	bad.Repos["app"].Referrers[digest.FromString("not a manifest")] = &catalog.ReferrerRecord{Subject: sha(f.single.data)}
	if err := bad.Validate(); err == nil {
		t.Error("a referrer that is not a manifest of its repository validates")
	}
}

// TestNestedIndexFormat: an index whose child is an index (format 3 and later); its closure
// and blobs reach the grandchildren.
func TestNestedIndexFormat(t *testing.T) {
	f := newFixture()
	c := catalog.New()
	outer := blob{layout.MediaTypeOCIIndex, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		descJSON(f.index.desc()) + `]}`)}
	img := &layout.Image{Manifest: parse(t, outer), Children: []*layout.Manifest{parse(t, f.index), parse(t, f.amd), parse(t, f.arm)}}
	c.Add("nest", "1", img, nil)
	c.Meta.Created = time.Unix(0, 0).UTC()
	if err := c.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if c.Meta.Format != catalog.FormatCatalog {
		t.Errorf("format %d, want %d", c.Meta.Format, catalog.FormatCatalog)
	}
	closure := c.ManifestClosure(sha(outer.data))
	if want := []digest.Digest{sha(outer.data), sha(f.index.data), sha(f.amd.data), sha(f.arm.data)}; !slices.Equal(closure, want) {
		t.Errorf("ManifestClosure = %v, want %v", closure, want)
	}
	if !slices.Contains(c.ImageBlobs(sha(outer.data)), sha(f.armLayer.data)) {
		t.Error("ImageBlobs of the outer index lacks a grandchild's layer")
	}
}
