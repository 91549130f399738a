package layout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
)

// Sink is a layout whole images are written to.
type Sink interface {
	// PutImage writes img under ref (a tag, or a digest for an untagged image), taking its
	// manifests and blobs from src. Content comes before the tag; an existing tag is replaced.
	PutImage(ref Ref, img *Image, src Source) error
}

// ConcurrentSink is a Sink whose PutImage calls for different refs may run at once: each
// image's files are its own, and files two images share are placed atomically (a hard link,
// or a temporary name and a rename) with the same content.
type ConcurrentSink interface {
	Sink
	// ConcurrentPut reports whether PutImage calls may overlap.
	ConcurrentPut() bool
}

// Checker is a layout behind a network (a live registry) that can say once, before any work,
// whether it may be read from or written to at all, rather than fail once per image.
type Checker interface {
	// Check reports whether repo may be pulled from (or pushed to, with push).
	Check(repo string, push bool) error
}

// CheckAccess asks src and dst (either may be nil), if they are Checkers, about the first
// image's repository.
func CheckAccess(src Source, dst Sink, refs []Ref) error {
	if len(refs) == 0 {
		return nil
	}
	if c, ok := src.(Checker); ok {
		if err := c.Check(refs[0].Repo, false); err != nil {
			return err
		}
	}
	if c, ok := dst.(Checker); ok {
		return c.Check(refs[0].Repo, true)
	}
	return nil
}

// putWorkers is how many PutImage calls CopyWith and CopyImages keep in flight on dst.
func putWorkers(dst Sink) int {
	if c, ok := dst.(ConcurrentSink); ok && c.ConcurrentPut() {
		return par.Workers()
	}
	return 1
}

// Remover is a Sink that can remove an image it holds.
type Remover interface {
	// RemoveImage removes ref if it still names manifest d, and reports whether it did.
	RemoveImage(ref Ref, d digest.Digest) (bool, error)
}

