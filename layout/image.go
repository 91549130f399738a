package layout

import (
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
)

// Image is the resolved graph of one top-level manifest: the manifest itself and, for an index,
// its child image manifests in index order.
type Image struct {
	Manifest *Manifest
	Children []*Manifest
}

// LoadImage reads manifest d of repo and, for an index, every child manifest. Nested indexes
// are refused with ErrUnsupported.
func LoadImage(src Source, repo string, d digest.Digest) (*Image, error) {
	m, err := src.ReadManifest(repo, d)
	if err != nil {
		return nil, err
	}
	img := &Image{Manifest: m}
	for _, cd := range m.Manifests {
		c, err := src.ReadManifest(repo, cd.Digest)
		if err != nil {
			return nil, fmt.Errorf("child of index %s: %w", d, err)
		}
		if c.IsIndex() {
			return nil, fmt.Errorf("index %s: child %s is itself an index: %w", d, cd.Digest, ErrUnsupported)
		}
		if c.MediaType != cd.MediaType || int64(len(c.Raw)) != cd.Size {
			return nil, fmt.Errorf("index %s: child %s is %s of %d bytes, the index says %s of %d: %w",
				d, cd.Digest, c.MediaType, len(c.Raw), cd.MediaType, cd.Size, ErrInvalid)
		}
		img.Children = append(img.Children, c)
	}
	return img, nil
}

// Digest is the digest of the top-level manifest.
func (img *Image) Digest() digest.Digest { return img.Manifest.Digest }

// Manifests returns the top-level manifest followed by the children.
func (img *Image) Manifests() []*Manifest {
	return append([]*Manifest{img.Manifest}, img.Children...)
}

// Blobs returns the config and layer descriptors of every instance, each digest once, in the
// order they first appear.
func (img *Image) Blobs() []Descriptor {
	var out []Descriptor
	seen := map[digest.Digest]bool{}
	for _, m := range img.Manifests() {
		for _, b := range m.Blobs() {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				out = append(out, b)
			}
		}
	}
	return out
}

// Descriptors returns every blob of the image, each once: configs and layers (Blobs), then the
// manifests themselves.
func (img *Image) Descriptors() []Descriptor {
	descs := img.Blobs()
	for _, m := range img.Manifests() {
		descs = append(descs, m.Descriptor())
	}
	return descs
}

// Platforms lists the platforms of an index's children, nil for a single image.
func (img *Image) Platforms() []Platform {
	var ps []Platform
	for _, d := range img.Manifest.Manifests {
		if d.Platform != nil {
			ps = append(ps, *d.Platform)
		}
	}
	return ps
}

// Size is the sum of the sizes of every manifest and blob of the image, each counted once.
func (img *Image) Size() int64 {
	var n int64
	for _, m := range img.Manifests() {
		n += int64(len(m.Raw))
	}
	for _, b := range img.Blobs() {
		n += b.Size
	}
	return n
}

// SelectPlatform returns the image of the child matching p, as skopeo's --override-os/-arch
// would pick it: the first child that matches, kept byte-exact. A single image is returned as it
// is. An index without a matching child is an ErrNotFound naming the platforms it has.
func (img *Image) SelectPlatform(p Platform) (*Image, error) {
	if !img.Manifest.IsIndex() {
		return img, nil
	}
	for i, d := range img.Manifest.Manifests {
		if p.Matches(d.Platform) {
			return &Image{Manifest: img.Children[i]}, nil
		}
	}
	var have []string
	for _, q := range img.Platforms() {
		have = append(have, q.String())
	}
	sort.Strings(have)
	return nil, fmt.Errorf("index %s has no %s manifest (it has %v): %w", img.Digest(), p, have, ErrNotFound)
}
