package catalog_test

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
)

// TestBlobSets checks the sorted blob sets of a patch's catalog: carried, expected from a
// base, and non-distributable layers no bundle carries.
func TestBlobSets(t *testing.T) {
	d := func(c byte) digest.Digest {
		return digest.Digest("sha256:" + string(slices.Repeat([]byte{c}, 64)))
	}
	c := catalog.New()
	c.Blobs[d('f')] = &catalog.BlobRecord{Size: 1}
	c.Blobs[d('a')] = &catalog.BlobRecord{Size: 2}
	c.Blobs[d('7')] = &catalog.BlobRecord{Size: 3, Base: "base-id"}
	c.Blobs[d('2')] = &catalog.BlobRecord{Size: 4, Base: "base-id"}
	c.Blobs[d('c')] = &catalog.BlobRecord{Size: 5, NotCarried: true}
	c.Blobs[d('0')] = &catalog.BlobRecord{Size: 6}
	for _, tc := range []struct {
		name      string
		got, want []digest.Digest
	}{
		{"SortedBlobs", c.SortedBlobs(), []digest.Digest{d('0'), d('2'), d('7'), d('a'), d('c'), d('f')}},
		{"CarriedBlobs", c.CarriedBlobs(), []digest.Digest{d('0'), d('a'), d('f')}},
		{"ExpectedBlobs", c.ExpectedBlobs(), []digest.Digest{d('2'), d('7')}},
		{"NotCarriedBlobs", c.NotCarriedBlobs(), []digest.Digest{d('c')}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n := c.CarriedCount(); n != 3 {
		t.Errorf("CarriedCount = %d, want 3", n)
	}
	if n := c.CarriedBytes(); n != 1+2+6 {
		t.Errorf("CarriedBytes = %d, want 9", n)
	}
}
