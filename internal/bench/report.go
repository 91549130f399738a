package main

// The table the bench prints: one row per comparison, its ratio and whether the target holds.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

func okMiss(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// cell formats one side of a row: the command, its time and peak RSS.
func (b *bench) cell(r *run, na string) string {
	if r == nil {
		return na
	}
	if r.err != nil {
		return fmt.Sprintf("`%s`: FAILED (%v)", b.show(r), r.err)
	}
	return fmt.Sprintf("`%s`: %.3f s, max RSS %.0f MiB", b.show(r), r.secs, float64(r.rssKB)/1024)
}

// ratioRow adds the row comparing bale run br (nil: not run, na says why) with reference rr.
func (b *bench) ratioRow(name string, br *run, na string, rr *run, target float64, checks []error) {
	r := row{name: name, bale: b.cell(br, na), ref: b.cell(rr, "n/a"), ratio: "–", target: fmt.Sprintf("≤ %.2f", target), result: "n/a"}
	switch {
	case br == nil:
	case !br.ok():
		r.result = "FAIL"
		b.failed = true
	case !rr.ok():
		r.result = "n/a (reference failed)"
	default:
		ratio := br.secs / rr.secs
		r.ratio = fmt.Sprintf("%.3f", ratio)
		switch {
		case ratio < 0.1:
			r.ratio += fmt.Sprintf(" (%.0fx faster)", 1/ratio)
		case ratio < 1:
			r.ratio += fmt.Sprintf(" (%.2fx faster)", 1/ratio)
		}
		r.result = okMiss(ratio <= target)
	}
	if err := errors.Join(checks...); err != nil {
		r.result += " (check FAILED)"
		b.failed = true
		b.note("check FAILED: %v", err)
	}
	b.rows = append(b.rows, r)
}

// rssRow adds the peak-memory row of a bale run.
func (b *bench) rssRow(name string, br *run) {
	r := row{name: name, bale: "n/a", ref: "–", ratio: "–", target: fmt.Sprintf("< %d MiB", rssTargetKB>>10), result: "n/a"}
	if br.ok() {
		r.bale = fmt.Sprintf("%.1f MiB", float64(br.rssKB)/1024)
		r.result = okMiss(br.rssKB < rssTargetKB)
	}
	b.rows = append(b.rows, r)
}

// report prints the header, the table and the notes as Markdown.
func (b *bench) report() {
	fmt.Printf("## bale bench, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("Command: `go run ./internal/bench %s` (what `make bench BENCHFLAGS=...` runs)\n\n", strings.Join(os.Args[1:], " "))
	for _, l := range machine(b.bale, b.work) {
		fmt.Printf("- %s\n", l)
	}
	fmt.Println()
	for _, l := range b.header {
		fmt.Println(l)
	}
	fmt.Printf("\nPaths (under WORK): %s. One run each, warm cache (sync, inputs read once); "+
		"ratio = bale time / reference time; %s. The reference of unpack-to-dir is the run that made TREE.\n\n",
		strings.Join(b.legend, ", "), rssSource())
	fmt.Println("| name | bale | reference | ratio | target | result |")
	fmt.Println("|---|---|---|---|---|---|")
	cell := strings.NewReplacer("|", `\|`).Replace // a pipe inside a cell would end it
	for _, r := range b.rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.name, cell(r.bale), cell(r.ref), r.ratio, r.target, r.result)
	}
	fmt.Println()
	for _, n := range b.notes {
		fmt.Printf("- %s\n", n)
	}
	fmt.Printf("- disk: peak use of WORK %s (hard links counted once)\n", mib(b.peak))
	if len(b.limits) > 0 {
		fmt.Printf("\nPhysical limits (one run each, in WORK):\n\n| what | MB/s |\n|---|---|\n")
		for _, l := range b.limits {
			fmt.Printf("| %s | %.0f |\n", l.what, l.mbs)
		}
	}
}
