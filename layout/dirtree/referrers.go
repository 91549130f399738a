package dirtree

import (
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

var _ layout.ReferrerLister = (*Tree)(nil)

// Referrers returns the images of repo named by digest (<repo>@sha256:<hex>/, as bale writes
// a referrer) whose manifest's subject is d.
func (t *Tree) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	var out []layout.Descriptor
	for _, id := range t.images {
		if id.ref.Repo != repo || id.ref.Tag != "" {
			continue
		}
		m, err := t.ReadManifest(repo, id.digest)
		if err != nil || m.Subject == nil || m.Subject.Digest != d {
			continue // not a referrer of d (or unreadable: the image itself reports that if asked for)
		}
		out = append(out, m.ReferrerDescriptor())
	}
	slices.SortFunc(out, func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return slices.CompactFunc(out, func(a, b layout.Descriptor) bool { return a.Digest == b.Digest }), nil
}
