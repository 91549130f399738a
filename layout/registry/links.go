package registry

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// The link rules of registry storage, written once: what Distribution writes on a push and
// needs to serve it (formats.md §1.3, §1.4). LinkImageIn writes them, CheckLinks and
// CheckTags check them, and archive.Links lists them for a bundle.

// Link is one link file registry storage needs and the digest it must hold.
type Link struct {
	Spec   PathSpec
	Target digest.Digest
}

// LayerLinks are the _layers links of blobs (configs and layers) in repo: the registry
// serves a blob through /v2/<repo>/blobs/ only with one (404 BLOB_UNKNOWN without).
func LayerLinks(repo string, blobs []digest.Digest) []Link {
	out := make([]Link, 0, len(blobs))
	for _, d := range blobs {
		out = append(out, Link{LayerLink{Repo: repo, Digest: d}, d})
	}
	return out
}

// RevisionLinks are the revision links of manifests in repo, index children included: a
// manifest is served through /v2/<repo>/manifests/ only with one (Distribution v3; 2.8 also
// takes a _layers link, which a push never writes for a manifest).
func RevisionLinks(repo string, manifests []digest.Digest) []Link {
	out := make([]Link, 0, len(manifests))
	for _, d := range manifests {
		out = append(out, Link{RevisionLink{Repo: repo, Digest: d}, d})
	}
	return out
}

// TagLinks are the links of repo:tag pointing at manifest d, in the order the registry's
// tagStore.Tag writes them: the tag's index entry (which DELETE and garbage collection read),
// then its current link (which GET reads: 404 MANIFEST_UNKNOWN without).
func TagLinks(repo, tag string, d digest.Digest) []Link {
	return []Link{{TagIndex{Repo: repo, Tag: tag, Digest: d}, d}, {TagCurrent{Repo: repo, Tag: tag}, d}}
}

// ImageLinks are the links registry storage st needs to serve img from repo, and as
// repo:tag unless tag is "": a _layers link for every config and layer but a
// non-distributable layer st does not hold (layout.SkipAbsent: a registry never received it
// either), a revision link for every manifest of img (index children that are present
// included), then the tag's links.
func ImageLinks(st layout.Source, repo, tag string, img *layout.Image) []Link {
	var blobs, manifests []digest.Digest
	for _, b := range img.Blobs() {
		if !layout.SkipAbsent(st, repo, b) {
			blobs = append(blobs, b.Digest)
		}
	}
	for _, m := range img.Manifests() {
		manifests = append(manifests, m.Digest)
	}
	out := append(LayerLinks(repo, blobs), RevisionLinks(repo, manifests)...)
	if tag != "" {
		out = append(out, TagLinks(repo, tag, img.Digest())...)
	}
	return out
}

// ServedStorage is registry storage as a registry serves it: its links read and its tags
// listed as the registry lists them, on disk (*Store) or in a bucket (layout/s3store).
type ServedStorage interface {
	layout.Source
	// ReadLink returns the digest the link of spec holds: ErrNotFound if it is absent,
	// ErrInvalid if it is not a digest or not the one its path names.
	ReadLink(spec PathSpec) (digest.Digest, error)
	// Repos lists every repository.
	Repos() ([]string, error)
	// ListedTags lists the tags the registry lists for repo (GET /v2/<repo>/tags/list): every
	// tag with a directory or an object under _manifests/tags/, with a current link or not.
	ListedTags(repo string) ([]string, error)
	// StatBlob reports whether blob d is stored with its size.
	StatBlob(d layout.Descriptor) bool
	// ReadBlobManifest reads blob d as a manifest, whichever repository links it.
	ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error)
}

// CheckLinks reports every link of ImageLinks(st, repo, tag, img) that is missing or holds
// another digest than it must, and every child of an index that st stores for repo (its
// manifest blob and the _layers links of its blobs are there) but that has no revision link
// (which LoadImage took for an absent platform of a sparse index). Each error names the link
// and what the registry does without it; ErrNotFound or ErrInvalid.
func CheckLinks(st ServedStorage, repo, tag string, img *layout.Image) []error {
	var errs []error
	for _, l := range ImageLinks(st, repo, tag, img) {
		if err := checkLink(st, l); err != nil {
			errs = append(errs, err)
		}
	}
	for _, cd := range img.Absent {
		if childStored(st, repo, cd) {
			p, _ := PathFor(RevisionLink{Repo: repo, Digest: cd.Digest})
			errs = append(errs, fmt.Errorf("%s: no revision link for manifest %s, a child of %s stored with its blobs (%s): %w",
				p, cd.Digest, img.Digest(), consequence(RevisionLink{}), layout.ErrNotFound))
		}
	}
	return errs
}

