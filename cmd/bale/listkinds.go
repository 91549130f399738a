package main

import (
	"fmt"
	"io"
	"slices"
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

// chartColumns and fileColumns are the columns of the CHART and FILE tables of `bale list`.
var (
	chartColumns = []column{
		{Header: "CHART", Min: 12, Shorten: shortenMiddle},
		{Header: "VERSION", Min: 8, Shorten: shortenMiddle},
		{Header: "REPOSITORY", Min: 16, Shorten: shortenMiddle},
		{Header: "DIGEST"},
		{Header: "SIZE"},
		{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
	}
	fileColumns = []column{
		{Header: "FILE", Min: 16, Shorten: shortenMiddle},
		{Header: "TAG", Min: 12, Shorten: shortenMiddle},
		{Header: "DIGEST"},
		{Header: "SIZE"},
		{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
	}
)

// writeListTables prints the text output of `bale list`: a table of the images, then one of
// the Helm charts and one of the file artifacts when there are any, a blank line between
// two tables; each without its REFERRERS column when nothing in it has referrers. width 0
// prints every cell whole. It returns the counts for the summary line: "12 images, 2
// charts, 3 files" (charts and files only when there are some).
func writeListTables(w io.Writer, all []listImage, width int) (string, error) {
	short := width > 0
	byKind := map[layout.Kind][]listImage{}
	for _, im := range all {
		byKind[im.Kind] = append(byKind[im.Kind], im)
	}
	images, charts, files := byKind[layout.KindImage], byKind[layout.KindChart], byKind[layout.KindFile]
	counts := fmt.Sprintf("%d images", len(images))
	var tables []struct {
		cols []column
		rows [][]string
		ims  []listImage
	}
	add := func(cols []column, rows [][]string, ims []listImage) {
		tables = append(tables, struct {
			cols []column
			rows [][]string
			ims  []listImage
		}{cols, rows, ims})
	}
	if len(images) > 0 || (len(charts) == 0 && len(files) == 0) {
		add(listColumns, listRows(images, short), images)
	}
	if len(charts) > 0 {
		var rows [][]string
		for _, im := range charts {
			rows = append(rows, listing.Cells(im, short))
		}
		add(chartColumns, rows, charts)
		counts += fmt.Sprintf(", %d charts", len(charts))
	}
	if len(files) > 0 {
		var rows [][]string
		for _, im := range files {
			rows = append(rows, listing.Cells(im, short))
		}
		add(fileColumns, rows, files)
		counts += fmt.Sprintf(", %d files", len(files))
	}
	for i, tb := range tables {
		cols, rows := tb.cols, tb.rows
		if !slices.ContainsFunc(tb.ims, func(im listImage) bool { return len(im.Kinds) > 0 }) {
			cols = cols[:len(cols)-1] // no REFERRERS column when nothing has any
			for j := range rows {
				rows[j] = rows[j][:len(cols)]
			}
		}
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return "", err
			}
		}
		if err := writeTable(w, cols, rows, width); err != nil {
			return "", err
		}
	}
	return counts, nil
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
