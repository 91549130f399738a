// Settling what depends on the whole catalog: which indexes are sparse, and the oldest format
// that holds the catalog.

package catalog

import (
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Settle sets what depends on the whole catalog from its content: every index record's Absent
// (settleAbsent) and Meta.Format. Add, AddReferrer and MarkNotCarried leave both unsettled, as
// settling walks the whole catalog and doing it after every image made building a catalog
// quadratic in its size: a builder calls Settle once after the last of them (FromSource does).
// Finish, Validate, Write and SparseIndexes settle a catalog left unsettled first (a Clone of
// it stays unsettled).
func (c *Catalog) Settle() {
	c.settleFormat()
	c.unsettled = false
}

// settle settles c if images were added since it was last settled.
func (c *Catalog) settle() {
	if c.unsettled {
		c.Settle()
	}
}

// settleFormat settles sparse indexes (settleAbsent) and sets the format (requiredFormat).
func (c *Catalog) settleFormat() {
	c.settleAbsent()
	c.Meta.Format = c.requiredFormat()
}

// requiredFormat is the one place that decides which format a settled catalog is written in:
// the oldest that holds it, so that older bales read every bundle they can. 4 for an additive
// patch (MakePatch); 3 with referrers, nested indexes or layers not carried; 2 with sparse
// indexes; else 1. Everything that needs a newer format adds its case here.
func (c *Catalog) requiredFormat() int {
	switch {
	case c.Additive():
		return formatAdditive
	case c.needsFormat3():
		return formatReferrers
	case c.hasSparse():
		return formatSparse
	default:
		return 1
	}
}

// hasSparse reports whether an index record has absent children (settleAbsent sets them).
func (c *Catalog) hasSparse() bool {
	for _, m := range c.Manifests {
		if len(m.Absent) > 0 {
			return true
		}
	}
	return false
}

// needsFormat3 reports whether c holds referrers or an index with an index child.
func (c *Catalog) needsFormat3() bool {
	for _, r := range c.Repos {
		if len(r.Referrers) > 0 {
			return true
		}
	}
	for _, b := range c.Blobs {
		if b.NotCarried {
			return true
		}
	}
	for _, m := range c.Manifests {
		for _, ch := range m.Children {
			if cm := c.Manifests[ch]; cm != nil && layout.IsIndexType(cm.MediaType) {
				return true
			}
		}
	}
	return false
}

// settleAbsent sets every index record's Absent to its children that a repository holding
// the index does not hold: what is recorded does not depend on the order images were added in.
func (c *Catalog) settleAbsent() {
	absent := map[digest.Digest]map[digest.Digest]bool{}
	for _, r := range c.Repos {
		for _, d := range r.Manifests {
			rec := c.Manifests[d]
			if rec == nil {
				continue
			}
			for _, ch := range rec.Children {
				if !slicesContains(r.Manifests, ch) {
					if absent[d] == nil {
						absent[d] = map[digest.Digest]bool{}
					}
					absent[d][ch] = true
				}
			}
		}
	}
	for d, rec := range c.Manifests {
		rec.Absent = nil
		for _, ch := range rec.Children {
			if absent[d][ch] {
				rec.Absent = append(rec.Absent, ch)
			}
		}
	}
}

// SparseIndexes counts the index records with absent children.
func (c *Catalog) SparseIndexes() int {
	c.settle()
	n := 0
	for _, m := range c.Manifests {
		if len(m.Absent) > 0 {
			n++
		}
	}
	return n
}
