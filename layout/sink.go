package layout

import (
	"context"
	"errors"
	"fmt"
	"github.com/opencontainers/go-digest"
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
