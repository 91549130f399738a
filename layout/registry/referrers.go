package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Registry storage keeps a referrer as any other manifest: a revision link in its subject's
// repository (where a registry with the referrers API leaves it untagged), plus, for clients
// of registries without the API, the tags they look for: cosign's sha256-<hex>.sig/.att/.sbom
// and the tag schema's sha256-<hex>, an OCI index of the subject's referrers. The same holds
// in a bucket (layout/s3store), which uses the helpers here.

var (
	_ layout.ReferrerLister = (*Store)(nil)
	_ layout.ReferrerTagger = (*Store)(nil)
)

// SubjectIndex maps each subject digest to the referrers a repository holds for it, sorted by
// digest.
type SubjectIndex map[digest.Digest][]layout.Descriptor

// IndexSubjects reads each of a repository's revisions with read and indexes those that name
// a subject. A revision that does not read (its blob gone, a schema1 manifest) names no
// subject bale can carry; the image itself reports it if it is asked for.
func IndexSubjects(revisions []digest.Digest, read func(digest.Digest) (*layout.Manifest, error)) SubjectIndex {
	idx := SubjectIndex{}
	for _, d := range revisions {
		if m, err := read(d); err == nil && m.Subject != nil {
			idx[m.Subject.Digest] = append(idx[m.Subject.Digest], m.ReferrerDescriptor())
		}
	}
	for k := range idx {
		slices.SortFunc(idx[k], func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	}
	return idx
}

// SubjectCache keeps each repository's SubjectIndex once built; Drop forgets one when the
// repository gets new revisions. The zero value is ready to use.
type SubjectCache struct {
	mu sync.Mutex
	m  map[string]SubjectIndex
}

// Referrers returns the referrers of d in repo, building repo's index with build the first
// time.
func (c *SubjectCache) Referrers(repo string, d digest.Digest, build func() (SubjectIndex, error)) ([]layout.Descriptor, error) {
	c.mu.Lock()
	idx, ok := c.m[repo]
	c.mu.Unlock()
	if !ok {
		var err error
		if idx, err = build(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]SubjectIndex{}
		}
		c.m[repo] = idx
		c.mu.Unlock()
	}
	return idx[d], nil
}

// Drop forgets repo's index.
func (c *SubjectCache) Drop(repo string) {
	c.mu.Lock()
	delete(c.m, repo)
	c.mu.Unlock()
}

// Referrers returns the manifests of repo whose subject is d: every revision of the
// repository is read once (then kept) and parsed for its subject.
func (s *Store) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	return s.subjects.Referrers(repo, d, func() (SubjectIndex, error) {
		revs, err := s.revisions(repo)
		if err != nil {
			return nil, err
		}
		if s.snap != nil {
			return s.indexSubjects(repo, revs), nil
		}
		return IndexSubjects(revs, func(d digest.Digest) (*layout.Manifest, error) { return s.ReadManifest(repo, d) }), nil
	})
}

// revisions lists the manifests repo has a revision link for.
func (s *Store) revisions(repo string) ([]digest.Digest, error) {
	dir, err := s.Path(RevisionsDir{Repo: repo})
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the revisions of %s: %w", repo, err)
	}
	var revs []digest.Digest
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if e.IsDir() && layout.ValidateDigest(d) == nil && s.HasLink(RevisionLink{Repo: repo, Digest: d}) {
			revs = append(revs, d)
		}
	}
	return revs, nil
}

// LinkStorage is registry storage as the referrers tag schema writes it: on disk (*Store) or
// in a bucket.
type LinkStorage interface {
	ReadLink(spec PathSpec) (digest.Digest, error)
	ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error)
	StatBlob(d layout.Descriptor) bool
	WriteBlob(d layout.Descriptor, r io.Reader) error
	WriteLink(spec PathSpec, d digest.Digest) error
	Tag(repo, tag string, d digest.Digest) error
}

// TagReferrers points repo's tag sha256-<hex> (the referrers tag schema) at an index listing
// refs, merged with what the tag lists already; it writes nothing when that lists them all.
// The referrer manifests must be stored already.
func (s *Store) TagReferrers(repo string, subject digest.Digest, refs []layout.Descriptor) error {
	return TagReferrersIn(s, repo, subject, refs)
}

// TagReferrersIn is TagReferrers for any registry storage st: the index blob, its revision
// link, then the tag.
func TagReferrersIn(st LinkStorage, repo string, subject digest.Digest, refs []layout.Descriptor) error {
	tag := layout.ReferrersTag(subject)
	var old *layout.Manifest
	if d, err := st.ReadLink(TagCurrent{Repo: repo, Tag: tag}); err == nil {
		if m, err := st.ReadManifest(repo, d); err == nil && m.IsIndex() {
			old = m
		}
	}
	raw, changed, err := layout.ReferrersIndex(old, refs)
	if err != nil || !changed {
		return err
	}
	desc := layout.Descriptor{MediaType: layout.MediaTypeOCIIndex, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if !st.StatBlob(desc) {
		if err := st.WriteBlob(desc, bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("referrers index of %s@%s: %w", repo, subject, err)
		}
	}
	if err := st.WriteLink(RevisionLink{Repo: repo, Digest: desc.Digest}, desc.Digest); err != nil {
		return err
	}
	return st.Tag(repo, tag, desc.Digest)
}
