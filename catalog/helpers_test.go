package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// sha is the sha256 digest of b, computed without the code under test.
func sha(b []byte) digest.Digest {
	h := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(h[:]))
}

const (
	dockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// blob is literal content with a media type.
type blob struct {
	mt   string
	data []byte
}

func (b blob) desc() layout.Descriptor {
	return layout.Descriptor{MediaType: b.mt, Digest: sha(b.data), Size: int64(len(b.data))}
}

func descJSON(d layout.Descriptor) string {
	s := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d`, d.MediaType, d.Digest, d.Size)
	if p := d.Platform; p != nil {
		s += fmt.Sprintf(`,"platform":{"architecture":%q,"os":%q`, p.Architecture, p.OS)
		if p.Variant != "" {
			s += fmt.Sprintf(`,"variant":%q`, p.Variant)
		}
		s += "}"
	}
	return s + "}"
}

// config is an image config blob.
func config(mt, os, arch, variant, created string) blob {
	fields := []string{fmt.Sprintf(`"architecture":%q`, arch), fmt.Sprintf(`"os":%q`, os)}
	if variant != "" {
		fields = append(fields, fmt.Sprintf(`"variant":%q`, variant))
	}
	if created != "" {
		fields = append(fields, fmt.Sprintf(`"created":%q`, created))
	}
	return blob{mt, []byte("{" + strings.Join(fields, ",") + `,"rootfs":{"type":"layers"}}`)}
}

// manifestJSON is an image manifest naming cfg then layers.
func manifestJSON(mt string, cfg blob, layers ...blob) blob {
	var ls []string
	for _, l := range layers {
		ls = append(ls, descJSON(l.desc()))
	}
	return blob{mt, []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","config":` + descJSON(cfg.desc()) +
		`,"layers":[` + strings.Join(ls, ",") + `]}`)}
}

// indexJSON is an index of children, each with its platform.
func indexJSON(mt string, children []blob, platforms []layout.Platform) blob {
	var cs []string
	for i, c := range children {
		d := c.desc()
		p := platforms[i]
		d.Platform = &p
		cs = append(cs, descJSON(d))
	}
	return blob{mt, []byte(`{"schemaVersion":2,"mediaType":"` + mt + `","manifests":[` + strings.Join(cs, ",") + `]}`)}
}

func parse(t testing.TB, b blob) *layout.Manifest {
	t.Helper()
	m, err := layout.ParseManifest(b.data)
	if err != nil {
		t.Fatalf("ParseManifest(%s): %v", b.data, err)
	}
	return m
}

// fixture is a small set of images: a Docker image, an OCI index of two platforms sharing a
// layer with it, and a second single image.
type fixture struct {
	cfgAmd, cfgArm, cfgOCI            blob
	base, app, armLayer, ociOnly      blob
	single, amd, arm, index, ociImage blob
}

func newFixture() fixture {
	var f fixture
	f.cfgAmd = config(layout.MediaTypeDockerConfig, "linux", "amd64", "", "2021-04-14T12:00:00Z")
	f.cfgArm = config(layout.MediaTypeDockerConfig, "linux", "arm", "v7", "2022-06-01T10:20:30.987Z")
	f.cfgOCI = config(layout.MediaTypeOCIConfig, "linux", "arm64", "v8", "")
	f.base = blob{dockerLayer, []byte("shared base layer")}
	f.app = blob{dockerLayer, []byte("app layer")}
	f.armLayer = blob{dockerLayer, []byte("arm layer")}
	f.ociOnly = blob{ociLayer, []byte("oci layer")}
	f.single = manifestJSON(layout.MediaTypeDockerManifest, f.cfgAmd, f.base, f.app)
	f.amd = manifestJSON(layout.MediaTypeDockerManifest, f.cfgAmd, f.base)
	f.arm = manifestJSON(layout.MediaTypeDockerManifest, f.cfgArm, f.base, f.armLayer)
	f.index = indexJSON(layout.MediaTypeDockerManifestList, []blob{f.amd, f.arm},
		[]layout.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}})
	f.ociImage = manifestJSON(layout.MediaTypeOCIManifest, f.cfgOCI, f.ociOnly)
	return f
}

func (f fixture) image(t testing.TB, b blob) *layout.Image {
	m := parse(t, b)
	img := &layout.Image{Manifest: m}
	for _, c := range []blob{f.amd, f.arm} {
		for _, d := range m.Manifests {
			if d.Digest == sha(c.data) {
				img.Children = append(img.Children, parse(t, c))
			}
		}
	}
	return img
}

// smallCatalog: "app" tags v1 and latest on the single image and pins the OCI image;
// "a/b/multi" tags 1.0 on the index.
func (f fixture) smallCatalog(t testing.TB) *catalog.Catalog {
	c := catalog.New()
	amd64 := map[digest.Digest]layout.Platform{sha(f.single.data): {OS: "linux", Architecture: "amd64"}}
	c.Add("app", "v1", f.image(t, f.single), amd64)
	c.Add("app", "latest", f.image(t, f.single), amd64)
	c.Add("app", "", f.image(t, f.ociImage), nil)
	c.Add("a/b/multi", "1.0", f.image(t, f.index), nil)
	c.Meta.Created = time.Date(2022, 6, 1, 10, 20, 30, 0, time.UTC)
	c.Meta.BaleVersion = "test"
	c.Meta.ID = c.ComputeID()
	if err := c.Validate(); err != nil {
		t.Fatalf("fixture catalog does not validate: %v", err)
	}
	return c
}

