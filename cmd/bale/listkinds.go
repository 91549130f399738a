package main

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// kindOf is listing.KindOf.
func kindOf(c *catalog.Catalog, repo, tag string, d digest.Digest) (kind layout.Kind, name, version string) {
	return listing.KindOf(c, repo, tag, d)
}

// diffKindLine is the text of one tag of `bale diff` (sign "+", "-" or "~"): repo:tag for an
// image, "chart NAME VERSION (repo:tag)" or "file NAME:TAG" for the others.
func diffKindLine(sign string, t diffTag, digests string) string {
	switch t.Kind {
	case layout.KindChart:
		return fmt.Sprintf("%s chart %s %s (%s:%s) %s", sign, t.Name, t.Version, t.Repo, t.Tag, digests)
	case layout.KindFile:
		return fmt.Sprintf("%s file %s:%s %s", sign, t.Name, t.Tag, digests)
	}
	return fmt.Sprintf("%s %s:%s %s", sign, t.Repo, t.Tag, digests)
}

// diffTag is one tag of `bale diff --json`: catalog.DiffTag and what it is (kind, and a
// chart's name and version or a file's name), taken from NEW, or OLD for a removed tag.
type diffTag struct {
	catalog.DiffTag
	Kind    layout.Kind `json:"kind"`
	Name    string      `json:"name,omitempty"`
	Version string      `json:"version,omitempty"`
}

// diffTags gives each of ts its kind from c.
func diffTags(c *catalog.Catalog, ts []catalog.DiffTag, removed bool) []diffTag {
	out := make([]diffTag, 0, len(ts))
	for _, t := range ts {
		d := t.New
		if removed {
			d = t.Old
		}
		dt := diffTag{DiffTag: t}
		dt.Kind, dt.Name, dt.Version = kindOf(c, t.Repo, t.Tag, digest.Digest(d))
		out = append(out, dt)
	}
	return out
}

// kindCounts says how many of the tags in added, removed and changed are charts and files:
// "charts: 1 added, 0 removed, 0 changed; files: ..." or "" when none are.
func kindCounts(added, removed, changed []diffTag) string {
	var parts []string
	for _, k := range []layout.Kind{layout.KindChart, layout.KindFile} {
		n := func(ts []diffTag) int {
			c := 0
			for _, t := range ts {
				if t.Kind == k {
					c++
				}
			}
			return c
		}
		a, r, c := n(added), n(removed), n(changed)
		if a+r+c > 0 {
			parts = append(parts, fmt.Sprintf("%ss: %d added, %d removed, %d changed", k, a, r, c))
		}
	}
	return strings.Join(parts, "; ")
}