// CopyImages copies refs from src to dst, loading each image from src, several at once when dst
// is a ConcurrentSink. Every failure is reported, not only the first; a cancelled ctx stops it
// between images.
func CopyImages(ctx context.Context, src Source, dst Sink, refs []Ref) error {
	if err := CheckAccess(src, dst, refs); err != nil {
		return err
	}
	return par.Each(ctx, len(refs), putWorkers(dst), func(i int) error {
		ref := refs[i]
		d, err := src.Resolve(ref)
		if err != nil {
			return err
		}
		img, err := LoadImage(src, ref.Repo, d)
		if err == nil {
			err = dst.PutImage(ref, img, src)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		return nil
	})
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

// ResolveImage resolves ref in src and loads its image; with one platform, an index is reduced
// to that platform's manifest (original digest), as skopeo's --override-os/--override-arch do;
// with several, the index is kept and only their children (a sparse index, Image.ForPlatforms).
func ResolveImage(src Source, ref Ref, platforms []Platform) (*Image, error) {
	d, err := src.Resolve(ref)
	if err != nil {
		return nil, err
	}
	img, err := LoadImage(src, ref.Repo, d)
	if err != nil {
		return nil, err
	}
	return img.ForPlatforms(platforms)
}

// Resolved is one image ready to copy.
type Resolved struct {
	Ref   Ref
	Image *Image
	// Referrer marks a manifest carried by digest because it refers to a carried one (its
	// subject; FindReferrers).
	Referrer bool
}

// ResolveImages resolves every ref in src (every image of src when refs is empty); all the
// images that are missing or unreadable are reported together in one *ImagesError.
func ResolveImages(src Source, refs []Ref, platforms []Platform) ([]Resolved, error) {
	return resolveKeeping(src, refs, platforms, nil)
}

// resolveKeeping is ResolveImages keeping keep(image) of each image; nil keeps it whole.
func resolveKeeping(src Source, refs []Ref, platforms []Platform, keep func(*Image) *Image) ([]Resolved, error) {
	refs, err := refsOrAll(src, refs)
	if err != nil {
		return nil, err
	}
	// Reads only, several at once: each is a few small files.
	out := make([]Resolved, len(refs))
	errs := make([]error, len(refs))
	tops := func(i int) []digest.Digest { // a manifest brings those below it
		d, err := src.Resolve(refs[i])
		if err != nil {
			return nil // ResolveImage says why
		}
		return []digest.Digest{d}
	}
	eachAhead(context.Background(), src, len(refs), par.Workers(), tops, func(i int) error {
		out[i].Ref = refs[i]
		img, err := ResolveImage(src, refs[i], platforms)
		if err == nil && keep != nil {
			img = keep(img)
		}
		out[i].Image, errs[i] = img, err
		return nil
	})
	if err := imagesError(refs, errs); err != nil {
		return nil, err
	}
	return out, nil
}

// refsOrAll is refs, or every image of src when refs is empty.
func refsOrAll(src Source, refs []Ref) ([]Ref, error) {
	if len(refs) > 0 {
		return refs, nil
	}
	all, err := src.Refs()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("the source holds no images: %w", ErrNotFound)
	}
	return all, nil
}

// imagesError reports every ref whose err is set, in one *ImagesError; nil if none is.
func imagesError(refs []Ref, errs []error) error {
	var bad []ImageError
	for i, err := range errs {
		if err != nil {
			bad = append(bad, ImageError{Ref: refs[i], Err: err})
		}
	}
	if len(bad) > 0 {
		return &ImagesError{Images: bad}
	}
	return nil
}

// CopyOptions tune CopyWith.
type CopyOptions struct {
	// Platforms reduce multi-arch images: one, to its manifest; several, to a sparse index.
	Platforms []Platform
	// Begin, if set, is told the number of images and their bytes (each blob once) once they
	// are resolved, before anything is written.
	Begin func(images int, bytes int64)
	// Image, if set, is called as each image starts; the function it returns, when it ends.
	Image func(ref Ref, img *Image) func(error)
	// Referrers choose the referrers that travel with the images (FindReferrers).
	Referrers ReferrerOptions
	// AllTags says that refs are every tag of the source (listed by the caller): cosign and
	// referrers tags among them travel as their subjects' referrers, as when refs is empty.
	AllTags bool
}

// CopyWith resolves every ref first (reporting all missing images, writing nothing if any is),
// finds their referrers (opt.Referrers), then writes each image into dst, several at once when
// dst is a ConcurrentSink, and the referrers after their subjects; a ReferrerTagger dst then
// keeps the referrers tag schema. It returns how many images (referrers not counted) were
// written and every failure. A cancelled ctx stops it between images.
func CopyWith(ctx context.Context, src Source, dst Sink, refs []Ref, opt CopyOptions) (int, error) {
	if err := CheckAccess(src, dst, refs); err != nil {
		return 0, err
	}
	bs := &blobSizes{sizes: map[digest.Digest]sized{}}
	images, err := resolveKeeping(src, refs, opt.Platforms, bs.skeletonOf)
	if err != nil {
		return 0, err
	}
	if len(refs) == 0 { // every image of src: dst was not asked yet
		if err := CheckAccess(nil, dst, []Ref{images[0].Ref}); err != nil {
			return 0, err
		}
	}
	if len(refs) == 0 || opt.AllTags {
		images = WithoutReferrerTags(images)
	}
	// Referrers named among refs (a bundle's, pushed) go after their subjects, as found ones do.
	images, given := splitReferrers(MarkReferrers(images))
	for i := range given { // whole: the referrers index lists their descriptors
		if given[i].Image, err = whole(src, given[i], opt.Platforms); err != nil {
			return 0, fmt.Errorf("%s: %w", given[i].Ref, err)
		}
	}
	found, err := FindReferrers(src, append(slices.Clip(images), given...), opt.Referrers)
	if err != nil {
		return 0, err
	}
	found = append(given, found...)
	if opt.Begin != nil {
		opt.Begin(len(images), bs.bytes(append(slices.Clip(images), found...)))
	}
	put := func(r Resolved) error {
		img, err := whole(src, r, opt.Platforms)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Ref, err)
		}
		end := func(error) {}
		if opt.Image != nil {
			end = opt.Image(r.Ref, img)
		}
		err = dst.PutImage(r.Ref, img, src)
		end(err)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Ref, err)
		}
		return nil
	}
	var done atomic.Int64
	err = eachAhead(ctx, src, len(images), putWorkers(dst), func(i int) []digest.Digest {
		return aheadNeeds(images[i].Image)
	}, func(i int) error {
		if err := put(images[i]); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	if err != nil {
		return int(done.Load()), err
	}
	// Referrers after their subjects, in the order they were found (a signature on an SBOM
	// after the SBOM).
	for _, r := range found {
		if err := ctx.Err(); err != nil {
			return int(done.Load()), err
		}
		if err := put(r); err != nil {
			return int(done.Load()), err
		}
	}
	return int(done.Load()), TagReferrers(dst, ReferrerGroups(found))
}

// MarkReferrers sets Referrer on the images named by digest whose manifest has a subject:
// referrers a source holds untagged and lists among its images (an OCI layout, a bundle's
// stage), which travel as referrers of their subject.
func MarkReferrers(images []Resolved) []Resolved {
	for i := range images {
		if images[i].Ref.Tag == "" && images[i].Ref.Digest != "" && images[i].Image.Manifest.Subject != nil {
			images[i].Referrer = true
		}
	}
	return images
}

// splitReferrers separates the referrers from the other images, keeping their order.
func splitReferrers(images []Resolved) (others, referrers []Resolved) {
	for _, r := range images {
		if r.Referrer {
			referrers = append(referrers, r)
		} else {
			others = append(others, r)
		}
	}
	return others, referrers
}

// WithoutReferrerTags drops, from every image of a source, the cosign and referrers tags whose
// subject is another of the images: they travel as that image's referrers, or not at all
// (--no-referrers, --referrers-type).
func WithoutReferrerTags(images []Resolved) []Resolved {
	have := map[repoDigest]bool{}
	hold := func(r Resolved) {
		for _, m := range r.Image.Manifests() {
			have[repoDigest{r.Ref.Repo, m.Digest}] = true
		}
	}
	var tags []int
	for i, r := range images {
		if _, _, ok := ParseReferrerTag(r.Ref.Tag); ok {
			tags = append(tags, i)
		} else {
			hold(r)
		}
	}
	// Transitively: the signature of an SBOM a referrers tag lists belongs to the image too.
	dropped := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for _, i := range tags {
			d, _, _ := ParseReferrerTag(images[i].Ref.Tag)
			if !dropped[i] && have[repoDigest{images[i].Ref.Repo, d}] {
				dropped[i], changed = true, true
				hold(images[i])
			}
		}
	}
	out := images[:0:0]
	for i, r := range images {
		if !dropped[i] {
			out = append(out, r)
		}
	}
	return out
}
