// Package listview prints what `bale list` shows: text tables fitted to a terminal (or whole on
// a pipe), the tables of a list member printed as its rows come, the --json document, and the
// summary lines after them. It imports nothing heavier than the archive package, so that
// package quicklist can list a bundle before the rest of bale initialises.
package listview

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/term"
)

// Ellipsis marks where a cell was shortened; it is one rune and one column wide.
const Ellipsis = "…"

// columnGap is the number of spaces between two columns of a text table.
const columnGap = 2

// Column describes one column of a text table printed by writeTable.
type Column struct {
	// Header is the column's title, printed on the first line.
	Header string
	// Min is the narrowest (in runes) the column may be shrunk to; the header is never
	// shortened, so a column is never narrower than its header either.
	Min int
	// Shorten returns s cut to at most width runes, marked with the Ellipsis; nil keeps every
	// cell of the column whole (SIZE, TYPE).
	Shorten func(s string, width int) string
}

// shortenEnd keeps the head of s: "kubesphere/ks-con…".
func shortenEnd(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width < 1 {
		return ""
	}
	return string(r[:width-1]) + Ellipsis
}

// shortenMiddle keeps the head and the tail of s: "v3.1.0-2024…-linux-arm64". Repository
// names keep their namespace and their last element, tags their version and their suffix.
func shortenMiddle(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width < 1 {
		return ""
	}
	tail := (width - 1) / 2
	head := width - 1 - tail
	return string(r[:head]) + Ellipsis + string(r[len(r)-tail:])
}

// runeWidth is the number of columns s takes: one per rune (repository names, tags, digests
// and platforms are ASCII; the ellipsis is one column).
func runeWidth(s string) int { return utf8.RuneCountInString(s) }

// columnWidths returns the width of each column: its widest cell, the header included.
func columnWidths(cols []Column, rows [][]string) []int {
	w := make([]int, len(cols))
	for i, c := range cols {
		w[i] = runeWidth(c.Header)
	}
	for _, row := range rows {
		for i := 0; i < len(row) && i < len(cols); i++ {
			w[i] = max(w[i], runeWidth(row[i]))
		}
	}
	return w
}

// tableWidth is how wide the widest line of a table with these column widths is.
func tableWidth(widths []int) int {
	total := 0
	for i, w := range widths {
		if i > 0 {
			total += columnGap
		}
		total += w
	}
	return total
}

// fitColumns shortens the cells of rows so that no line of the table (header included) is
// wider than width runes, and returns the new rows (rows itself is not changed): fitWidths of
// the columns' widths, then shortenCell of every cell. width <= 0 keeps every cell whole.
func fitColumns(cols []Column, rows [][]string, width int) [][]string {
	widths := columnWidths(cols, rows)
	if width <= 0 || tableWidth(widths) <= width {
		return rows
	}
	widths = fitWidths(cols, widths, width)
	out := make([][]string, len(rows))
	for r, row := range rows {
		out[r] = make([]string, len(row))
		for i, cell := range row {
			out[r][i] = shortenCell(cols, i, cell, widths[i])
		}
	}
	return out
}

// fitWidths returns the target width of each column of a table whose columns are widths
// wide (each its widest cell, the header included) so that no line is wider than width
// runes. Only the columns with a Shorten function shrink: the widest of them shrinks first,
// one rune at a time, never below its Min nor its header. When even that is too wide, the
// lines are as narrow as the minimums allow and no narrower. width <= 0 keeps widths.
func fitWidths(cols []Column, widths []int, width int) []int {
	widths = slices.Clone(widths)
	excess := tableWidth(widths) - width
	if width <= 0 || excess <= 0 {
		return widths
	}
	floor := make([]int, len(cols))
	for i, c := range cols {
		floor[i] = max(c.Min, runeWidth(c.Header), 1)
	}
	for ; excess > 0; excess-- {
		widest := -1
		for i, c := range cols {
			if c.Shorten != nil && widths[i] > floor[i] && (widest < 0 || widths[i] > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // every shrinkable Column is at its minimum
		}
		widths[widest]--
	}
	return widths
}

// shortenCell is cell of column i cut to target runes by the column's Shorten, or cell
// itself when it fits or the column keeps its cells whole.
func shortenCell(cols []Column, i int, cell string, target int) string {
	if i < len(cols) && cols[i].Shorten != nil && runeWidth(cell) > target {
		return cols[i].Shorten(cell, target)
	}
	return cell
}

// writeTable prints the headers of cols and rows as aligned columns, two spaces apart, with
// the cells shortened (fitColumns) so that the lines fit width; width <= 0 prints every cell
// whole. A row has one cell per column.
func writeTable(w io.Writer, cols []Column, rows [][]string, width int) error {
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.Header
	}
	// Buffered: tabwriter writes every cell on its own (a write system call each, 0.47 s of
	// the 1.5 s `bale list` of 20,000 tags took).
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 4, columnGap, ' ', 0)
	for _, row := range append([][]string{head}, fitColumns(cols, rows, width)...) {
		if _, err := fmt.Fprintln(tw, strings.Join(row, "\t")); err != nil {
			return fmt.Errorf("writing the table: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// OutputWidth is the width a table printed to w should fit: the terminal's width (its window
// size, else $COLUMNS, else 80) when w is a terminal, 0 (print everything whole, as kubectl
// and a pipe's reader expect) when it is not or wide (--wide) is set.
func OutputWidth(w io.Writer, wide bool) int {
	f, ok := w.(*os.File)
	if wide || !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
		return cols
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
