package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// maxConfigSize bounds the image configs read for their platform and creation time.
const maxConfigSize = 16 << 20

// BuildOptions tune FromSource.
type BuildOptions struct {
	// Platforms reduce multi-arch images: one, to its manifest; several, to a sparse index.
	Platforms []layout.Platform
	// Referrers choose the referrers that travel with the images (layout.FindReferrers).
	Referrers layout.ReferrerOptions
	// AllTags says that refs are every tag of src (listed by the caller): cosign and
	// referrers tags among them travel as their subjects' referrers, as when refs is empty.
	AllTags bool
	// KeepGoing leaves out the images that cannot be taken instead of failing: FromSource
	// then returns the catalog of the others together with the *ImagesError naming them.
	KeepGoing bool
}

// ImageError is one image FromSource could not take (layout.ImageError).
type ImageError = layout.ImageError

// ImagesError lists every image FromSource could not take (layout.ImagesError).
type ImagesError = layout.ImagesError

// FromSource resolves refs in src (every tag of src when refs is empty), finds their
// referrers, reads each image's manifests and configs, and returns the catalog of all of
// them. Created is the newest "created" time among the configs (so packing the same images
// gives the same catalog); the caller sets BaleVersion and may override Created, then calls
// Finish. Every image that is missing or unreadable is reported in one *ImagesError; with
// opt.KeepGoing the catalog of the others comes with it (nil only if no image is left).
func FromSource(src layout.Source, refs []layout.Ref, opt BuildOptions) (*Catalog, error) {
	orig := src
	if sn, ok := src.(snapshotter); ok {
		src = sn.Snapshot() // each link and manifest read once (#19)
	}
	all := len(refs) == 0 || opt.AllTags
	if len(refs) == 0 {
		var err error
		if refs, err = src.Refs(); err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("the source holds no tagged images: %w", layout.ErrNotFound)
		}
	}
	// Each image is recorded in the catalog as soon as it is read, and only its outline (the
	// digests referrer discovery reads) is kept: a release is not held as parsed manifests
	// (#19: at 20,000 tags the live heap after reading every image went from 70 to 57 MiB).
	b := &builder{c: New(), src: orig, configs: map[digest.Digest]configInfo{}}
	var (
		problems []ImageError
		images   []layout.Resolved // outlines
	)
	resolve := func(ref layout.Ref) {
		img, err := layout.ResolveImage(src, ref, opt.Platforms)
		if err == nil {
			err = readConfigs(src, ref.Repo, img, b.configs)
		}
		if err != nil {
			problems = append(problems, ImageError{Ref: ref, Err: err})
			return
		}
		b.add(layout.MarkReferrers([]layout.Resolved{{Ref: ref, Image: img}})[0])
		images = append(images, layout.Resolved{Ref: ref, Image: img.Outline()})
	}
	// Of every tag, cosign and referrers tags whose subject is an image are its referrers:
	// discovery takes them (or leaves them out), so they are not resolved as images.
	var referrerTags []layout.Ref
	for _, ref := range refs {
		if _, _, ok := layout.ParseReferrerTag(ref.Tag); ok && all {
			referrerTags = append(referrerTags, ref)
			continue
		}
		resolve(ref)
	}
	held := map[string]bool{}
	hold := func(repo string, img *layout.Image) {
		for _, m := range img.Manifests() {
			held[repo+"@"+string(m.Digest)] = true
		}
	}
	for _, r := range images {
		hold(r.Ref.Repo, r.Image)
	}
	// Transitively (a signature on an SBOM that a referrers tag lists), as
	// layout.WithoutReferrerTags decides for a copy: what it left out of a stage is skipped.
	taken := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for i, ref := range referrerTags {
			subject, _, _ := layout.ParseReferrerTag(ref.Tag)
			if taken[i] || !held[ref.Repo+"@"+string(subject)] {
				continue
			}
			taken[i], changed = true, true
			if img, err := layout.ResolveImage(src, ref, nil); err == nil {
				hold(ref.Repo, img)
			}
		}
	}
	held = nil
	for i, ref := range referrerTags {
		if taken[i] {
			continue
		}
		// Its subject is not here: an image of its own; one the source listed but no longer
		// holds (left out of a stage with its subject's referrers) is skipped.
		if _, err := src.Resolve(ref); errors.Is(err, layout.ErrNotFound) {
			continue
		}
		resolve(ref)
	}
	found, err := layout.FindReferrers(src, images, opt.Referrers)
	if err != nil {
		return nil, err
	}
	for _, r := range found {
		if err := readConfigs(src, r.Ref.Repo, r.Image, b.configs); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Ref, err)
		}
		b.add(r)
	}
	if len(problems) > 0 && (!opt.KeepGoing || len(images) == 0) {
		return nil, &ImagesError{Images: problems}
	}
	c, newest := b.c, b.newest
	c.Settle()
	if newest.IsZero() {
		newest = time.Unix(0, 0)
	}
	c.Meta.Created = newest.UTC().Truncate(time.Second)
	if len(problems) > 0 {
		return c, &ImagesError{Images: problems}
	}
	return c, nil
}

