package layout

import (
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
)

// A skeleton is what CopyWith keeps of a resolved image until it writes it: the media type,
// digest and subject of each manifest (what referrer discovery and the referrers-tag filter
// read) and the digests of everything the image needs, each digest string once per copy (for
// the byte count). The image is read again, and must be the same, when it is written: a
// release of tens of thousands of images is not held in memory whole (#19: a push of 20,000
// tags held 45 MB of parsed manifests).
type skeleton struct {
	needs []digest.Digest // every blob and manifest of the image, as Descriptors lists them
}

// blobSizes interns the digests of the images being copied, with their sizes.
type blobSizes struct {
	mu    sync.Mutex
	sizes map[digest.Digest]sized
}

// sized is one interned digest and its size.
type sized struct {
	d    digest.Digest
	size int64
}

// skeletonOf is img reduced to a skeleton (see skeleton), its digests interned in bs.
func (bs *blobSizes) skeletonOf(img *Image) *Image {
	descs := img.Descriptors()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	intern := func(d digest.Digest, size int64) digest.Digest {
		if s, ok := bs.sizes[d]; ok {
			return s.d
		}
		bs.sizes[d] = sized{d, size}
		return d
	}
	keep := func(m *Manifest) *Manifest {
		o := m.outline()
		o.Digest = intern(m.Digest, int64(len(m.Raw)))
		return o
	}
	s := &Image{Manifest: keep(img.Manifest), skel: &skeleton{needs: make([]digest.Digest, 0, len(descs))}}
	for _, c := range img.Children {
		s.Children = append(s.Children, keep(c))
	}
	for _, d := range descs {
		s.skel.needs = append(s.skel.needs, intern(d.Digest, d.Size))
	}
	return s
}

// bytes is the size of every blob and manifest the images need, each digest once: skeletons
// and whole images alike.
func (bs *blobSizes) bytes(images []Resolved) int64 {
	seen := map[digest.Digest]bool{}
	var n int64
	for _, r := range images {
		if r.Image.skel != nil {
			for _, d := range r.Image.skel.needs {
				if !seen[d] {
					seen[d] = true
					n += bs.sizes[d].size
				}
			}
			continue
		}
		for _, d := range r.Image.Descriptors() {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				n += d.Size
			}
		}
	}
	return n
}

// aheadNeeds lists every blob and manifest img needs, for reading ahead.
func aheadNeeds(img *Image) []digest.Digest {
	if img.skel == nil {
		var out []digest.Digest
		for _, d := range img.Descriptors() {
			out = append(out, d.Digest)
		}
		return out
	}
	return img.skel.needs
}

// whole is the image r names, read again from src when r holds a skeleton of it; it must be
// the image resolved before.
func whole(src Source, r Resolved, platforms []Platform) (*Image, error) {
	if r.Image.skel == nil {
		return r.Image, nil
	}
	img, err := ResolveImage(src, r.Ref, platforms)
	if err != nil {
		return nil, err
	}
	if img.Manifest.Digest != r.Image.Manifest.Digest {
		return nil, fmt.Errorf("the source changed during the copy: %s was %s, is now %s: %w",
			r.Ref, r.Image.Manifest.Digest, img.Manifest.Digest, ErrNotFound)
	}
	return img, nil
}