// largeCatalog builds, without Add, a catalog of repos repositories with 3 image manifests,
// 4 tags and one pin each, an index in every third repository, and nblobs blobs in all.
func largeCatalog(t testing.TB, repos, nblobs int) *catalog.Catalog {
	c := catalog.New()
	blobs := make([]digest.Digest, nblobs)
	for i := range blobs {
		blobs[i] = sha([]byte(fmt.Sprintf("blob %d", i)))
		c.Blobs[blobs[i]] = &catalog.BlobRecord{Size: int64(i*997 + 1), MediaType: dockerLayer}
	}
	next := 0
	take := func() digest.Digest {
		d := blobs[next%nblobs]
		next++
		return d
	}
	for r := 0; r < repos; r++ {
		name := fmt.Sprintf("team%02d/project-%d/image_%03d", r%17, r%5, r)
		rp := &catalog.Repo{Tags: map[string]digest.Digest{}}
		var images []digest.Digest
		for m := 0; m < 3; m++ {
			d := sha([]byte(fmt.Sprintf("manifest %d/%d", r, m)))
			rec := &catalog.ManifestRecord{MediaType: layout.MediaTypeDockerManifest, Size: int64(400 + r + m),
				Platform: &layout.Platform{OS: "linux", Architecture: "amd64"}}
			for k := 0; k < 1+(r+m)%9; k++ {
				rec.Blobs = append(rec.Blobs, take())
			}
			c.Manifests[d] = rec
			c.Blobs[d] = &catalog.BlobRecord{Size: rec.Size, MediaType: rec.MediaType}
			images = append(images, d)
			rp.Manifests = append(rp.Manifests, d)
		}
		top := images
		if r%3 == 0 {
			d := sha([]byte(fmt.Sprintf("index %d", r)))
			c.Manifests[d] = &catalog.ManifestRecord{MediaType: layout.MediaTypeOCIIndex, Size: 300, Children: images[:2]}
			c.Blobs[d] = &catalog.BlobRecord{Size: 300, MediaType: layout.MediaTypeOCIIndex}
			rp.Manifests = append(rp.Manifests, d)
			top = append([]digest.Digest{d}, images...)
		}
		sortDigests(rp.Manifests)
		for k, tag := range []string{"latest", "v1.0", "v1.1-rc_2", fmt.Sprintf("build-%d", r)} {
			rp.Tags[tag] = top[k%len(top)]
		}
		rp.Pinned = []digest.Digest{images[2]}
		c.Repos[name] = rp
	}
	for next < nblobs { // use every blob
		d := sha([]byte(fmt.Sprintf("extra manifest %d", next)))
		rec := &catalog.ManifestRecord{MediaType: layout.MediaTypeOCIManifest, Size: 500}
		for k := 0; k < 10; k++ {
			rec.Blobs = append(rec.Blobs, take())
		}
		c.Manifests[d] = rec
		c.Blobs[d] = &catalog.BlobRecord{Size: 500, MediaType: rec.MediaType}
		rp := c.Repos["extra"]
		if rp == nil {
			rp = &catalog.Repo{Tags: map[string]digest.Digest{}}
			c.Repos["extra"] = rp
		}
		rp.Manifests = append(rp.Manifests, d)
		rp.Tags[fmt.Sprintf("t%d", next)] = d
		sortDigests(rp.Manifests)
	}
	c.Meta.Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Meta.BaleVersion = "1.2.3"
	c.Meta.ID = c.ComputeID()
	if err := c.Validate(); err != nil {
		t.Fatalf("large catalog does not validate: %v", err)
	}
	return c
}

func sortDigests(ds []digest.Digest) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// catalogDiff describes how got differs from want, field by field ("" if equal). Manifest
// records are compared by their JSON form, which is what the database keeps.
func catalogDiff(got, want *catalog.Catalog) string {
	var diffs []string
	if !reflect.DeepEqual(got.Meta, want.Meta) {
		diffs = append(diffs, fmt.Sprintf("Meta = %+v, want %+v", got.Meta, want.Meta))
	}
	if !reflect.DeepEqual(got.Repos, want.Repos) {
		for name, r := range want.Repos {
			if g := got.Repos[name]; !reflect.DeepEqual(g, r) {
				diffs = append(diffs, fmt.Sprintf("repo %s = %+v, want %+v", name, g, r))
			}
		}
		if len(got.Repos) != len(want.Repos) {
			diffs = append(diffs, fmt.Sprintf("%d repos, want %d", len(got.Repos), len(want.Repos)))
		}
	}
	if len(got.Manifests) != len(want.Manifests) {
		diffs = append(diffs, fmt.Sprintf("%d manifests, want %d", len(got.Manifests), len(want.Manifests)))
	}
	for d, m := range want.Manifests {
		g, _ := json.Marshal(got.Manifests[d])
		w, _ := json.Marshal(m)
		if string(g) != string(w) {
			diffs = append(diffs, fmt.Sprintf("manifest %s = %s, want %s", d, g, w))
		}
	}
	if !reflect.DeepEqual(got.Blobs, want.Blobs) {
		diffs = append(diffs, fmt.Sprintf("blobs differ (%d, want %d)", len(got.Blobs), len(want.Blobs)))
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], "...")
	}
	return strings.Join(diffs, "\n")
}
