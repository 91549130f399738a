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

// settleFormat settles sparse indexes (settleAbsent) and sets the format to the oldest that
// holds the catalog: 3 with referrers or nested indexes, 2 with sparse indexes, else 1.
func (c *Catalog) settleFormat() {
	sparse := c.settleAbsent()
	switch {
	case c.needsFormat3():
		c.Meta.Format = formatReferrers
	case sparse:
		c.Meta.Format = formatSparse
	default:
		c.Meta.Format = 1
	}
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
// the index does not hold, and reports whether any index is sparse: what is recorded does not
// depend on the order images were added in.
func (c *Catalog) settleAbsent() bool {
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
	sparse := false
	for d, rec := range c.Manifests {
		rec.Absent = nil
		for _, ch := range rec.Children {
			if absent[d][ch] {
				rec.Absent = append(rec.Absent, ch)
			}
		}
		sparse = sparse || len(rec.Absent) > 0
	}
	return sparse
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
