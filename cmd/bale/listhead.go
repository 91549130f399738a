package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// listHead lists the format-5 bundle at loc from its list member (archive.OpenListHead),
// without its catalog: when it is signed or signers are required, the member is hashed and
// its signatures checked against the statement built from its header and that digest (exit 6
// with nothing printed when signers are required and none of them signed it), the volumes checked, and only then are the rows
// decoded again and printed as they come. done is false, and nothing printed, for a bundle
// the caller lists from its catalog (archive.ErrNoListHead, or a file it cannot open: the
// catalog path names the problem as it always did).
func listHead(cx *cli.Context, loc location) (done bool, err error) {
	lh, err := archive.OpenListHead(loc.Path)
	if err != nil && !errors.Is(err, archive.ErrBundle) {
		return false, nil // ErrNoListHead, or a file that cannot be read: the catalog path says why
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w", loc.Path, err)
	}
	defer lh.Close()
	h := lh.Header
	sigs, err := listHeadSignatures(cx, loc.Path, lh)
	if err != nil {
		return true, err
	}
	volumes := catalog.New()
	volumes.Meta.Volumes = h.Volumes
	if err := archive.CheckVolumes(loc.Path, volumes); err != nil {
		return true, err
	}
	out := listOutput{Location: loc.String(), ID: h.ID, Format: h.Format, Created: &h.Created, Bale: h.Bale,
		Images: []listImage{}, Blobs: h.Blobs, Bytes: h.Bytes, Bases: listing.CatalogBases(h.Bases),
		CarriedBlobs: h.CarriedBlobs, CarriedBytes: h.CarriedBytes, Removed: h.Removed, Additive: h.Additive}
	if len(sigs) > 0 {
		out.Signatures = sigs
	}
	if cx.Bool("json") {
		return true, writeListJSON(cx.App.Writer, out, lh.Rows)
	}
	width := 0
	if !cx.Bool("wide") {
		width = outputWidth(cx.App.Writer)
	}
	counts, err := writeListStream(cx.App.Writer, h, lh.Rows, width)
	if err != nil {
		return true, fmt.Errorf("%s: %w", loc.Path, err)
	}
	printListSummary(cx.App.Writer, loc, out, counts, sigs)
	return true, nil
}

// listHeadSignatures checks the signatures of the bundle at path, in it (read after its list
// member) and beside it, against the statement of its list member's header and digest: the
// same bytes bundlesig.Statement makes of its catalog.
func listHeadSignatures(cx *cli.Context, path string, lh *archive.ListHead) ([]bundlesig.Signature, error) {
	t, err := loadTrust(cx)
	if err != nil {
		return nil, err
	}
	found, err := bundlesig.FindWith(path, lh.Signatures)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 && t == nil {
		return nil, nil // unsigned, and no signer required: the member need not be hashed first
	}
	d, err := lh.Hash()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := lh.Header
	cv := bundlesig.Covers{ID: h.ID, Predicate: bundlesig.Predicate{Format: h.Format, Bases: []string{}, Volumes: []catalog.Volume{},
		List: &bundlesig.List{Digest: string(d), Size: lh.Size}}}
	for _, b := range h.Bases { // in their order (listing.HeaderOf)
		cv.Bases = append(cv.Bases, b.ID)
	}
	cv.Volumes = append(cv.Volumes, h.Volumes...)
	sigs, err := bundlesig.VerifyCovers(cv, found, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sigs, nil
}

// writeListJSON writes out as `bale list --json` does (json.Encoder, two-space indent), its
// images taken from rows one at a time.
func writeListJSON(w io.Writer, out listOutput, rows func(func(listImage) error) error) error {
	out.Images = []listImage{}
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
	err = rows(func(im listImage) error {
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
func columnsOf(k layout.Kind) []column {
	switch k {
	case layout.KindChart:
		return chartColumns
	case layout.KindFile:
		return fileColumns
	}
	return listColumns
}

// streamTable is one table of writeListStream: its kind, columns, their widths whole
// (header included) and once fitted (targets: what each cell is cut to, then the width of
// the widest cell once cut, measureCut).
type streamTable struct {
	kind    layout.Kind
	cols    []column
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
func measureCut(tables []streamTable, rows func(func(listImage) error) error, short bool) error {
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
	return rows(func(im listImage) error {
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

// writeListStream prints the tables of `bale list` as writeListTables does, from the header
// of a list member (counts and widest cells, so every column's width is known before the
// first row) and its rows, read one at a time from rows: memory does not grow with them.
func writeListStream(w io.Writer, h listing.Header, rows func(func(listImage) error) error, width int) (string, error) {
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
	err := rows(func(im listImage) error {
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
