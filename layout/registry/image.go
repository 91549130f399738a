package registry

import (
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// ImageStorage is registry storage that whole images are written into, the way a registry
// stores a push: on disk (*Store) or in a bucket (layout/s3store), which share the order of
// the writes through PutImageIn and LinkImageIn.
type ImageStorage interface {
	layout.Source
	// WriteLink writes the link of spec holding d.
	WriteLink(spec PathSpec, d digest.Digest) error
	// LinkImage writes the repository links of img in repo (LinkImageIn, and what the
	// storage needs besides).
	LinkImage(repo string, img *layout.Image) error
	// Tag points repo:tag at manifest d.
	Tag(repo, tag string, d digest.Digest) error
}

// PutImageIn stores img in ref's repository of st: every manifest and blob, with place (which
// leaves one already there alone), but a non-distributable layer src lacks; then the
// repository links; then the tag if ref has one.
func PutImageIn(st ImageStorage, ref layout.Ref, img *layout.Image, src layout.Source, place func(layout.Descriptor) error) error {
	for _, d := range img.Descriptors() {
		if layout.SkipAbsent(src, ref.Repo, d) {
			continue // a non-distributable layer the source lacks: no registry holds it either
		}
		if err := place(d); err != nil {
			return err
		}
	}
	if err := st.LinkImage(ref.Repo, img); err != nil {
		return err
	}
	if ref.Tag != "" {
		return st.Tag(ref.Repo, ref.Tag, img.Digest())
	}
	return nil
}

// LinkImageIn writes the repository links of img in repo the way the registry does on a push
// (ImageLinks without a tag: _layers links for configs and layers, revision links for every
// manifest, index children included). The blobs must already be stored.
func LinkImageIn(st ImageStorage, repo string, img *layout.Image) error {
	return writeLinks(st, ImageLinks(st, repo, "", img))
}

// TagIn points repo:tag at manifest d in st: TagLinks, the index entry first.
func TagIn(st ImageStorage, repo, tag string, d digest.Digest) error {
	return writeLinks(st, TagLinks(repo, tag, d))
}

func writeLinks(st ImageStorage, links []Link) error {
	for _, l := range links {
		if err := st.WriteLink(l.Spec, l.Target); err != nil {
			return err
		}
	}
	return nil
}

var _ ImageStorage = (*Store)(nil)
