package s3store

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// A bucket keeps referrers as registry storage on disk does (layout/registry/referrers.go,
// whose helpers this uses): a revision link in the subject's repository, plus cosign's tags
// and the referrers tag schema's sha256-<hex>, an OCI index of the subject's referrers.

var (
	_ layout.ReferrerLister = (*Store)(nil)
	_ layout.ReferrerTagger = (*Store)(nil)
)

// Referrers returns the manifests of repo whose subject is d: the repository's revisions are
// listed and read once (then kept) and parsed for their subject.
func (s *Store) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	return s.subjects.Referrers(repo, d, func() (registry.SubjectIndex, error) {
		var revs []digest.Digest
		err := s.listSpecs(registry.RevisionsDir{Repo: repo}, func(spec registry.PathSpec) {
			if r, ok := spec.(registry.RevisionLink); ok && r.Repo == repo {
				revs = append(revs, r.Digest)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("listing the revisions of %s: %w", repo, err)
		}
		return registry.IndexSubjects(revs, func(d digest.Digest) (*layout.Manifest, error) { return s.ReadManifest(repo, d) }), nil
	})
}

// TagReferrers points repo's tag sha256-<hex> (the referrers tag schema) at an index listing
// refs, merged with what the tag lists already; it writes nothing when that lists them all.
// The referrer manifests must be stored already.
func (s *Store) TagReferrers(repo string, subject digest.Digest, refs []layout.Descriptor) error {
	return registry.TagReferrersIn(s, repo, subject, refs)
}
