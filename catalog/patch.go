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
	// Manifests the site holds in each repository (revision links), repo -> digest.
	Manifests map[string]map[digest.Digest]bool
	// Pins are the pinned images and the referrers the site records, repo -> digest: the
	// entries named by digest.
	Pins map[string]map[digest.Digest]bool
	// Bases are the bundles involved, in order, each once.
	Bases []Base
}

// View computes the SiteView of bases applied in order. A blob a base expects from its own
// base is credited to the bundle that carries it.
func View(bases []NamedCatalog) *SiteView {
	v := &SiteView{Carrier: map[digest.Digest]string{}, Size: map[digest.Digest]int64{}, Tags: map[string]map[string]digest.Digest{},
		Manifests: map[string]map[digest.Digest]bool{}, Pins: map[string]map[digest.Digest]bool{}}
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
		for name, r := range c.Repos {
			add := func(m map[string]map[digest.Digest]bool, d digest.Digest) {
				if m[name] == nil {
					m[name] = map[digest.Digest]bool{}
				}
				m[name][d] = true
			}
			for _, d := range r.Manifests {
				add(v.Manifests, d)
			}
			for _, d := range r.Pinned {
				add(v.Pins, d)
			}
			for d := range r.Referrers {
				add(v.Pins, d)
			}
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

// MakePatch turns c into an additive patch (format 4) against what view holds: every blob the
// site already has (same digest and size) is marked as expected from the bundle that carries
// it, and the bases are recorded. With removeAbsent, every tag the site has that c does not is
// recorded as removed (only if it still points where the site has it). Then c keeps only what
// it adds to the site (keepAdded). Call Finish afterwards.
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
	c.keepAdded(view)
}

// keepAdded drops from c what the site already holds, leaving the records of an additive
// patch: the tags the site lacks or has pointing elsewhere, the pins and referrers it lacks,
// and any entry whose manifests the site does not all hold in that repository (an index with
// more platforms than the site's copy of it); the manifests reachable from those, their blob
// records; the removals. A tag the site holds with the same target is not recorded.
func (c *Catalog) keepAdded(view *SiteView) {
	held := func(repo string, d digest.Digest) bool {
		for _, m := range c.ManifestClosure(d) {
			if !view.Manifests[repo][m] {
				return false
			}
		}
		return true
	}
	manifests := map[digest.Digest]bool{}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		keep := map[digest.Digest]bool{}
		for t, d := range r.Tags {
			if view.Tags[name][t] == d && held(name, d) {
				delete(r.Tags, t)
			} else {
				keep[d] = true
			}
		}
		var pinned []digest.Digest
		for _, d := range r.Pinned {
			if !view.Pins[name][d] || !held(name, d) {
				pinned = append(pinned, d)
				keep[d] = true
			}
		}
		r.Pinned = pinned
		for d := range r.Referrers {
			if !view.Pins[name][d] || !held(name, d) {
				keep[d] = true
			}
		}
		inRepo := map[digest.Digest]bool{}
		for d := range keep {
			for _, m := range c.ManifestClosure(d) {
				inRepo[m] = true
			}
		}
		var kept []digest.Digest
		for _, d := range r.Manifests {
			if inRepo[d] {
				kept = append(kept, d)
				manifests[d] = true
			}
		}
		r.Manifests = kept
		for d := range r.Referrers {
			if !inRepo[d] {
				delete(r.Referrers, d)
			}
		}
		if len(r.Manifests) == 0 && len(r.Removed) == 0 {
			delete(c.Repos, name)
		}
	}
	blobs := map[digest.Digest]bool{}
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
	for d := range c.Blobs {
		if !blobs[d] {
			delete(c.Blobs, d)
		}
	}
	c.additive = true
	c.unsettled = true // the format is now 4
}

// CheckBases checks that bases, in the order given, can be composed: a base that is an
// additive patch records only what it adds to its own bases, so each of those must come
// before it (as a bundle or catalog of that id, or as a base of one).
func CheckBases(bases []NamedCatalog) error {
	seen := map[string]bool{}
	for _, nc := range bases {
		c := nc.Catalog
		if c.Additive() {
			for _, b := range c.Bases {
				if !seen[b.ID] {
					return fmt.Errorf("base %s is a patch of %s (%s), which is not given before it: give every bundle of the chain as a base, in order: %w",
						nc.Name, b.Name, b.ID, ErrNotFound)
				}
			}
		}
		for _, b := range c.Bases {
			seen[b.ID] = true
		}
		seen[c.Meta.ID] = true
	}
	return nil
}
