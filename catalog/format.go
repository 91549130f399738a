// Settling what depends on the whole catalog: which indexes are sparse, and the format.

package catalog

import (
	"github.com/opencontainers/go-digest"
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

// settleFormat settles sparse indexes (settleAbsent) and sets the format: every catalog bale
// builds is format 4, whatever it holds (sparse indexes, referrers, nested indexes); the bundle
// writer makes it format 5.
func (c *Catalog) settleFormat() {
	c.settleAbsent()
	c.Meta.Format = FormatCatalog
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
