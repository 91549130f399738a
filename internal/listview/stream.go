package listview

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// writeJSON writes out as `bale list --json` does (json.Encoder, two-space indent), its
// images taken from rows one at a time.
func writeJSON(w io.Writer, out listing.Output, rows func(func(listing.Image) error) error) error {
	out.Images = []listing.Image{}
	doc, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	const empty = "\n  \"images\": [],\n"
	i := bytes.Index(doc, []byte(empty))
	if i < 0 {
		return fmt.Errorf("list output without its images")
	}
	bw := bufio.NewWriter(w)
	bw.Write(doc[:i])
	bw.WriteString("\n  \"images\": [")
	n := 0
	err = rows(func(im listing.Image) error {
		b, err := json.MarshalIndent(im, "    ", "  ")
		if err != nil {
			return err
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(b)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("],\n")
	bw.Write(doc[i+len(empty):])
	bw.WriteByte('\n')
	return bw.Flush()
}

// columnsOf are the columns of the table of kind k.
func columnsOf(k layout.Kind) []Column {
	switch k {
	case layout.KindChart:
		return chartColumns
	case layout.KindFile:
		return fileColumns
	}
	return listColumns
}

// streamTable is one table of writeStream: its kind, columns, their widths whole
// (header included) and once fitted (targets: what each cell is cut to, then the width of
// the widest cell once cut, measureCut).
type streamTable struct {
	kind    layout.Kind
	cols    []Column
	widths  []int
	targets []int
	padTo   []int
}

// cut reports whether a column of tb is cut to fit.
func (tb streamTable) cut() bool { return !slices.Equal(tb.widths, tb.targets) }

// pad is the width column i is padded to.
func (tb streamTable) pad(i int) int {
	if tb.padTo != nil {
		return tb.padTo[i]
	}
	return tb.targets[i]
}

// measureCut sets the padTo of every table with a cut column: the widest of its cells once
// cut (the header included), read from rows.
func measureCut(tables []streamTable, rows func(func(listing.Image) error) error, short bool) error {
	for i := range tables {
		tb := &tables[i]
		if !tb.cut() {
			continue
		}
		tb.padTo = make([]int, len(tb.cols))
		for j, c := range tb.cols {
			tb.padTo[j] = runeWidth(c.Header)
		}
	}
	return rows(func(im listing.Image) error {
		for i := range tables {
			tb := &tables[i]
			if tb.kind != im.Kind || tb.padTo == nil {
				continue
			}
			for j, c := range listing.Cells(im, short)[:len(tb.cols)] {
				tb.padTo[j] = max(tb.padTo[j], runeWidth(shortenCell(tb.cols, j, c, tb.targets[j])))
			}
		}
		return nil
	})
}

// writeStream prints the tables of `bale list` as WriteTables does, from the header
// of a list member (counts and widest cells, so every column's width is known before the
// first row) and its rows, read one at a time from rows: memory does not grow with them.
func writeStream(w io.Writer, h listing.Header, rows func(func(listing.Image) error) error, width int) (string, error) {
	short := width > 0
	var tables []streamTable
	for _, k := range listing.Kinds {
		if h.Counts.Of(k) == 0 && (k != layout.KindImage || h.Counts.Charts+h.Counts.Files > 0) {
			continue
		}
		cols, tw := columnsOf(k), h.Widths.Of(k)
		ws := tw.Wide
		if short {
			ws = tw.Short
		}
		if ws[len(ws)-1] == 0 {
			cols = cols[:len(cols)-1] // no REFERRERS column when nothing has any
		}
		widths := make([]int, len(cols))
		for i, c := range cols {
			widths[i] = max(runeWidth(c.Header), ws[i])
		}
		tables = append(tables, streamTable{kind: k, cols: cols, widths: widths, targets: fitWidths(cols, widths, width)})
	}
	// A column cut to fit is as wide as its widest cell once cut, which a Shorten need not
	// make exactly its target (PLATFORMS keeps a short sparse note): when any is cut, one
	// more pass over the rows measures the cut cells, as tabwriter would.
	if slices.ContainsFunc(tables, func(tb streamTable) bool { return tb.cut() }) {
		if err := measureCut(tables, rows, short); err != nil {
			return "", err
		}
	}
	counts := fmt.Sprintf("%d images", h.Counts.Images)
	if h.Counts.Charts > 0 {
		counts += fmt.Sprintf(", %d charts", h.Counts.Charts)
	}
	if h.Counts.Files > 0 {
		counts += fmt.Sprintf(", %d files", h.Counts.Files)
	}
	bw := bufio.NewWriter(w)
	line := func(tb streamTable, cells []string) {
		for i := range tb.cols {
			c := shortenCell(tb.cols, i, cells[i], tb.targets[i])
			bw.WriteString(c)
			if i < len(tb.cols)-1 {
				bw.WriteString(strings.Repeat(" ", tb.pad(i)+columnGap-runeWidth(c)))
			}
		}
		bw.WriteByte('\n')
	}
	next := 0 // tables started
	start := func() {
		if next > 0 {
			bw.WriteByte('\n')
		}
		tb := tables[next]
		head := make([]string, len(tb.cols))
		for i, c := range tb.cols {
			head[i] = c.Header
		}
		line(tb, head)
		next++
	}
	seen := map[layout.Kind]int{}
	err := rows(func(im listing.Image) error {
		for next == 0 || tables[next-1].kind != im.Kind {
			if next == len(tables) || slices.Index(listing.Kinds, tables[next].kind) > slices.Index(listing.Kinds, im.Kind) {
				return fmt.Errorf("list member: a %s row out of place: %w", im.Kind, archive.ErrBundle)
			}
			start()
		}
		seen[im.Kind]++
		line(tables[next-1], listing.Cells(im, short))
		return nil
	})
	for err == nil && next < len(tables) {
		start()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return "", err
	}
	for _, k := range listing.Kinds {
		if seen[k] != h.Counts.Of(k) {
			return "", fmt.Errorf("list member: %d %s rows, its header counts %d: %w", seen[k], k, h.Counts.Of(k), archive.ErrBundle)
		}
	}
	return counts, nil
}

// Options are how Head prints: --json, the width the tables fit (Width: 0 prints every cell
// whole, see OutputWidth), and for a signed bundle the signatures that verified (Signatures,
// listed in the --json document) and what prints them after the summary (SignatureLines).
type Options struct {
	JSON           bool
	Width          int
	Signatures     any
	SignatureLines func(io.Writer)
}

// Head prints to w what `bale list` shows of the format-5 bundle at path (named location in
// --json) from its list member lh (archive.OpenListHead), whose signatures the caller checked:
// the volumes are checked against its header first (archive.CheckVolumes), then the rows are
// printed as they come (writeStream, or writeJSON for --json), then the summary. An error
// once rows were printed wraps what stopped them (archive.ErrBundle for a damaged member).
func Head(w io.Writer, location, path string, lh *archive.ListHead, o Options) error {
	h := lh.Header
	volumes := catalog.New()
	volumes.Meta.Volumes = h.Volumes
	if err := archive.CheckVolumes(path, volumes); err != nil {
		return err
	}
	out := listing.Output{Location: location, ID: h.ID, Format: h.Format, Created: &h.Created, Bale: h.Bale,
		Images: []listing.Image{}, Blobs: h.Blobs, Bytes: h.Bytes, Bases: listing.CatalogBases(h.Bases),
		CarriedBlobs: h.CarriedBlobs, CarriedBytes: h.CarriedBytes, Removed: h.Removed, Additive: h.Additive,
		Signatures: o.Signatures}
	var counts string
	var err error
	if o.JSON {
		err = writeJSON(w, out, lh.Rows)
	} else {
		counts, err = writeStream(w, h, lh.Rows, o.Width)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if o.JSON {
		return nil
	}
	Summary(w, archiveKind, out, counts)
	if o.SignatureLines != nil {
		o.SignatureLines(w)
	}
	return nil
}

// archiveKind is how the summary line names a bundle ("bundle format 5, id ...").
const archiveKind = "bundle"
