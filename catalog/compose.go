// Composing a base and its patches into the catalog of the release they make.

package catalog

import (
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Compose returns the catalog of the release that base, then each patch in order, make: the
// composition archive.Source serves. A later catalog's tags, pins and referrers win over an
// earlier one's; a removal applies when the tag still points where the patch recorded. The
// result records only what its entries reach, with no bases and no blob expected, as a full
// pack of the release would; it is settled and its id set.
func Compose(base *Catalog, patches ...*Catalog) (*Catalog, error) {
	out := base.Clone()
	out.Bases, out.additive = nil, false
	for _, p := range patches {
		for d, m := range p.Manifests {
			if out.Manifests[d] == nil {
				nm := *m
				nm.Children, nm.Blobs, nm.Absent = slices.Clone(m.Children), slices.Clone(m.Blobs), slices.Clone(m.Absent)
				out.Manifests[d] = &nm
			}
		}
		for d, b := range p.Blobs {
			if out.Blobs[d] == nil {
				nb := *b
				out.Blobs[d] = &nb
			}
		}
		for _, name := range p.RepoNames() {
			pr, r := p.Repos[name], out.repo(name)
			for _, d := range pr.Manifests {
				r.Manifests = addSorted(r.Manifests, d)
			}
			maps.Copy(r.Tags, pr.Tags)
			for _, d := range pr.Pinned {
				if !slicesContains(r.Pinned, d) {
					r.Pinned = append(r.Pinned, d)
				}
			}
			slices.Sort(r.Pinned)
			for d, rr := range pr.Referrers {
				if r.Referrers == nil {
					r.Referrers = map[digest.Digest]*ReferrerRecord{}
				}
				nrr := *rr
				nrr.Annotations = maps.Clone(rr.Annotations)
				r.Referrers[d] = &nrr
			}
			for t, d := range pr.Removed {
				if r.Tags[t] == d {
					delete(r.Tags, t)
				}
			}
		}
	}
	out.Meta.Volumes, out.Meta.Signatures, out.Meta.List = nil, nil, nil
	for _, p := range patches {
		if p.Meta.Created.After(out.Meta.Created) {
			out.Meta.Created = p.Meta.Created
		}
	}
	out.prune()
	out.Settle()
	if err := out.Finish(); err != nil {
		return nil, fmt.Errorf("composing %s and its patches: %w", base.Meta.ID, err)
	}
	return out, nil
}

// prune keeps what the entries reach: each repository's manifests below its tags, pins and
// referrers, those manifest records and their blobs, every blob carried by the bundle itself.
func (c *Catalog) prune() {
	manifests, blobs := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		r.Removed = nil
		reach := map[digest.Digest]bool{}
		tops := slices.Collect(maps.Values(r.Tags))
		tops = append(tops, r.Pinned...)
		tops = append(tops, slices.Collect(maps.Keys(r.Referrers))...)
		for _, d := range tops {
			for _, m := range c.ManifestClosure(d) {
				reach[m] = true
			}
		}
		var kept []digest.Digest
		for _, d := range r.Manifests {
			if reach[d] {
				kept, manifests[d] = append(kept, d), true
			}
		}
		r.Manifests = kept
		for d := range r.Referrers {
			if !reach[d] {
				delete(r.Referrers, d)
			}
		}
		if len(r.Manifests) == 0 && len(r.Tags) == 0 {
			delete(c.Repos, name)
		}
	}
	for d, m := range c.Manifests {
		if !manifests[d] {
			delete(c.Manifests, d)
			continue
		}
		blobs[d] = true
		for _, b := range m.Blobs {
			blobs[b] = true
		}
	}
	for d, b := range c.Blobs {
		if !blobs[d] {
			delete(c.Blobs, d)
		} else {
			b.Base = ""
		}
	}
}
