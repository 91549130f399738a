package listview

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
)

// listColumns are the columns of the text output of `bale list`. REPOSITORY, TAG and
// PLATFORMS shrink to fit the terminal; DIGEST is shortened by listRows, not by the fitting.
var listColumns = []Column{
	{Header: "REPOSITORY", Min: 16, Shorten: shortenMiddle},
	{Header: "TAG", Min: 12, Shorten: shortenMiddle},
	{Header: "DIGEST"},
	{Header: "TYPE"},
	{Header: "PLATFORMS", Min: 11, Shorten: shortenPlatforms},
	{Header: "SIZE"},
	{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
}

// listRows are the cells of the text output, one row per image, in the order of
// listColumns; short shows each digest in its short form.
func listRows(images []listing.Image, short bool) [][]string {
	rows := make([][]string, 0, len(images))
	for _, im := range images {
		rows = append(rows, listing.Cells(im, short))
	}
	return rows
}

// shortenPlatforms cuts the end of a list of platforms but keeps its sparse note whole, or
// else as "(sparse 1/2)", while there is room for it.
func shortenPlatforms(s string, width int) string {
	if runeWidth(s) <= width {
		return s
	}
	list, note, ok := strings.Cut(s, " (sparse: ")
	if !ok {
		return shortenEnd(s, width)
	}
	var have, all int
	if _, err := fmt.Sscanf(note, "%d of %d platforms)", &have, &all); err == nil {
		for _, n := range []string{" (sparse: " + note, fmt.Sprintf(" (sparse %d/%d)", have, all)} {
			if room := width - runeWidth(n); room >= 2 {
				return shortenEnd(list, room) + n
			}
		}
	}
	return shortenEnd(s, width)
}

// chartColumns and fileColumns are the columns of the CHART and FILE tables of `bale list`.
var (
	chartColumns = []Column{
		{Header: "CHART", Min: 12, Shorten: shortenMiddle},
		{Header: "VERSION", Min: 8, Shorten: shortenMiddle},
		{Header: "REPOSITORY", Min: 16, Shorten: shortenMiddle},
		{Header: "DIGEST"},
		{Header: "SIZE"},
		{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
	}
	fileColumns = []Column{
		{Header: "FILE", Min: 16, Shorten: shortenMiddle},
		{Header: "TAG", Min: 12, Shorten: shortenMiddle},
		{Header: "DIGEST"},
		{Header: "SIZE"},
		{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
	}
)

// WriteTables prints the text output of `bale list`: a table of the images, then one of
// the Helm charts and one of the file artifacts when there are any, a blank line between
// two tables; each without its REFERRERS column when nothing in it has referrers. width 0
// prints every cell whole. It returns the counts for the summary line: "12 images, 2
// charts, 3 files" (charts and files only when there are some).
func WriteTables(w io.Writer, all []listing.Image, width int) (string, error) {
	short := width > 0
	byKind := map[layout.Kind][]listing.Image{}
	for _, im := range all {
		byKind[im.Kind] = append(byKind[im.Kind], im)
	}
	images, charts, files := byKind[layout.KindImage], byKind[layout.KindChart], byKind[layout.KindFile]
	counts := fmt.Sprintf("%d images", len(images))
	var tables []struct {
		cols []Column
		rows [][]string
		ims  []listing.Image
	}
	add := func(cols []Column, rows [][]string, ims []listing.Image) {
		tables = append(tables, struct {
			cols []Column
			rows [][]string
			ims  []listing.Image
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
		if !slices.ContainsFunc(tb.ims, func(im listing.Image) bool { return len(im.Kinds) > 0 }) {
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

// Summary prints the lines after the tables of `bale list` but its signatures: the counts
// (counts, from the tables), blobs and bytes, the format, id and creation of a bundle or
// catalog file (kind: "bundle" or "catalog"), a patch's bases and removed tags.
func Summary(w io.Writer, kind string, out listing.Output, counts string) {
	fmt.Fprintf(w, "%s, %d blobs, %s", counts, out.Blobs, units.Bytes(out.Bytes))
	if out.Format != 0 {
		fmt.Fprintf(w, "; %s format %d, id %s, created %s by bale %s",
			kind, out.Format, out.ID, out.Created.Format(time.RFC3339), out.Bale)
	}
	fmt.Fprintln(w)
	if len(out.Bases) > 0 {
		what := "patch:"
		if out.Additive {
			what = "patch: the images above are what it adds to or moves in its bases;"
		}
		fmt.Fprintf(w, "%s carries %d of the blobs (%s); expects the others from:\n",
			what, out.CarriedBlobs, units.Bytes(out.CarriedBytes))
		for _, b := range out.Bases {
			fmt.Fprintf(w, "  base %s  %s\n", b.ID, b.Name)
		}
		for _, r := range out.Removed {
			fmt.Fprintf(w, "  removes tag %s\n", r)
		}
	}
}
