package layout

import (
	"context"
	"errors"
	"fmt"
	"github.com/opencontainers/go-digest"
	"strings"
)

// Sink is a layout whole images are written to.
type Sink interface {
	// PutImage writes img under ref (a tag, or a digest for an untagged image), taking its
	// manifests and blobs from src. Content comes before the tag; an existing tag is replaced.
	PutImage(ref Ref, img *Image, src Source) error
}

// Remover is a Sink that can remove an image it holds.
type Remover interface {
	// RemoveImage removes ref if it still names manifest d, and reports whether it did.
	RemoveImage(ref Ref, d digest.Digest) (bool, error)
}

// CopyImages copies refs from src to dst, loading each image from src. Every failure is
// reported, not only the first; a cancelled ctx stops it between images.
func CopyImages(ctx context.Context, src Source, dst Sink, refs []Ref) error {
	var errs []error
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		d, err := src.Resolve(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		img, err := LoadImage(src, ref.Repo, d)
		if err == nil {
			err = dst.PutImage(ref, img, src)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

// ImageError is one image that could not be resolved or read.
type ImageError struct {
	Ref Ref
	Err error
}

// ImagesError lists every image that could not be resolved or read, not only the first.
type ImagesError struct {
	Images []ImageError
}

func (e *ImagesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d image(s) missing or unreadable:", len(e.Images))
	for _, ie := range e.Images {
		fmt.Fprintf(&b, "\n  %s: %v", ie.Ref, ie.Err)
	}
	return b.String()
}

// Unwrap returns the individual errors, so errors.Is(err, ErrNotFound) works.
func (e *ImagesError) Unwrap() []error {
	out := make([]error, len(e.Images))
	for i, ie := range e.Images {
		out[i] = ie.Err
	}
	return out
}

// ResolveImage resolves ref in src and loads its image; with a platform, an index is reduced
// to that platform's manifest (original digest), as skopeo's --override-os/--override-arch do.
func ResolveImage(src Source, ref Ref, platform *Platform) (*Image, error) {
	d, err := src.Resolve(ref)
	if err != nil {
		return nil, err
	}
	img, err := LoadImage(src, ref.Repo, d)
	if err != nil {
		return nil, err
	}
	if platform != nil {
		return img.SelectPlatform(*platform)
	}
	return img, nil
}

// Resolved is one image ready to copy.
type Resolved struct {
	Ref   Ref
	Image *Image
}

// ResolveImages resolves every ref in src (every image of src when refs is empty); all the
// images that are missing or unreadable are reported together in one *ImagesError.
func ResolveImages(src Source, refs []Ref, platform *Platform) ([]Resolved, error) {
	if len(refs) == 0 {
		all, err := src.Refs()
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("the source holds no images: %w", ErrNotFound)
		}
		refs = all
	}
	var (
		out []Resolved
		bad []ImageError
	)
	for _, ref := range refs {
		img, err := ResolveImage(src, ref, platform)
		if err != nil {
			bad = append(bad, ImageError{Ref: ref, Err: err})
			continue
		}
		out = append(out, Resolved{Ref: ref, Image: img})
	}
	if len(bad) > 0 {
		return nil, &ImagesError{Images: bad}
	}
	return out, nil
}

// Copy resolves every ref first (reporting all missing images, writing nothing if any is),
// then writes each image into dst. A cancelled ctx stops it between images.
func Copy(ctx context.Context, src Source, dst Sink, refs []Ref, platform *Platform) (int, error) {
	images, err := ResolveImages(src, refs, platform)
	if err != nil {
		return 0, err
	}
	for i, r := range images {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if err := dst.PutImage(r.Ref, r.Image, src); err != nil {
			return i, fmt.Errorf("%s: %w", r.Ref, err)
		}
	}
	return len(images), nil
}
