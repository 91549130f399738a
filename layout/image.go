package layout

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Image is the resolved graph of one top-level manifest: the manifest itself and, for an index,
// every manifest below it (children, and their children where a child is itself an index).
type Image struct {
	Manifest *Manifest
	// Children are the manifests below an index that are present, depth first in index
	// order (an index child comes before its own children).
	Children []*Manifest
	// Absent are the children of the indexes of the image that are not present (a sparse
	// index: the index is kept byte for byte, with only some platforms' images).
	Absent []Descriptor
	// skel, when set, marks a skeleton CopyWith keeps until it writes the image (skeleton.go).
	skel *skeleton
}

// MaxIndexDepth bounds how deep indexes may nest (an index whose children are indexes ...).
const MaxIndexDepth = 8

// Sparse reports whether some children of the index are absent.
func (img *Image) Sparse() bool { return len(img.Absent) > 0 }

// LoadImage reads manifest d of repo and, for an index, every manifest below it, at any
// depth up to MaxIndexDepth. A child that is not there makes the index sparse; an index none
// of whose children is there is ErrNotFound.
func LoadImage(src Source, repo string, d digest.Digest) (*Image, error) {
	m, err := src.ReadManifest(repo, d)
	if err != nil {
		return nil, err
	}
	img := &Image{Manifest: m}
	seen := map[digest.Digest]bool{d: true}
	if err := img.loadChildren(src, repo, m, 1, seen); err != nil {
		return nil, err
	}
	return img, nil
}

