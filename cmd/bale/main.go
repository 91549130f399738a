// Command bale ships container images to places the internet does not reach: it packs images
// from a registry storage directory or a skopeo dir tree into one verified bundle, and unpacks
// bundles into registry storage or skopeo dir trees on the other side.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	// `bale list BUNDLE` of an unsigned bundle runs from this package's init, before Helm,
	// sigstore and the S3 SDK initialise (see its comment).
	_ "github.com/bale-project/bale/internal/quicklist"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/imagesig"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...";
// without them the commit comes from the Go build information.
var (
	version = "0.2.0-dev"
	commit  = ""
)

// printVersion is bale --version: version, commit, Go version and platform.
func printVersion(cx *cli.Context) {
	c := commit
	if bi, ok := debug.ReadBuildInfo(); ok && c == "" {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			c = rev + dirty
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(cx.App.Writer, "bale version %s\ncommit %s\n%s %s/%s\n", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Exit codes, listed in every command's help.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
	exitInvalid  = 4
	// exitPartial: pack --keep-going wrote the bundle without some images, which it named.
	exitPartial = 5
	// exitUnsigned: a signature check failed: --image-key found images without a valid
	// signature, which it named; or a bundle's own signature did not verify, was over another
	// bundle, was by no signer given (--key, --certificate-identity), or, signers given, the
	// bundle was not signed. Nothing was written.
	exitUnsigned = 6
	// exitInterrupted is the shell's code for SIGINT.
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  error (I/O, permissions, ...)
   2  usage error
   3  images, manifests or blobs not found
   4  content failed verification, or a malformed bundle
   5  pack --keep-going: the bundle was written without the images it names
   6  a signature check failed, nothing written: --image-key: images without a valid signature
      by the keys given, named; --key, --certificate-identity (or the site policy, BALE_POLICY):
      the bundle is not signed by them, or its catalog is damaged; any bundle signature found
      that does not verify or is over another bundle
   130  interrupted (Ctrl-C, SIGTERM): stopped between blobs, temporary files removed`

func newApp() *cli.App {
	app := &cli.App{
		Name:    "bale",
		Usage:   "pack container images into one verified bundle and unpack them where the internet does not reach",
		Version: version,
		Description: `Locations are written like skopeo transports:
   registry:PATH  Docker registry v2 storage root (PATH/docker/registry/v2/...), as served by registry:2
   dir:PATH       a tree of skopeo dir: images, PATH/<repo>:<tag>/ (nested repos as folders)
   oci:PATH       an OCI image layout holding every image, tagged <repo>:<tag>
   s3://BUCKET[/ROOTDIRECTORY]
                  registry v2 storage in an S3 bucket, as Distribution's s3 driver keeps it
                  (--s3-* flags, AWS_* variables, ~/.aws files or --registry-config FILE)
   docker://HOST[:PORT][/PREFIX]
                  a live registry (Harbor, Distribution, ...): source of pack and copy,
                  destination of copy and push
   PATH           detected from what it holds (a bundle or catalog file, registry storage,
                  an OCI layout, or a dir tree)`,
		Commands:             withS3Flags([]*cli.Command{packCommand(), imagesCommand(), unpackCommand(), copyCommand(), pushCommand(), listCommand(), verifyCommand(), signCommand(), diffCommand(), catalogCommand(), serveCommand(), completionCommand()}),
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
	usageErrors(app)
	return app
}

func init() { cli.VersionPrinter = printVersion }

// gcPercent and memoryLimit steer the garbage collector unless GOGC or GOMEMLIMIT is set.
// bale's live heap is mostly what it holds for the whole command (catalogs, the images
// resolved, decoded frames). Go's default (GOGC 100) lets the heap grow to twice that before it
// collects: a copy of a 20,000-tag bundle peaked at 280 MB. GOGC 50 kept it at 221 MB but
// collected twice as often, and a collection marks the whole live heap: verify of 20,000 tags
// spent a sixth of its CPU marking, 4.3-4.6x the 5,000-tag run for 4x the tags (#19). So the
// target stays at 100 and a soft limit of 192 MiB makes the collector work harder only as the
// heap nears it: verify of 20,000 tags 7.4-8.7 s -> 5.7-5.8 s, peak RSS 141 -> 174-192 MB;
// pack of 20,000 tags the same CPU, 215-222 -> 230-233 MB (#19 goal 2: under 256 MB).
const (
	gcPercent   = 100
	memoryLimit = 192 << 20
)

func main() {
	if os.Getenv("GOGC") == "" { // set here, after package initialisation: the start is unchanged
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// Interrupted, bale stops between blobs and removes what it had half written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Getenv("BALE_CPUPROFILE"))
	err := runApp(ctx, newApp(), os.Args)
	stopProfile()
	writeMemProfile(os.Getenv("BALE_MEMPROFILE"))
	stop()
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bale: interrupted; nothing half-written was left in place (re-run to resume)")
		os.Exit(exitInterrupted)
	}
	fmt.Fprintf(os.Stderr, "bale: %v\n", err)
	os.Exit(exitCode(err))
}

// startProfile writes a CPU profile to path until the returned function is called, when path
// is set (BALE_CPUPROFILE=FILE: where the time goes, for docs/performance.md).
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bale: BALE_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeMemProfile writes a heap profile to path when path is set (BALE_MEMPROFILE=FILE: what
// was allocated and by whom, for docs/performance.md). The profile is written after the
// command, so its inuse figures are what stayed live; alloc_space is where the bytes came from.
func writeMemProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bale: BALE_MEMPROFILE: %v\n", err)
	}
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode maps an error to the process exit code, in one place.
func exitCode(err error) int {
	var ue usageError
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ec):
		return ec.ExitCode()
	case isDamaged(err):
		return exitInvalid
	case errors.Is(err, layout.ErrNotFound):
		return exitNotFound
	case errors.Is(err, imagesig.ErrUnsigned), errors.Is(err, bundlesig.ErrUntrusted):
		return exitUnsigned
	}
	return exitError
}

// isDamaged reports whether err says that what bale read is damaged: a digest that does not
// match, a malformed bundle or catalog (exit 4): archive.Damaged.
func isDamaged(err error) bool { return archive.Damaged(err) }

// checkArgs checks that the command got n arguments (options after them were moved before
// them by reorderArgs).
func checkArgs(cx *cli.Context, n int, what string) error {
	if cx.NArg() != n {
		return usagef("%s takes %s, got %d arguments (see bale %s --help)", cx.Command.Name, what, cx.NArg(), cx.Command.Name)
	}
	return nil
}

// platformFlag parses the --platform values; nil when none is given.
func platformFlag(cx *cli.Context) ([]layout.Platform, error) {
	var out []layout.Platform
	for _, p := range cx.StringSlice("platform") {
		pl, err := parsePlatform(p)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, pl)
	}
	return out, nil
}

// referrerFlags are the flags that choose which referrers travel with the images.
func referrerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-referrers", Usage: "leave out the images' referrers: cosign signatures, attestations and SBOMs (tags sha256-<hex>.sig/.att/.sbom), OCI 1.1 referrers (manifests whose subject is the image) and referrers tags (sha256-<hex>)"},
		&cli.StringSliceFlag{Name: "referrers-type", Usage: "carry only referrers of artifact `TYPE` (repeatable; e.g. application/spdx+json, or sig, att, sbom for cosign's tags)"},
	}
}

// referrerOptions reads --no-referrers and --referrers-type.
func referrerOptions(cx *cli.Context) (layout.ReferrerOptions, error) {
	opt := layout.ReferrerOptions{None: cx.Bool("no-referrers"), Types: cx.StringSlice("referrers-type")}
	if opt.None && len(opt.Types) > 0 {
		return opt, usagef("--no-referrers and --referrers-type exclude each other")
	}
	return opt, nil
}

// imagesFlag reads the --images lists (text lists and skopeo sync YAML files); nil when none
// is given (meaning every image).
func imagesFlag(cx *cli.Context) (*layout.Selection, error) {
	lists := cx.StringSlice("images")
	if len(lists) == 0 {
		return nil, nil
	}
	sel, err := layout.ReadImageSelection(lists)
	if err != nil {
		return nil, err
	}
	if len(sel.Refs) == 0 && len(sel.AllTags) == 0 && len(sel.Patterns) == 0 {
		return nil, usagef("the image lists %v name no images", lists)
	}
	return sel, nil
}

// expandImages turns the --images selection into refs of src; nil (every image) without one.
func expandImages(sel *layout.Selection, src layout.Source) ([]layout.Ref, error) {
	if sel == nil {
		return nil, nil
	}
	return sel.Expand(src)
}