// checkLink checks that the link of l holds l.Target.
func checkLink(st ServedStorage, l Link) error {
	p, err := PathFor(l.Spec)
	if err != nil {
		return err
	}
	got, err := st.ReadLink(l.Spec)
	switch {
	case errors.Is(err, layout.ErrNotFound):
		return fmt.Errorf("%s: no %s (%s): %w", p, linkKind(l.Spec, l.Target), consequence(l.Spec), layout.ErrNotFound)
	case err != nil:
		return fmt.Errorf("bad %s (the registry follows a link to the digest it holds, or fails on one that is none): %w", linkKind(l.Spec, l.Target), err)
	case got != l.Target:
		return fmt.Errorf("%s holds %s, not %s (%s): %w", p, got, l.Target, linkKind(l.Spec, l.Target), layout.ErrInvalid)
	}
	return nil
}

// linkKind names the link of spec for a message.
func linkKind(spec PathSpec, d digest.Digest) string {
	switch s := spec.(type) {
	case LayerLink:
		return "_layers link for blob " + d.String()
	case RevisionLink:
		return "revision link for manifest " + d.String()
	case TagIndex:
		return fmt.Sprintf("index link of tag %s for %s", s.Tag, d)
	case TagCurrent:
		return fmt.Sprintf("current link of tag %s (to %s)", s.Tag, d)
	}
	return fmt.Sprintf("%T", spec)
}

// consequence says what Distribution does when the link of spec is missing or wrong.
func consequence(spec PathSpec) string {
	switch spec.(type) {
	case LayerLink:
		return "the registry answers 404 BLOB_UNKNOWN for the blob"
	case RevisionLink:
		return "the registry answers 404 MANIFEST_UNKNOWN for the manifest"
	case TagIndex:
		return "the registry's DELETE and garbage collection --delete-untagged read the tag's history from it"
	case TagCurrent:
		return "the registry lists the tag and answers 404 MANIFEST_UNKNOWN for it"
	}
	return ""
}

// childStored reports whether child cd of an index is stored for repo although it has no
// revision link: its manifest blob is there and every config and layer of it has its
// _layers link in repo (a platform left out of a sparse index has neither).
func childStored(st ServedStorage, repo string, cd layout.Descriptor) bool {
	if !st.StatBlob(cd) {
		return false
	}
	m, err := st.ReadBlobManifest(cd)
	if err != nil || len(m.Blobs()) == 0 {
		return false
	}
	for _, b := range m.Blobs() {
		if layout.SkipAbsent(st, repo, b) {
			continue
		}
		if got, err := st.ReadLink(LayerLink{Repo: repo, Digest: b.Digest}); err != nil || got != b.Digest {
			return false
		}
	}
	return true
}

// CheckTags checks every tag the registry lists in every repository of st: a tag without a
// current link (the registry lists it and answers 404 for it) or with one that is not a
// digest is reported; for every other tag whose image loads, CheckLinks. An image that does
// not load is left to the caller, which reads every tag (catalog.VerifySource).
func CheckTags(st ServedStorage) []error {
	repos, err := st.Repos()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, repo := range repos {
		if layout.ValidateRepo(repo) != nil {
			continue
		}
		tags, err := st.ListedTags(repo)
		if err != nil {
			errs = append(errs, fmt.Errorf("repository %s: listing tags: %w", repo, err))
			continue
		}
		for _, tag := range tags {
			cur := TagCurrent{Repo: repo, Tag: tag}
			d, err := st.ReadLink(cur)
			if errors.Is(err, layout.ErrNotFound) {
				p, _ := PathFor(cur)
				errs = append(errs, fmt.Errorf("tag %s:%s: %s: no current link (%s): %w", repo, tag, p, consequence(cur), layout.ErrNotFound))
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("tag %s:%s: bad current link (%s): %w", repo, tag, consequence(cur), err))
				continue
			}
			img, err := layout.LoadImage(st, repo, d)
			if err != nil {
				continue // reported by whoever reads the tag
			}
			errs = append(errs, CheckLinks(st, repo, tag, img)...)
		}
	}
	return errs
}
