package ocidir

import (
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

var _ layout.ReferrerLister = (*Layout)(nil)

// Referrers returns the manifests of index.json whose subject is d and whose ref name places
// them in repo ("<repo>@sha256:<hex>", as bale writes a referrer, or "<repo>:<tag>"), or that
// have no ref name (an image layout holds one image's referrers untagged, as the OCI image
// layout spec lets it), each read and parsed for its subject.
func (l *Layout) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	var out []layout.Descriptor
	seen := map[digest.Digest]bool{}
	for _, desc := range l.index.Manifests {
		if !layout.IsManifestType(desc.MediaType) || seen[desc.Digest] {
			continue
		}
		if r, ok, err := l.refOf(desc); ok && (err != nil || r.Repo != repo) {
			continue
		}
		m, err := l.ReadManifest(repo, desc.Digest)
		if err != nil || m.Subject == nil || m.Subject.Digest != d {
			continue // not a referrer of d (or unreadable: the image itself reports that if asked for)
		}
		seen[desc.Digest] = true
		out = append(out, m.ReferrerDescriptor())
	}
	slices.SortFunc(out, func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}
