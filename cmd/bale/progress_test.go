package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/progress"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout/registry"
)

// TestBlobProgressShapes feeds blobProgress the real-world shapes (BuildKit attestation
// indexes, a tagged inner index, one manifest in two repositories, cosign's legacy tags),
// given twice as a base and a patch that both record every image would be: each image is
// logged once, only after every blob the corpus says it has has gone by, and the count
// ends at the number of images.
func TestBlobProgressShapes(t *testing.T) {
	s := getShapes(t)
	st, err := registry.Open(s.registry)
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.FromSource(st, nil, catalog.BuildOptions{AllTags: true})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range c.Entries() {
		names[e.Ref().String()] = true
	}
	// What each image needs, from the corpus rather than the catalog.
	needs := map[string][]digest.Digest{}
	for _, img := range s.corpus.Images {
		ds, err := s.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		needs[img.Name()] = append(ds, append([]digest.Digest{img.Digest}, img.Children...)...)
	}

	var out bytes.Buffer
	begin, step := blobProgress(progress.New(progress.Plain, &out, "pack"))
	begin([]*catalog.Catalog{c, c})
	stepped := map[digest.Digest]bool{}
	logged := map[string]int{}
	check := func() {
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		out.Reset()
		for _, l := range lines {
			if l == "" {
				continue
			}
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "pack" {
				t.Fatalf("progress line %q", l)
			}
			name := f[1]
			logged[name]++
			if want := fmt.Sprintf("%d/%d", len(logged), len(names)); !strings.HasSuffix(l, " "+want) || logged[name] != 1 {
				t.Errorf("progress line %q: want it once, ending %s", l, want)
			}
			var size int64
			for _, d := range slices.Compact(slices.Sorted(slices.Values(needs[name]))) {
				if c.Carried(d) && !stepped[d] {
					t.Errorf("%s logged before its blob %s went by", name, d)
				}
				if c.Carried(d) {
					size += c.Blobs[d].Size
				}
			}
			if want := "(" + units.Bytes(size) + ")"; f[2]+" "+f[3] != want {
				t.Errorf("progress line %q: want the size %s, the blobs it needs once", l, want)
			}
		}
	}
	check() // images with no blob of their own
	blobs := c.CarriedBlobs()
	for _, d := range blobs {
		stepped[d] = true
		step(d, c.Blobs[d].Size)
		check()
	}
	step(blobs[0], c.Blobs[blobs[0]].Size) // again, as a second bundle carrying it would
	check()
	if len(logged) != len(names) {
		t.Errorf("%d images logged, want %d: %v", len(logged), len(names), logged)
	}
	for name := range names {
		if logged[name] != 1 {
			t.Errorf("%s logged %d times", name, logged[name])
		}
	}
	if len(needs) == 0 || len(blobs) < 10 {
		t.Fatalf("the shapes gave %d images and %d blobs", len(needs), len(blobs))
	}
}
