package remote

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// index returns a manifest of digest d listing children (an index when it has any).
func index(d string, children ...*layout.Manifest) *layout.Manifest {
	m := &layout.Manifest{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromString(d)}
	if len(children) > 0 {
		m.MediaType = layout.MediaTypeOCIIndex
	}
	for _, c := range children {
		m.Manifests = append(m.Manifests, layout.Descriptor{MediaType: c.MediaType, Digest: c.Digest})
	}
	return m
}

// TestChildrenFirst: every manifest below an image is pushed after the manifests it lists,
// at any depth, a child two indexes share once, an absent child skipped.
func TestChildrenFirst(t *testing.T) {
	amd, arm, shared, absent := index("amd64"), index("arm64"), index("shared"), index("absent")
	l3 := index("l3", amd, arm)
	l2 := index("l2", l3, shared)
	other := index("other", shared, absent)
	top := index("top", l2, other)
	// LoadImage's order: an index before its own children, depth first, each digest once.
	img := &layout.Image{Manifest: top, Children: []*layout.Manifest{l2, l3, amd, arm, shared, other},
		Absent: []layout.Descriptor{{Digest: absent.Digest}}}
	got := childrenFirst(img)
	if len(got) != len(img.Children) {
		t.Fatalf("%d manifests, want %d", len(got), len(img.Children))
	}
	pos := map[digest.Digest]int{}
	for i, m := range got {
		if _, dup := pos[m.Digest]; dup {
			t.Fatalf("manifest %s twice", m.Digest)
		}
		pos[m.Digest] = i
	}
	for _, m := range got {
		for _, c := range m.Manifests {
			if p, ok := pos[c.Digest]; ok && p > pos[m.Digest] {
				t.Errorf("index %s comes before its child %s", m.Digest, c.Digest)
			}
		}
	}
	if !slices.Equal(got, childrenFirst(img)) {
		t.Error("two calls give different orders")
	}
	single := &layout.Image{Manifest: amd}
	if got := childrenFirst(single); len(got) != 0 {
		t.Errorf("a single image has %d manifests below it", len(got))
	}
}
