package s3store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// A bucket keeps referrers as registry storage on disk does (layout/registry/referrers.go):
// a revision link in the subject's repository, plus cosign's tags and the referrers tag
// schema's sha256-<hex>, an OCI index of the subject's referrers.

var (
	_ layout.ReferrerLister = (*Store)(nil)
	_ layout.ReferrerTagger = (*Store)(nil)
)

// subjectIndex maps each subject digest to the referrers a repository holds for it.
type subjectIndex map[digest.Digest][]layout.Descriptor

// Referrers returns the manifests of repo whose subject is d: the repository's revisions are
// listed and read once (then kept) and parsed for their subject.
func (s *Store) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	s.mu.Lock()
	idx, ok := s.subjects[repo]
	s.mu.Unlock()
	if !ok {
		var err error
		if idx, err = s.indexSubjects(repo); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.subjects == nil {
			s.subjects = map[string]subjectIndex{}
		}
		s.subjects[repo] = idx
		s.mu.Unlock()
	}
	return idx[d], nil
}

// indexSubjects reads every revision of repo and indexes those that name a subject.
func (s *Store) indexSubjects(repo string) (subjectIndex, error) {
	var revs []digest.Digest
	err := s.listSpecs(registry.RevisionsDir{Repo: repo}, func(spec registry.PathSpec) {
		if r, ok := spec.(registry.RevisionLink); ok && r.Repo == repo {
			revs = append(revs, r.Digest)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing the revisions of %s: %w", repo, err)
	}
	idx := subjectIndex{}
	for _, d := range revs {
		m, err := s.ReadManifest(repo, d)
		if err != nil {
			// A revision whose blob is gone or is not a manifest bale reads names no subject
			// bale can carry; the image itself reports it if it is asked for.
			continue
		}
		if m.Subject != nil {
			idx[m.Subject.Digest] = append(idx[m.Subject.Digest], m.ReferrerDescriptor())
		}
	}
	for k := range idx {
		slices.SortFunc(idx[k], func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	}
	return idx, nil
}

// TagReferrers points repo's tag sha256-<hex> (the referrers tag schema) at an index listing
// refs, merged with what the tag lists already; it writes nothing when that lists them all.
// The referrer manifests must be stored already.
func (s *Store) TagReferrers(repo string, subject digest.Digest, refs []layout.Descriptor) error {
	tag := layout.ReferrersTag(subject)
	var old *layout.Manifest
	if d, err := s.ReadLink(registry.TagCurrent{Repo: repo, Tag: tag}); err == nil {
		if m, err := s.ReadManifest(repo, d); err == nil && m.IsIndex() {
			old = m
		}
	}
	raw, changed, err := layout.ReferrersIndex(old, refs)
	if err != nil || !changed {
		return err
	}
	desc := layout.Descriptor{MediaType: layout.MediaTypeOCIIndex, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if !s.StatBlob(desc) {
		if err := s.WriteBlob(desc, bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("referrers index of %s@%s: %w", repo, subject, err)
		}
	}
	if err := s.WriteLink(registry.RevisionLink{Repo: repo, Digest: desc.Digest}, desc.Digest); err != nil {
		return err
	}
	return s.Tag(repo, tag, desc.Digest)
}
