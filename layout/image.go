package layout

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Image is the resolved graph of one top-level manifest: the manifest itself and, for an index,
// its child image manifests in index order.
type Image struct {
	Manifest *Manifest
	// Children are the index's child manifests that are present, in index order.
	Children []*Manifest
	// Absent are the index's children that are not (a sparse index: the index is kept byte
	// for byte, with only some platforms' images).
	Absent []Descriptor
}

// Sparse reports whether some children of the index are absent.
func (img *Image) Sparse() bool { return len(img.Absent) > 0 }

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
		if errors.Is(err, ErrNotFound) {
			img.Absent = append(img.Absent, cd) // a sparse index
			continue
		}
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
	if len(m.Manifests) > 0 && len(img.Children) == 0 {
		return nil, fmt.Errorf("index %s: none of its %d child manifests is here: %w", d, len(m.Manifests), ErrNotFound)
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
	for _, d := range img.Manifest.Manifests {
		if c := img.child(d.Digest); c != nil && p.Matches(d.Platform) {
			return &Image{Manifest: c}, nil
		}
	}
	return nil, img.noPlatform([]Platform{p})
}

// child returns the present child manifest d, or nil.
func (img *Image) child(d digest.Digest) *Manifest {
	for _, c := range img.Children {
		if c.Digest == d {
			return c
		}
	}
	return nil
}

// noPlatform is the error of an index without any of ps among its present children.
func (img *Image) noPlatform(ps []Platform) error {
	var want, have []string
	for _, p := range ps {
		want = append(want, p.String())
	}
	for _, d := range img.Manifest.Manifests {
		if d.Platform != nil && img.child(d.Digest) != nil {
			have = append(have, d.Platform.String())
		}
	}
	sort.Strings(have)
	return fmt.Errorf("index %s has no %s manifest (it has %v): %w", img.Digest(), strings.Join(want, " or "), have, ErrNotFound)
}

// SelectPlatforms keeps the index byte for byte and, of its children, those of the platforms
// ps (a sparse index, whose digest is the original's); a single image is returned as it is.
func (img *Image) SelectPlatforms(ps []Platform) (*Image, error) {
	if !img.Manifest.IsIndex() {
		return img, nil
	}
	out := &Image{Manifest: img.Manifest, Absent: append([]Descriptor(nil), img.Absent...)}
	for _, d := range img.Manifest.Manifests {
		c := img.child(d.Digest)
		if c == nil {
			continue // already absent
		}
		keep := false
		for _, p := range ps {
			keep = keep || p.Matches(d.Platform)
		}
		if keep {
			out.Children = append(out.Children, c)
		} else {
			out.Absent = append(out.Absent, d)
		}
	}
	if len(out.Children) == 0 {
		return nil, img.noPlatform(ps)
	}
	return out, nil
}

// ForPlatforms is the image for none (img), one (SelectPlatform: that platform's manifest)
// or several platforms (SelectPlatforms: a sparse index).
func (img *Image) ForPlatforms(ps []Platform) (*Image, error) {
	switch len(ps) {
	case 0:
		return img, nil
	case 1:
		return img.SelectPlatform(ps[0])
	}
	return img.SelectPlatforms(ps)
}
