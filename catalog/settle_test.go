package catalog_test

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// TestSettleImageByImage builds catalogs image by image, as FromSource does, and checks what
// settling them gives, by every way a catalog gets settled (Settle, Finish, Write then Read),
// and in both orders of adding: the format chosen and every index's absent children, each
// written out here by hand. (Before format 4 the format depended on what the catalog held.)
func TestSettleImageByImage(t *testing.T) {
	f := newFixture()
	idx, arm := sha(f.index.data), sha(f.arm.data)
	// sparseIndex is the index with only its amd64 image.
	sparseIndex := func(t *testing.T) *layout.Image {
		armDesc := f.arm.desc()
		return &layout.Image{Manifest: parse(t, f.index), Children: []*layout.Manifest{parse(t, f.amd)}, Absent: []layout.Descriptor{armDesc}}
	}
	outer := blob{layout.MediaTypeOCIIndex, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		descJSON(f.index.desc()) + `]}`)}
	sbom := artifactJSON("application/spdx+json", f.single, "sbom")

	type step func(t *testing.T, c *catalog.Catalog)
	add := func(repo, tag string, img func(t *testing.T) *layout.Image) step {
		return func(t *testing.T, c *catalog.Catalog) { c.Add(repo, tag, img(t), nil) }
	}
	image := func(b blob) func(t *testing.T) *layout.Image {
		return func(t *testing.T) *layout.Image { return f.image(t, b) }
	}
	tests := []struct {
		name   string
		steps  []step
		after  []step                            // done after every step, in this order (MarkNotCarried after the images)
		absent map[digest.Digest][]digest.Digest // index -> absent children; others none
	}{
		{name: "images and a full index", steps: []step{
			add("app", "v1", image(f.single)), add("app", "", image(f.ociImage)), add("multi", "1.0", image(f.index)),
		}},
		{name: "a sparse index", absent: map[digest.Digest][]digest.Digest{idx: {arm}}, steps: []step{
			add("app", "v1", image(f.single)), add("multi", "1.0", sparseIndex),
		}},
		{name: "a sparse index whose missing child comes later", steps: []step{
			add("multi", "1.0", sparseIndex), add("app", "v1", image(f.single)), add("multi", "arm", image(f.arm)),
		}},
		{name: "an index sparse in one repository and full in another", absent: map[digest.Digest][]digest.Digest{idx: {arm}}, steps: []step{
			add("full", "1.0", image(f.index)), add("sparse", "1.0", sparseIndex),
		}},
		{name: "a referrer", steps: []step{
			add("app", "v1", image(f.single)),
			func(t *testing.T, c *catalog.Catalog) {
				c.AddReferrer("app", &layout.Image{Manifest: parse(t, sbom)}, nil)
			},
		}},
		{name: "a referrer and a sparse index", absent: map[digest.Digest][]digest.Digest{idx: {arm}}, steps: []step{
			add("app", "v1", image(f.single)), add("multi", "1.0", sparseIndex),
			func(t *testing.T, c *catalog.Catalog) {
				c.AddReferrer("app", &layout.Image{Manifest: parse(t, sbom)}, nil)
			},
		}},
		{name: "a nested index", steps: []step{
			add("app", "v1", image(f.single)),
			add("nest", "1", func(t *testing.T) *layout.Image {
				return &layout.Image{Manifest: parse(t, outer), Children: []*layout.Manifest{parse(t, f.index), parse(t, f.amd), parse(t, f.arm)}}
			}),
		}},
		{name: "a layer not carried", steps: []step{
			add("app", "v1", image(f.single)), add("multi", "1.0", image(f.index)),
		}, after: []step{func(t *testing.T, c *catalog.Catalog) { c.MarkNotCarried(sha(f.app.data)) }}},
	}
	check := func(t *testing.T, how string, c *catalog.Catalog, absent map[digest.Digest][]digest.Digest) {
		t.Helper()
		if c.Meta.Format != catalog.FormatCatalog { // format 4 whatever the catalog holds
			t.Errorf("%s: format %d, want %d", how, c.Meta.Format, catalog.FormatCatalog)
		}
		for d, m := range c.Manifests {
			if !slices.Equal(m.Absent, absent[d]) {
				t.Errorf("%s: manifest %s: absent %v, want %v", how, d, m.Absent, absent[d])
			}
		}
		if n := c.SparseIndexes(); n != len(absent) {
			t.Errorf("%s: %d sparse indexes, want %d", how, n, len(absent))
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", how, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, reverse := range []bool{false, true} {
				build := func() *catalog.Catalog {
					c := catalog.New()
					steps := slices.Clone(tt.steps)
					if reverse {
						slices.Reverse(steps)
					}
					for _, s := range append(steps, tt.after...) {
						s(t, c)
					}
					return c
				}
				order := "in order"
				if reverse {
					order = "in reverse order"
				}
				c := build()
				c.Settle()
				check(t, "Settle, "+order, c, tt.absent)

				c = build()
				if err := c.Finish(); err != nil {
					t.Fatalf("Finish, %s: %v", order, err)
				}
				check(t, "Finish, "+order, c, tt.absent)

				p, _ := writeCatalog(t, build())
				back, err := catalog.Read(p)
				if err != nil {
					t.Fatalf("Read(Write), %s: %v", order, err)
				}
				check(t, "Read(Write), "+order, back, tt.absent)
			}
		})
	}
}