// builder records images in a catalog as FromSource reads them.
type builder struct {
	c       *Catalog
	src     layout.Source // the source itself, not a snapshot: what SkipAbsent asks
	configs map[digest.Digest]configInfo
	newest  time.Time // the newest "created" of the configs of the images recorded
}

// add records r (as a referrer when r.Referrer), with the platforms and creation times of its
// configs, which must be read, and marks the non-distributable layers the source lacks as
// recorded, not carried.
func (b *builder) add(r layout.Resolved) {
	platforms := map[digest.Digest]layout.Platform{}
	for _, m := range r.Image.Manifests() {
		if m.Config != nil {
			ci := b.configs[m.Config.Digest]
			if ci.Created.After(b.newest) {
				b.newest = ci.Created
			}
			if ci.OS != "" {
				platforms[m.Digest] = layout.Platform{OS: ci.OS, Architecture: ci.Architecture, Variant: ci.Variant}
			}
		}
	}
	if r.Referrer {
		b.c.AddReferrer(r.Ref.Repo, r.Image, platforms)
	} else {
		b.c.Add(r.Ref.Repo, r.Ref.Tag, r.Image, platforms)
	}
	for _, d := range r.Image.Blobs() {
		if layout.SkipAbsent(b.src, r.Ref.Repo, d) {
			b.c.MarkNotCarried(d.Digest)
		}
	}
}

// snapshotter is a source that offers a read view reading each link and manifest once
// (registry.Store.Snapshot): FromSource reads the whole source and writes none of it.
type snapshotter interface {
	Snapshot() layout.Source
}

// OfSource returns the catalog of every tagged image of src (and their referrers), with its
// bundle id set: what a location holds, to list, compare or make a patch against.
func OfSource(src layout.Source) (*Catalog, error) {
	c, err := FromSource(src, nil, BuildOptions{})
	if err != nil {
		return nil, err
	}
	c.Meta.ID = c.ComputeID()
	return c, nil
}

// Finish sets the bundle id from the content and validates the catalog.
func (c *Catalog) Finish() error {
	c.settle()
	c.Meta.ID = c.ComputeID()
	return c.Validate()
}

type configInfo struct {
	Created      time.Time `json:"created"`
	OS           string    `json:"os"`
	Architecture string    `json:"architecture"`
	Variant      string    `json:"variant"`
}

func readConfigs(src layout.Source, repo string, img *layout.Image, seen map[digest.Digest]configInfo) error {
	for _, m := range img.Manifests() {
		if m.Config == nil {
			continue
		}
		if _, ok := seen[m.Config.Digest]; ok {
			continue
		}
		if m.Config.Size > maxConfigSize {
			return fmt.Errorf("config %s: %d bytes: %w", m.Config.Digest, m.Config.Size, layout.ErrInvalid)
		}
		rc, err := src.OpenBlob(repo, *m.Config)
		if err != nil {
			return fmt.Errorf("config of manifest %s: %w", m.Digest, err)
		}
		b, err := io.ReadAll(layout.NewVerifier(rc, *m.Config))
		rc.Close()
		if err != nil {
			return fmt.Errorf("config of manifest %s: %w", m.Digest, err)
		}
		var ci configInfo
		// A config that is not an image config (an artifact) simply has no platform.
		if err := json.Unmarshal(b, &ci); err != nil && !errors.As(err, new(*json.UnmarshalTypeError)) {
			ci = configInfo{}
		}
		seen[m.Config.Digest] = ci
	}
	return nil
}
