package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// The scale pools (issue #19) measure metadata, not bytes: every layer is a tiny tar+gzip blob
// (a few hundred bytes of payload), about 5 blobs a tag (config, manifest, three layers), half
// of each image's layers shared with other images, every scaleIndexEvery-th tag a two-platform
// manifest list (Docker) or index (OCI).
const (
	scaleIndexEvery = 10
	scaleSharedPer  = 10 // one shared layer per scaleSharedPer tags (at least 16)
	scalePayloadMin = 128
	scalePayloadMax = 1024
)

// Streams of random choices of the scale pools, apart from those of gen.go.
const (
	streamScaleImage uint64 = iota + 101
	streamScaleLayer
)

// scaleLayers is how many shared layers a pool of n tags draws from.
func scaleLayers(n int) int { return max(16, n/scaleSharedPer) }

// scaleImage is the plan of one tag: the shared layers it uses and how many own layers each
// platform has.
type scaleImage struct {
	shared []int // indexes into the shared layers, one list per platform below
	own    int   // own layers of each platform
	oci    bool
	index  bool // a two-platform list (amd64, arm64)
}

// planScale draws the plan of tag i of a pool with shared shared layers: 1-2 shared and 1-2
// own layers (half of the layers shared), an index every scaleIndexEvery-th tag.
func planScale(i, shared int) scaleImage {
	r := rngFor(streamScaleImage, i)
	p := scaleImage{oci: r.IntN(2) == 0, index: i%scaleIndexEvery == scaleIndexEvery-1, own: 1 + r.IntN(2)}
	for range 1 + r.IntN(2) {
		p.shared = append(p.shared, r.IntN(shared))
	}
	return p
}

// generateScalePool writes registry storage at root holding images as planned by planScale,
// through the library (WriteBlob, LinkImage, Tag), in parallel by repository (each repository's
// tags are written by one worker, so the order of its links is fixed).
func generateScalePool(ctx context.Context, root string, images []poolImage) error {
	s, err := registry.Create(root)
	if err != nil {
		return err
	}
	small := func(r *rand.Rand) int64 { return between(r, scalePayloadMin, scalePayloadMax) }
	shared, err := writeLayers(ctx, s, scaleLayers(len(images)),
		func(i int) string { return fmt.Sprintf("shared-%d", i) },
		func(i int) int64 { return small(rngFor(streamScaleLayer, i)) }, false)
	if err != nil {
		return err
	}
	repos := (len(images) + 2) / 3 // poolNames: three consecutive tags a repository
	return par.Each(ctx, repos, runtime.NumCPU(), func(g int) error {
		for i := 3 * g; i < min(3*g+3, len(images)); i++ {
			if err := writeScaleImage(s, images[i], i, shared); err != nil {
				return fmt.Errorf("%s: %w", images[i], err)
			}
		}
		return nil
	})
}

// writeScaleImage writes tag i: its own layers, configs, manifests, links and tag.
func writeScaleImage(s *registry.Store, im poolImage, i int, shared []genLayer) error {
	p := planScale(i, len(shared))
	r := rngFor(streamScaleLayer, 1<<30+i)
	base := strings.ReplaceAll(im.repo, "/", "-") + "-" + im.tag
	arches := []string{"amd64"}
	if p.index {
		arches = append(arches, "arm64")
	}
	var children []*layout.Manifest
	for _, arch := range arches {
		var layers []genLayer
		for _, k := range p.shared {
			layers = append(layers, shared[k])
		}
		for k := range p.own {
			l, err := writeLayer(s, fmt.Sprintf("%s-%s-%d", base, arch, k), between(r, scalePayloadMin, scalePayloadMax), false)
			if err != nil {
				return err
			}
			layers = append(layers, l)
		}
		m, err := writeImageManifest(s, im, imageSpec{arch: arch, oci: p.oci, layers: layers})
		if err != nil {
			return err
		}
		children = append(children, m)
	}
	img := &layout.Image{Manifest: children[0]}
	if p.index {
		mt := imagetest.MediaTypeDockerManifestList
		if p.oci {
			mt = imagetest.MediaTypeOCIIndex
		}
		idx := imagetest.IndexJSON{SchemaVersion: 2, MediaType: mt}
		for k, c := range children {
			d := c.Descriptor()
			idx.Manifests = append(idx.Manifests, imagetest.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size,
				Platform: &imagetest.Platform{Architecture: arches[k], OS: "linux"}})
		}
		m, err := putManifest(s, idx)
		if err != nil {
			return err
		}
		img = &layout.Image{Manifest: m, Children: children}
	}
	if err := s.LinkImage(im.repo, img); err != nil {
		return err
	}
	return s.Tag(im.repo, im.tag, img.Manifest.Digest)
}

// putManifest stores the JSON of v as a manifest blob and returns it parsed.
func putManifest(s *registry.Store, v any) (*layout.Manifest, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m, err := layout.ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	return m, s.WriteBlob(m.Descriptor(), bytes.NewReader(raw))
}
