package catalog_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

func TestPlatforms(t *testing.T) {
	f := newFixture()
	sparse := &layout.Image{Manifest: parse(t, f.index), Children: []*layout.Manifest{parse(t, f.amd)}, Absent: []layout.Descriptor{f.arm.desc()}}
	amd64 := map[digest.Digest]layout.Platform{sha(f.single.data): {OS: "linux", Architecture: "amd64"}}
	tests := []struct {
		name string
		add  func(c *catalog.Catalog)
		d    digest.Digest
		want []string
	}{
		{"an image with its config's platform", func(c *catalog.Catalog) { c.Add("app", "v1", f.image(t, f.single), amd64) },
			sha(f.single.data), []string{"linux/amd64"}},
		{"an image of unknown platform", func(c *catalog.Catalog) { c.Add("app", "v1", f.image(t, f.single), nil) },
			sha(f.single.data), nil},
		{"an index: its children's, sorted", func(c *catalog.Catalog) { c.Add("multi", "1.0", f.image(t, f.index), nil) },
			sha(f.index.data), []string{"linux/amd64", "linux/arm/v7"}},
		{"a child of an index: the index's word", func(c *catalog.Catalog) { c.Add("multi", "1.0", f.image(t, f.index), nil) },
			sha(f.arm.data), []string{"linux/arm/v7"}},
		{"a sparse index: the children present", func(c *catalog.Catalog) { c.Add("multi", "1.0", sparse, nil) },
			sha(f.index.data), []string{"linux/amd64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := catalog.New()
			tt.add(c)
			if got := c.Platforms(c.Manifests[tt.d]); !slices.Equal(got, tt.want) {
				t.Errorf("Platforms = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	f := newFixture()
	single, idx, oci := sha(f.single.data), sha(f.index.data), sha(f.ociImage.data)
	sbom := artifactJSON("application/spdx+json", f.single, "sbom")
	sparse := func() *layout.Image {
		return &layout.Image{Manifest: parse(t, f.index), Children: []*layout.Manifest{parse(t, f.amd)}, Absent: []layout.Descriptor{f.arm.desc()}}
	}
	build := func(add func(c *catalog.Catalog)) *catalog.Catalog {
		c := catalog.New()
		add(c)
		if err := c.Finish(); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		return c
	}
	appV1 := func(c *catalog.Catalog) { c.Add("app", "v1", f.image(t, f.single), nil) }
	withIndex := func(c *catalog.Catalog) { appV1(c); c.Add("multi", "1.0", f.image(t, f.index), nil) }
	size := func(bs ...blob) int64 {
		var n int64
		for _, b := range bs {
			n += int64(len(b.data))
		}
		return n
	}
	// The blobs of the index that app:v1 lacks (base and cfgAmd are shared), sorted.
	indexOnly := []blob{f.index, f.amd, f.arm, f.cfgArm, f.armLayer}
	sorted := func(bs []blob) []string {
		var out []string
		for _, b := range bs {
			out = append(out, string(sha(b.data)))
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name     string
		old, new func(c *catalog.Catalog)
		want     catalog.Diff // empty lists left nil here
	}{
		{name: "the same", old: withIndex, new: withIndex},
		{name: "a tag on the same image", old: appV1, new: func(c *catalog.Catalog) {
			appV1(c)
			c.Add("app", "latest", f.image(t, f.single), nil)
		}, want: catalog.Diff{Added: []catalog.DiffTag{{Repo: "app", Tag: "latest", New: string(single)}}}},
		{name: "an image added", old: appV1, new: withIndex, want: catalog.Diff{
			Added:      []catalog.DiffTag{{Repo: "multi", Tag: "1.0", New: string(idx)}},
			BlobsAdded: sorted(indexOnly), BytesAdded: size(indexOnly...), PatchBytes: size(indexOnly...)}},
		{name: "an image removed", old: withIndex, new: appV1, want: catalog.Diff{
			Removed:      []catalog.DiffTag{{Repo: "multi", Tag: "1.0", Old: string(idx)}},
			BlobsRemoved: sorted(indexOnly), BytesRemoved: size(indexOnly...)}},
		{name: "a tag changed", old: appV1, new: func(c *catalog.Catalog) { c.Add("app", "v1", f.image(t, f.ociImage), nil) }, want: catalog.Diff{
			Changed:      []catalog.DiffTag{{Repo: "app", Tag: "v1", Old: string(single), New: string(oci)}},
			BlobsAdded:   sorted([]blob{f.ociImage, f.cfgOCI, f.ociOnly}),
			BytesAdded:   size(f.ociImage, f.cfgOCI, f.ociOnly),
			BlobsRemoved: sorted([]blob{f.single, f.cfgAmd, f.base, f.app}),
			BytesRemoved: size(f.single, f.cfgAmd, f.base, f.app),
			PatchBytes:   size(f.ociImage, f.cfgOCI, f.ociOnly)}},
		{name: "the same index with fewer platforms", old: withIndex, new: func(c *catalog.Catalog) {
			appV1(c)
			c.Add("multi", "1.0", sparse(), nil)
		}, want: catalog.Diff{
			Platforms: []catalog.DiffPlatforms{{Repo: "multi", Tag: "1.0", Digest: string(idx),
				Old: []string{"linux/amd64", "linux/arm/v7"}, New: []string{"linux/amd64"}}},
			BlobsRemoved: sorted([]blob{f.arm, f.cfgArm, f.armLayer}), BytesRemoved: size(f.arm, f.cfgArm, f.armLayer)}},
		{name: "a referrer added", old: appV1, new: func(c *catalog.Catalog) {
			appV1(c)
			c.AddReferrer("app", &layout.Image{Manifest: parse(t, sbom)}, nil)
		}, want: catalog.Diff{
			ReferrersAdded: []catalog.DiffReferrer{{Repo: "app", Subject: string(single), Kind: "application/spdx+json", New: string(sha(sbom.data))}},
			BlobsAdded:     sorted([]blob{sbom, {data: []byte("{}")}, {data: []byte("sbom")}}),
			BytesAdded:     size(sbom, blob{data: []byte("{}")}, blob{data: []byte("sbom")}),
			PatchBytes:     size(sbom, blob{data: []byte("{}")}, blob{data: []byte("sbom")})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldC, newC := build(tt.old), build(tt.new)
			got, err := catalog.Compare(oldC, newC)
			if err != nil {
				t.Fatalf("Compare: %v", err)
			}
			want := tt.want
			for _, l := range []*[]catalog.DiffTag{&want.Added, &want.Removed, &want.Changed} {
				*l = append([]catalog.DiffTag{}, *l...)
			}
			for _, l := range []*[]catalog.DiffReferrer{&want.ReferrersAdded, &want.ReferrersRemoved, &want.ReferrersChanged} {
				*l = append([]catalog.DiffReferrer{}, *l...)
			}
			for _, l := range []*[]string{&want.BlobsAdded, &want.BlobsRemoved} {
				*l = append([]string{}, *l...)
			}
			patch := got.Patch
			got.Patch = nil
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Compare =\n%+v\nwant\n%+v", *got, want)
			}
			if patch == nil || !patch.IsPatch() || patch.CarriedBytes() != want.PatchBytes || patch.Validate() != nil {
				t.Errorf("the patch is not NEW's patch against OLD carrying %d bytes", want.PatchBytes)
			}
			if patch != nil && patch.Bases[0].ID != oldC.Meta.ID {
				t.Errorf("the patch's base is %s, want OLD's id %s", patch.Bases[0].ID, oldC.Meta.ID)
			}
		})
	}
}
