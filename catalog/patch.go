package catalog

import (
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
)

// NamedCatalog is the catalog of a base, with the name it was given by (a path, a location).
type NamedCatalog struct {
	Name    string
	Catalog *Catalog
}

// SiteView is what a site holds after it has applied bases in order: every blob of each base
// (with the id of the bundle that carries it) and the tags as the last base left them.
type SiteView struct {
	// Carrier maps each blob the site holds to the id of the bundle that carries it.
	Carrier map[digest.Digest]string
	// Size of each blob the site holds.
	Size map[digest.Digest]int64
	// Tags the site has, repo -> tag -> digest.
	Tags map[string]map[string]digest.Digest
	// Bases are the bundles involved, in order, each once.
	Bases []Base
}

// View computes the SiteView of bases applied in order. A blob a base expects from its own
// base is credited to the bundle that carries it.
func View(bases []NamedCatalog) *SiteView {
	v := &SiteView{Carrier: map[digest.Digest]string{}, Size: map[digest.Digest]int64{}, Tags: map[string]map[string]digest.Digest{}}
	seen := map[string]bool{}
	addBase := func(id, name string) {
		if !seen[id] {
			seen[id] = true
			v.Bases = append(v.Bases, Base{ID: id, Name: name, Order: len(v.Bases)})
		}
	}
	for _, nc := range bases {
		c := nc.Catalog
		for _, b := range c.Bases {
			addBase(b.ID, fmt.Sprintf("%s (a base of %s)", b.Name, nc.Name))
		}
		addBase(c.Meta.ID, nc.Name)
		for d, b := range c.Blobs {
			if _, ok := v.Carrier[d]; ok || b.NotCarried {
				continue
			}
			carrier := c.Meta.ID
			if b.Base != "" {
				carrier = b.Base
			}
			v.Carrier[d], v.Size[d] = carrier, b.Size
		}
		for _, e := range c.Entries() {
			if e.Tag == "" {
				continue
			}
			if v.Tags[e.Repo] == nil {
				v.Tags[e.Repo] = map[string]digest.Digest{}
			}
			v.Tags[e.Repo][e.Tag] = e.Digest
		}
		for _, e := range c.Removals() {
			if v.Tags[e.Repo][e.Tag] == e.Digest {
				delete(v.Tags[e.Repo], e.Tag)
			}
		}
	}
	return v
}

// MakePatch turns c into a patch against what view holds: every blob the site already has
// (same digest and size) is marked as expected from the bundle that carries it, and the bases
// are recorded. With removeAbsent, every tag the site has that c does not is recorded as
// removed (only if it still points where the site has it). Call Finish afterwards.
func (c *Catalog) MakePatch(view *SiteView, removeAbsent bool) {
	for d, b := range c.Blobs {
		b.Base = ""
		if b.NotCarried {
			continue // no bundle carries it, the site holds it not
		}
		if carrier, ok := view.Carrier[d]; ok && view.Size[d] == b.Size {
			b.Base = carrier
		}
	}
	c.Bases = nil
	for _, b := range view.Bases {
		c.Bases = append(c.Bases, Base{ID: b.ID, Name: b.Name, Order: len(c.Bases)})
	}
	if len(c.Bases) == 0 {
		return
	}
	if removeAbsent {
		repos := make([]string, 0, len(view.Tags))
		for r := range view.Tags {
			repos = append(repos, r)
		}
		sort.Strings(repos)
		for _, repo := range repos {
			for tag, d := range view.Tags[repo] {
				if r := c.Repos[repo]; r == nil || r.Tags[tag] == "" {
					c.RemoveTag(repo, tag, d)
				}
			}
		}
	}
}
