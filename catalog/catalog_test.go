package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

func TestAddRecords(t *testing.T) {
	f := newFixture()
	c := f.smallCatalog(t)
	single, index, amd, arm, oci := sha(f.single.data), sha(f.index.data), sha(f.amd.data), sha(f.arm.data), sha(f.ociImage.data)

	app := c.Repos["app"]
	if want := map[string]digest.Digest{"v1": single, "latest": single}; !reflect.DeepEqual(app.Tags, want) {
		t.Errorf("app tags = %v, want %v", app.Tags, want)
	}
	if want := []digest.Digest{oci}; !reflect.DeepEqual(app.Pinned, want) {
		t.Errorf("app pinned = %v, want %v", app.Pinned, want)
	}
	wantManifests := []digest.Digest{single, oci}
	sort.Slice(wantManifests, func(i, j int) bool { return wantManifests[i] < wantManifests[j] })
	if !reflect.DeepEqual(app.Manifests, wantManifests) {
		t.Errorf("app manifests = %v, want %v", app.Manifests, wantManifests)
	}
	multi := c.Repos["a/b/multi"]
	wantMulti := []digest.Digest{index, amd, arm}
	sort.Slice(wantMulti, func(i, j int) bool { return wantMulti[i] < wantMulti[j] })
	if !reflect.DeepEqual(multi.Manifests, wantMulti) {
		t.Errorf("a/b/multi manifests = %v, want %v (index and children, sorted)", multi.Manifests, wantMulti)
	}

	idx := c.Manifests[index]
	if idx.MediaType != layout.MediaTypeDockerManifestList || idx.Size != int64(len(f.index.data)) ||
		!reflect.DeepEqual(idx.Children, []digest.Digest{amd, arm}) || idx.Blobs != nil || idx.Platform != nil {
		t.Errorf("index record = %+v", idx)
	}
	armRec := c.Manifests[arm]
	wantArmBlobs := []digest.Digest{sha(f.cfgArm.data), sha(f.base.data), sha(f.armLayer.data)}
	if !reflect.DeepEqual(armRec.Blobs, wantArmBlobs) {
		t.Errorf("arm blobs = %v, want config then layers %v", armRec.Blobs, wantArmBlobs)
	}
	if armRec.Platform == nil || armRec.Platform.String() != "linux/arm/v7" {
		t.Errorf("arm platform = %v, want linux/arm/v7 from the index", armRec.Platform)
	}
	if p := c.Manifests[single].Platform; p == nil || p.String() != "linux/amd64" {
		t.Errorf("single platform = %v, want linux/amd64 from the platforms argument", p)
	}
	if p := c.Manifests[oci].Platform; p != nil {
		t.Errorf("oci platform = %v, want none (not given)", p)
	}

	// Every manifest and blob has a blob record with its size and media type.
	for _, b := range []blob{f.single, f.index, f.amd, f.arm, f.ociImage, f.cfgAmd, f.cfgArm, f.cfgOCI, f.base, f.app, f.armLayer, f.ociOnly} {
		got := c.Blobs[sha(b.data)]
		if got == nil || got.Size != int64(len(b.data)) || got.MediaType != b.mt {
			t.Errorf("blob record of %s = %+v, want size %d type %s", sha(b.data), got, len(b.data), b.mt)
		}
	}
	if len(c.Blobs) != 12 {
		t.Errorf("%d blob records, want 12", len(c.Blobs))
	}

	entries := c.Entries()
	var got []string
	for _, e := range entries {
		got = append(got, e.Ref().String())
	}
	want := []string{"a/b/multi:1.0", "app:latest", "app:v1", "app@" + string(oci)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Entries = %q, want %q", got, want)
	}
	if got := c.ImageBlobs(index); len(got) != 4 {
		t.Errorf("ImageBlobs(index) = %v, want 4 distinct blobs", got)
	}
	wantSize := int64(len(f.index.data) + len(f.amd.data) + len(f.arm.data) + len(f.cfgAmd.data) + len(f.cfgArm.data) + len(f.base.data) + len(f.armLayer.data))
	if got := c.ImageSize(index); got != wantSize {
		t.Errorf("ImageSize(index) = %d, want %d", got, wantSize)
	}
}