// loadChildren appends the children of index m (and theirs) to img.
func (img *Image) loadChildren(src Source, repo string, m *Manifest, depth int, seen map[digest.Digest]bool) error {
	present := 0
	for _, cd := range m.Manifests {
		if seen[cd.Digest] {
			present++ // listed twice, or shared by two indexes of the image: loaded once
			continue
		}
		c, err := src.ReadManifest(repo, cd.Digest)
		if errors.Is(err, ErrNotFound) {
			img.Absent = append(img.Absent, cd) // a sparse index
			continue
		}
		if err != nil {
			return fmt.Errorf("child of index %s: %w", m.Digest, err)
		}
		if c.MediaType != cd.MediaType || int64(len(c.Raw)) != cd.Size {
			return fmt.Errorf("index %s: child %s is %s of %d bytes, the index says %s of %d: %w",
				m.Digest, cd.Digest, c.MediaType, len(c.Raw), cd.MediaType, cd.Size, ErrInvalid)
		}
		seen[cd.Digest] = true
		present++
		img.Children = append(img.Children, c)
		if c.IsIndex() {
			if depth >= MaxIndexDepth {
				return fmt.Errorf("index %s: indexes nest deeper than %d: %w", img.Manifest.Digest, MaxIndexDepth, ErrUnsupported)
			}
			if err := img.loadChildren(src, repo, c, depth+1, seen); err != nil {
				return err
			}
		}
	}
	if len(m.Manifests) > 0 && present == 0 {
		return fmt.Errorf("index %s: none of its %d child manifests is here: %w", m.Digest, len(m.Manifests), ErrNotFound)
	}
	return nil
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

// Platforms lists the platforms of the image manifests below an index (at any depth), nil
// for a single image; attestation manifests (unknown/unknown) are no platform.
func (img *Image) Platforms() []Platform {
	var ps []Platform
	for _, m := range img.Manifests() {
		for _, d := range m.Manifests {
			if isImageChild(d) {
				ps = append(ps, *d.Platform)
			}
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
// would pick it: the first child that matches, depth first through nested indexes, kept
// byte-exact; never an attestation manifest. A single image is returned as it is. An index
// without a matching child is an ErrNotFound naming the platforms it has.
func (img *Image) SelectPlatform(p Platform) (*Image, error) {
	if !img.Manifest.IsIndex() {
		return img, nil
	}
	var find func(m *Manifest, depth int) *Manifest
	find = func(m *Manifest, depth int) *Manifest {
		for _, d := range m.Manifests {
			c := img.child(d.Digest)
			switch {
			case c == nil:
			case c.IsIndex():
				if depth < MaxIndexDepth {
					if r := find(c, depth+1); r != nil {
						return r
					}
				}
			case isImageChild(d) && p.Matches(d.Platform):
				return c
			}
		}
		return nil
	}
	if c := find(img.Manifest, 1); c != nil {
		return &Image{Manifest: c}, nil
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
	for _, m := range img.Manifests() {
		for _, d := range m.Manifests {
			if isImageChild(d) && img.child(d.Digest) != nil {
				have = append(have, d.Platform.String())
			}
		}
	}
	sort.Strings(have)
	return fmt.Errorf("index %s has no %s manifest (it has %v): %w", img.Digest(), strings.Join(want, " or "), have, ErrNotFound)
}

// SelectPlatforms keeps the index byte for byte and, of the manifests below it, those of the
// platforms ps, the attestation manifests of those (IsAttestation, AttestationSubject) and the
// nested indexes that lead to them (a sparse index, whose digest is the original's); a single
// image is returned as it is.
func (img *Image) SelectPlatforms(ps []Platform) (*Image, error) {
	if !img.Manifest.IsIndex() {
		return img, nil
	}
	out := &Image{Manifest: img.Manifest, Absent: append([]Descriptor(nil), img.Absent...)}
	kept := map[digest.Digest]bool{}
	// choice is what becomes of one child: kept (with the manifests to keep below it) or not.
	type choice struct {
		c           *Manifest
		below       []*Manifest
		belowAbsent []Descriptor
		match       bool
	}
	// walk returns the manifests of m to keep and the descriptors of m's children left out; an
	// index left out whole is one absent descriptor, not its children too. Images and indexes
	// are chosen first, then the attestations of the images kept, each in index order.
	var walk func(m *Manifest, depth int) (keep []*Manifest, absent []Descriptor)
	walk = func(m *Manifest, depth int) (keep []*Manifest, absent []Descriptor) {
		choices := make([]*choice, len(m.Manifests))
		for i, d := range m.Manifests {
			c := img.child(d.Digest)
			if c == nil || kept[c.Digest] || IsAttestation(d) {
				continue // already absent, kept through another index, or an attestation
			}
			ch := &choice{c: c}
			if c.IsIndex() {
				if depth < MaxIndexDepth {
					ch.below, ch.belowAbsent = walk(c, depth+1)
				}
				ch.match = len(ch.below) > 0
			} else if isImageChild(d) {
				for _, p := range ps {
					ch.match = ch.match || p.Matches(d.Platform)
				}
			}
			kept[c.Digest] = ch.match
			choices[i] = ch
		}
		for i, d := range m.Manifests {
			ch := choices[i]
			if ch == nil {
				c := img.child(d.Digest)
				if c == nil || kept[c.Digest] || !IsAttestation(d) {
					continue
				}
				subject, _ := AttestationSubject(d)
				ch = &choice{c: c, match: kept[subject]}
				kept[c.Digest] = ch.match
			}
			if ch.match {
				keep = append(append(keep, ch.c), ch.below...)
				absent = append(absent, ch.belowAbsent...)
			} else {
				absent = append(absent, d)
			}
		}
		return keep, absent
	}
	var absent []Descriptor
	out.Children, absent = walk(img.Manifest, 1)
	out.Absent = append(out.Absent, absent...)
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

// Outline returns img reduced to the media type, digest and subject of each of its manifests,
// without their bytes or descriptors: what referrer discovery (FindReferrers) and the
// referrers-tag filter read of an image, for a caller that keeps every image of a release
// while it reads them one at a time.
func (img *Image) Outline() *Image {
	out := &Image{Manifest: img.Manifest.outline(), Children: make([]*Manifest, len(img.Children))}
	for i, c := range img.Children {
		out.Children[i] = c.outline()
	}
	return out
}

// outline is m reduced to its media type, digest and subject (Outline, skeletonOf).
func (m *Manifest) outline() *Manifest {
	return &Manifest{MediaType: m.MediaType, Digest: m.Digest, Subject: m.Subject}
}
