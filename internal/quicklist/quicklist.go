// Package quicklist lists an unsigned format-5 bundle before the rest of bale starts.
//
// A Go program initialises every package it links before main runs. bale links Helm's chart
// loader and engine, sigstore-go and the S3 SDK, whose initialisers (JSON schemas compiled,
// Kubernetes types registered, validators' regular expressions) take most of the 50-70 ms
// that every bale command spent before it did anything, and fault in most of the 58 MB
// binary. `bale list` of a bundle of any size needs none of them (issue #19: its first line
// within 100 ms and in 64 MB, and list of the 3 GB bundle under 50 ms).
//
// Since Go 1.21 packages are initialised in a specified order: repeatedly, the first package
// by import path whose imports are all initialised. This package imports only what listing a
// bundle's list member takes (package archive, listing, listview: zstd, bbolt, go-digest,
// distribution/reference), so it is initialised before Helm, sigstore and the SDK, and its
// init lists the bundle and exits when the command line is exactly
//
//	bale list|ls [--json] [--wide] BUNDLE
//
// (the options in any order, before or after BUNDLE), BUNDLE a file or volume set whose list
// member opens (archive.OpenListHead), and nothing asks for a signature check: no signature
// member in the bundle, no signature file beside it (archive.SignatureFiles), no site policy
// (BALE_POLICY unset and /etc/bale/policy.yaml absent), no profile asked for
// (BALE_CPUPROFILE, BALE_MEMPROFILE). It prints what `bale list` prints from the same code
// (listview.Head), byte for byte. In every other case, and when anything fails before the
// first byte is written, init returns and bale starts as always: the full command says what
// is wrong. BALE_QUICKLIST=0 turns it off.
//
// One difference remains: an interrupt (Ctrl-C) stops this list at once, where the full
// command, which catches it to stop between blobs, lets a list run to its end.
package quicklist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/listview"
)

// Env turns the early list off when set to 0.
const Env = "BALE_QUICKLIST"

// policyEnv and defaultPolicy are bundlesig.PolicyEnv and bundlesig.DefaultPolicy (that
// package links sigstore-go; a test keeps the two the same).
const (
	policyEnv     = "BALE_POLICY"
	defaultPolicy = "/etc/bale/policy.yaml"
)

func init() {
	if code, done := Run(os.Args, os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
}

// Run lists the bundle named by args (os.Args: "bale", "list", ...) to stdout when the
// command line and the bundle are as the package comment says, and reports done and the exit
// code; done is false, and nothing written, otherwise.
func Run(args []string, stdout, stderr io.Writer) (code int, done bool) {
	o, wide, path, ok := parseArgs(args)
	if !ok || !quiet() {
		return 0, false
	}
	restore := collectLate()
	defer func() {
		if !done {
			restore() // the full command runs with Go's settings
		}
	}()
	lh, err := archive.OpenListHead(path)
	if err != nil {
		return 0, false
	}
	defer lh.Close()
	if len(lh.Signatures) > 0 {
		return 0, false
	}
	if beside, err := archive.SignatureFiles(path); err != nil || len(beside) > 0 {
		return 0, false
	}
	o.Width = listview.OutputWidth(stdout, wide)
	w := &counter{w: stdout}
	err = listview.Head(w, "bundle:"+path, path, lh, o)
	switch {
	case err == nil:
		return 0, true
	case w.n == 0:
		return 0, false // nothing written: the full command says what is wrong
	}
	fmt.Fprintf(stderr, "bale: %v\n", err)
	if archive.Damaged(err) {
		return 4, true // bale's exitInvalid
	}
	return 1, true // exitError
}

// parseArgs reads `bale list|ls [--json] [--wide] BUNDLE`: ok is false for any other
// command line.
func parseArgs(args []string) (o listview.Options, wide bool, path string, ok bool) {
	if len(args) < 3 || (args[1] != "list" && args[1] != "ls") {
		return o, false, "", false
	}
	for _, a := range args[2:] {
		switch {
		case a == "--json" || a == "-json":
			o.JSON = true
		case a == "--wide" || a == "-wide":
			wide = true
		case strings.HasPrefix(a, "-") || path != "" || a == "":
			return o, false, "", false // another option, "-", "--", or a second argument
		default:
			path = a
		}
	}
	// A location with a transport (registry:, s3://, docker://, ...) is not a bundle file.
	if path == "" || strings.Contains(path, ":") {
		return o, false, "", false
	}
	return o, wide, path, true
}

// quiet reports whether nothing in the environment changes what list does: the early list
// is not turned off, no site policy requires signers, no profile is asked for.
func quiet() bool {
	if os.Getenv(Env) == "0" {
		return false
	}
	for _, e := range []string{policyEnv, "BALE_CPUPROFILE", "BALE_MEMPROFILE"} {
		if _, set := os.LookupEnv(e); set {
			return false
		}
	}
	_, err := os.Lstat(defaultPolicy)
	return errors.Is(err, fs.ErrNotExist)
}

// listHeap is the heap at which the garbage collector first runs while a bundle is listed
// early: a list holds one row at a time and its zstd decoder's buffers (2-3 MB live), so most
// lists end before it would collect; Go's default would collect once at 4 MB, 3-4 ms of a
// 40 ms list on this 2-core VM (docs/performance.md), and a long one still collects.
const listHeap = 16 << 20

// collectLate makes the collector wait for listHeap (a memory limit with the percentage
// off) unless GOGC or GOMEMLIMIT is set, and returns what puts the settings back for the
// full command.
func collectLate() (restore func()) {
	for _, e := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, set := os.LookupEnv(e); set {
			return func() {}
		}
	}
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(listHeap)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