func TestAddSharedBlobMediaType(t *testing.T) {
	// One layer named as Docker in one image and OCI in another: the record does not depend
	// on the order the images are added in.
	layer := []byte("shared bytes")
	cfg := config(layout.MediaTypeOCIConfig, "linux", "amd64", "", "")
	dockerImg := manifestJSON(layout.MediaTypeDockerManifest, cfg, blob{dockerLayer, layer})
	ociImg := manifestJSON(layout.MediaTypeOCIManifest, cfg, blob{ociLayer, layer})
	f := newFixture()
	var types []string
	for _, order := range [][]blob{{dockerImg, ociImg}, {ociImg, dockerImg}} {
		c := catalog.New()
		for i, b := range order {
			c.Add("r", fmt.Sprint(i), f.image(t, b), nil)
		}
		types = append(types, c.Blobs[sha(layer)].MediaType)
	}
	if types[0] != types[1] {
		t.Errorf("shared layer media type depends on order: %q vs %q", types[0], types[1])
	}
}

func TestValidate(t *testing.T) {
	f := newFixture()
	single, index, amd, oci := sha(f.single.data), sha(f.index.data), sha(f.amd.data), sha(f.ociImage.data)
	unknown := sha([]byte("unknown"))
	tests := []struct {
		name    string
		edit    func(c *catalog.Catalog)
		want    error
		mention string
	}{
		{"tag points at a manifest of another repo", func(c *catalog.Catalog) {
			c.Repos["app"].Tags["x"] = index
		}, catalog.ErrInconsistent, "app:x"},
		{"tag points at an unknown digest", func(c *catalog.Catalog) {
			c.Repos["app"].Tags["x"] = unknown
		}, catalog.ErrInconsistent, string(unknown)},
		{"pin of a manifest of another repo", func(c *catalog.Catalog) {
			c.Repos["app"].Pinned = append(c.Repos["app"].Pinned, index)
		}, catalog.ErrInconsistent, "pinned"},
		{"index child not in the repo", func(c *catalog.Catalog) {
			r := c.Repos["a/b/multi"]
			r.Manifests = remove(r.Manifests, amd)
			c.Repos["app"].Manifests = insert(c.Repos["app"].Manifests, amd) // still used
		}, catalog.ErrInconsistent, string(amd)},
		{"index child missing from the catalog", func(c *catalog.Catalog) {
			delete(c.Manifests, amd)
			c.Repos["a/b/multi"].Manifests = remove(c.Repos["a/b/multi"].Manifests, amd)
		}, catalog.ErrInconsistent, string(amd)},
		{"repo lists a manifest the catalog lacks", func(c *catalog.Catalog) {
			c.Repos["app"].Manifests = insert(c.Repos["app"].Manifests, unknown)
		}, catalog.ErrInconsistent, string(unknown)},
		{"manifest names a missing blob", func(c *catalog.Catalog) {
			delete(c.Blobs, sha(f.app.data))
		}, catalog.ErrInconsistent, string(sha(f.app.data))},
		{"manifest without a blob record", func(c *catalog.Catalog) {
			delete(c.Blobs, single)
		}, catalog.ErrInconsistent, string(single)},
		{"manifest blob record of another size", func(c *catalog.Catalog) {
			c.Blobs[single].Size++
		}, catalog.ErrInconsistent, string(single)},
		{"manifest of a non-manifest type", func(c *catalog.Catalog) {
			c.Manifests[oci].MediaType = layout.MediaTypeOCIConfig
		}, catalog.ErrInconsistent, layout.MediaTypeOCIConfig},
		{"manifest larger than 4 MiB", func(c *catalog.Catalog) {
			c.Manifests[oci].Size = layout.MaxManifestSize + 1
			c.Blobs[oci].Size = layout.MaxManifestSize + 1
		}, catalog.ErrInconsistent, string(oci)},
		{"unreferenced blob", func(c *catalog.Catalog) {
			c.Blobs[unknown] = &catalog.BlobRecord{Size: 7}
		}, catalog.ErrInconsistent, string(unknown)},
		{"manifest in no repository", func(c *catalog.Catalog) {
			c.Repos["app"].Manifests = remove(c.Repos["app"].Manifests, oci)
			c.Repos["app"].Pinned = nil
		}, catalog.ErrInconsistent, string(oci)},
		{"negative blob size", func(c *catalog.Catalog) {
			c.Blobs[sha(f.app.data)].Size = -1
		}, catalog.ErrInconsistent, "negative"},
		{"invalid repo name", func(c *catalog.Catalog) {
			c.Repos["App/X"] = c.Repos["app"]
			delete(c.Repos, "app")
		}, layout.ErrInvalid, "App/X"},
		{"repo name with a dot-dot component", func(c *catalog.Catalog) {
			c.Repos["a/../b"] = c.Repos["app"]
			delete(c.Repos, "app")
		}, layout.ErrInvalid, "a/../b"},
		{"invalid tag", func(c *catalog.Catalog) {
			c.Repos["app"].Tags["../x"] = single
		}, layout.ErrInvalid, "../x"},
		{"invalid blob digest", func(c *catalog.Catalog) {
			c.Blobs["sha256:../../etc"] = &catalog.BlobRecord{Size: 1}
		}, layout.ErrInvalid, "sha256:../../etc"},
		{"invalid manifest digest", func(c *catalog.Catalog) {
			c.Manifests["sha256:ABC"] = &catalog.ManifestRecord{MediaType: layout.MediaTypeOCIManifest}
		}, layout.ErrInvalid, "sha256:ABC"},
		{"format newer than this bale reads", func(c *catalog.Catalog) {
			c.Meta.Format = catalog.FormatVersion + 1
		}, catalog.ErrInconsistent, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.smallCatalog(t)
			tt.edit(c)
			err := c.Validate()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
	t.Run("several problems are all reported", func(t *testing.T) {
		c := f.smallCatalog(t)
		c.Repos["app"].Tags["x"] = unknown
		c.Blobs[unknown] = &catalog.BlobRecord{Size: 7}
		c.Repos["Bad"] = &catalog.Repo{}
		err := c.Validate()
		for _, want := range []string{"app:x", "not referenced", `"Bad"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})
}

func remove(s []digest.Digest, d digest.Digest) []digest.Digest {
	var out []digest.Digest
	for _, x := range s {
		if x != d {
			out = append(out, x)
		}
	}
	return out
}

func insert(s []digest.Digest, d digest.Digest) []digest.Digest {
	out := append(append([]digest.Digest{}, s...), d)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestComputeIDSpec(t *testing.T) {
	// docs/bundle-format.md §6, computed here from literal text.
	d1 := sha([]byte("m1"))
	d2 := sha([]byte("m2"))
	l := sha([]byte("layer"))
	c := catalog.New()
	c.Repos["pinned/img"] = &catalog.Repo{Tags: map[string]digest.Digest{"v1": d1}, Pinned: sortedDigests(d1, d2), Manifests: sortedDigests(d1, d2)}
	c.Repos["a"] = &catalog.Repo{Tags: map[string]digest.Digest{"z": d2, "B": d2}, Manifests: []digest.Digest{d2}}
	c.Manifests[d1] = &catalog.ManifestRecord{MediaType: layout.MediaTypeDockerManifest, Size: 2, Blobs: []digest.Digest{l}}
	c.Manifests[d2] = &catalog.ManifestRecord{MediaType: layout.MediaTypeDockerManifest, Size: 2, Blobs: []digest.Digest{l}}
	c.Blobs[d1] = &catalog.BlobRecord{Size: 2}
	c.Blobs[d2] = &catalog.BlobRecord{Size: 2}
	c.Blobs[l] = &catalog.BlobRecord{Size: 5}
	c.Meta.Created = time.Unix(12345, 0)
	c.Meta.BaleVersion = "x"

	var text strings.Builder
	text.WriteString("ref a B " + string(d2) + "\n")
	text.WriteString("ref a z " + string(d2) + "\n")
	text.WriteString("ref pinned/img v1 " + string(d1) + "\n")
	for _, d := range sortedDigests(d1, d2) {
		text.WriteString("ref pinned/img  " + string(d) + "\n")
	}
	sizes := map[digest.Digest]int{d1: 2, d2: 2, l: 5}
	for _, d := range sortedDigests(d1, d2, l) {
		text.WriteString(fmt.Sprintf("blob %s %d\n", d, sizes[d]))
	}
	h := sha256.Sum256([]byte(text.String()))
	want := "sha256:" + hex.EncodeToString(h[:])
	if got := c.ComputeID(); got != want {
		t.Errorf("ComputeID = %s, want %s (sha256 of\n%s)", got, want, text.String())
	}
}

// specID computes the bundle id of docs/bundle-format.md §6 from c's fields, without
// ComputeID or Entries.
func specID(c *catalog.Catalog) string {
	var text strings.Builder
	names := make([]string, 0, len(c.Repos))
	for n := range c.Repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := c.Repos[n]
		tags := make([]string, 0, len(r.Tags))
		for tag := range r.Tags {
			tags = append(tags, tag)
		}
		sort.Strings(tags)
		for _, tag := range tags {
			fmt.Fprintf(&text, "ref %s %s %s\n", n, tag, r.Tags[tag])
		}
		for _, d := range sortedDigests(r.Pinned...) {
			fmt.Fprintf(&text, "ref %s  %s\n", n, d)
		}
	}
	var blobs []digest.Digest
	for d := range c.Blobs {
		blobs = append(blobs, d)
	}
	for _, d := range sortedDigests(blobs...) {
		fmt.Fprintf(&text, "blob %s %d\n", d, c.Blobs[d].Size)
	}
	h := sha256.Sum256([]byte(text.String()))
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestComputeIDMatchesSpec(t *testing.T) {
	f := newFixture()
	for name, c := range map[string]*catalog.Catalog{
		"small": f.smallCatalog(t),
		"large": largeCatalog(t, 300, 2000),
		"empty": catalog.New(),
	} {
		if got, want := c.ComputeID(), specID(c); got != want {
			t.Errorf("%s: ComputeID = %s, the spec gives %s", name, got, want)
		}
	}
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	out := append([]digest.Digest{}, ds...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestComputeID(t *testing.T) {
	f := newFixture()
	base := f.smallCatalog(t).ComputeID()
	tests := []struct {
		name string
		edit func(c *catalog.Catalog)
		same bool
	}{
		{"nothing", func(c *catalog.Catalog) {}, true},
		{"created, bale version and id", func(c *catalog.Catalog) {
			c.Meta.Created = time.Now()
			c.Meta.BaleVersion = "other"
			c.Meta.ID = "sha256:x"
		}, true},
		{"media types and platforms", func(c *catalog.Catalog) {
			for _, b := range c.Blobs {
				b.MediaType = "x"
			}
			for _, m := range c.Manifests {
				m.Platform = nil
			}
		}, true},
		{"tag moves", func(c *catalog.Catalog) {
			c.Repos["app"].Tags["v1"] = sha(f.ociImage.data)
		}, false},
		{"tag renamed", func(c *catalog.Catalog) {
			c.Repos["app"].Tags["v2"] = c.Repos["app"].Tags["v1"]
			delete(c.Repos["app"].Tags, "v1")
		}, false},
		{"tag becomes a pin", func(c *catalog.Catalog) {
			d := c.Repos["a/b/multi"].Tags["1.0"]
			delete(c.Repos["a/b/multi"].Tags, "1.0")
			c.Repos["a/b/multi"].Pinned = []digest.Digest{d}
		}, false},
		{"repository renamed", func(c *catalog.Catalog) {
			c.Repos["a/b/multi2"] = c.Repos["a/b/multi"]
			delete(c.Repos, "a/b/multi")
		}, false},
		{"blob size", func(c *catalog.Catalog) {
			c.Blobs[sha(f.base.data)].Size++
		}, false},
		{"extra blob", func(c *catalog.Catalog) {
			c.Blobs[sha([]byte("extra"))] = &catalog.BlobRecord{Size: 5}
		}, false},
	}
	for _, tt := range tests {
		c := f.smallCatalog(t)
		tt.edit(c)
		if got := c.ComputeID(); (got == base) != tt.same {
			t.Errorf("%s: ComputeID = %s, base %s, want same=%v", tt.name, got, base, tt.same)
		}
	}
	// Equal content built in another order has the same id.
	c2 := catalog.New()
	c2.Add("a/b/multi", "1.0", f.image(t, f.index), nil)
	c2.Add("app", "", f.image(t, f.ociImage), nil)
	c2.Add("app", "latest", f.image(t, f.single), nil)
	c2.Add("app", "v1", f.image(t, f.single), nil)
	if got := c2.ComputeID(); got != base {
		t.Errorf("equal content added in another order: id %s, want %s", got, base)
	}
	if err := c2.Finish(); err != nil || c2.Meta.ID != base {
		t.Errorf("Finish = %v, id %s, want %s", err, c2.Meta.ID, base)
	}
}
