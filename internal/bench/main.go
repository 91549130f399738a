// Command bench measures bale against the bash baselines in /work/shared/reference and the
// tar|zstd pipeline, on a generated registry storage pool, and prints a table that can be pasted
// into docs/performance.md. It is not a test: run it with `make bench` or
//
//	go run ./internal/bench -bale bin/bale [-size small|large] [-tags N] [-only NAME,...] [-work DIR] [-keep]
//
// Every command runs once, timed with the wall clock around the exec, after `sync` and after
// its inputs were read once (warm page cache). Peak memory is GNU time's %M when
// /usr/bin/time exists, else wait4's ru_maxrss (see gnuTime). Outputs are removed as soon as
// they are checked, so -size large needs about three times the pool on disk.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rowNames are the comparisons, in the order they run; -only picks among them.
var rowNames = []string{"copy-select", "copy-dir-to-registry", "unpack-to-dir", "pack-dir", "pack", "list", "sign", "referrers", "unpack", "serve", "serve-load", "serve-pulls", "s3", "release-file", "limits", "scale"}

// Targets: ratios are bale time / reference time.
const (
	copyTarget      = 0.05 // link-based copies: 20x faster than the scripts
	packTarget      = 1.0  // pack and unpack: at least as fast as tar | zstd -T0 -3
	sizeTarget      = 1.01 // bundle size next to tar | zstd -3
	referrersTarget = 1.05 // pack with referrer discovery next to pack --no-referrers (issue #12)
	listTargetSecs  = 0.05
	rssTargetKB     = 128 << 10
)

func main() {
	os.Exit(realMain())
}

func realMain() int {
	bale := flag.String("bale", "bin/bale", "the bale binary to measure")
	work := flag.String("work", "", "work directory, empty or absent (default: a new temporary directory); removed at the end unless -keep")
	keep := flag.Bool("keep", false, "keep the work directory and every output (-size large then needs about 5x the pool on disk)")
	dropCaches := flag.Bool("drop-caches", false, "scale rows: sync and drop the kernel's page, dentry and inode caches before each command, then read its inputs back (needs root; see docs/performance.md)")
	tags := flag.Int("tags", 160, "number of tags in the generated pool (at least 150 for figures worth quoting)")
	size := flag.String("size", "small", "small: layers of a few KB (per-file overhead); medium: about 30 MB at 160 tags; large: about 2.9 GiB at 160 tags (peak disk about 3x that)")
	only := flag.String("only", "", "comma-separated subset of "+strings.Join(rowNames, ","))
	refDir := flag.String("ref", "/work/shared/reference", "directory of the reference scripts")
	serveEvery := flag.Int("serve-every", 10, "the serve row pulls every N-th image (1: every tag)")
	scaleFlags := scaleFlagSet() // in scale.go; the scale row runs only when -only names it
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	spec, ok := poolSpecs[*size]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: -size %q: want small, medium or large\n", *size)
		return 2
	}
	if *tags < 1 {
		fmt.Fprintln(os.Stderr, "bench: -tags must be positive")
		return 2
	}
	b := &bench{n: *tags, size: *size, spec: spec, keep: *keep, dropCaches: *dropCaches, serveEvery: max(1, *serveEvery), only: map[string]bool{}}
	for _, name := range strings.Split(*only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !contains(rowNames, name) {
			fmt.Fprintf(os.Stderr, "bench: -only %q: want some of %s\n", name, strings.Join(rowNames, ","))
			return 2
		}
		b.only[name] = true
	}

	if err := scaleFlags.parse(b); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b.ctx = ctx
	if err := b.setup(*bale, *refDir, *work); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	defer b.cleanup()
	if err := b.runAll(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	b.report()
	if b.failed {
		return 1
	}
	return 0
}

// bench holds the settings, the paths of one run and what it measured.
type bench struct {
	ctx  context.Context
	n    int
	size string
	spec poolSpec
	keep bool
	// dropCaches: drop the kernel's caches before each scale command (coldKernel).
	dropCaches bool
	trashed    int // paths retired so far (retire)
	// serveEvery: the serve row pulls every serveEvery-th image.
	serveEvery int
	only       map[string]bool
	bale       string // absolute
	refDir     string // absolute
	work       string // absolute
	copyOK     bool   // `bale copy` exists

	// Inputs and outputs, all under work.
	pool, tree, listDir, out1, out2, out3, out4, tree2, bundle, refBundle, unX, unY, refsBundle string
	display                                                                                     *strings.Replacer
	legend                                                                                      []string

	images              []poolImage
	packRun, refPackRun *run     // the pack runs, whose outputs list and unpack read
	unpackRun           *run     // bale's unpack of the pool, for the release-file rows
	poolBytes           int64    // the pool's bytes (regular files), for the rates
	header              []string // data description, printed before the table
	rows                []row
	notes               []string // failures and sanity checks, printed after the table
	failed              bool     // a bale command or a check failed
	peak                int64    // peak disk use of the work directory
	limits              []limit  // the machine's speeds, when measured

	scale scaleConfig // the scale rows' settings (scale.go)
}

// row is one line of the result table.
type row struct{ name, bale, ref, ratio, target, result string }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (b *bench) want(name string) bool { return len(b.only) == 0 || b.only[name] }

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
}

func (b *bench) note(format string, a ...any) { b.notes = append(b.notes, fmt.Sprintf(format, a...)) }

// setup checks the tools, creates the work directory and names every path.
func (b *bench) setup(bale, refDir, work string) error {
	var err error
	if b.bale, err = filepath.Abs(bale); err != nil {
		return err
	}
	if r := execute(b.ctx, "", b.bale, "--version"); !r.ok() {
		return fmt.Errorf("%s --version: %v (build it first: make build)", b.bale, r.err)
	}
	// `bale copy` may not exist yet: `bale help copy` exits 3 for an unknown command.
	b.copyOK = execute(b.ctx, "", b.bale, "help", "copy").ok()
	if b.refDir, err = filepath.Abs(refDir); err != nil {
		return err
	}
	for _, s := range []string{"select_registry_images.sh", "skopeo_dir_to_registry.sh", "registry_to_skopeo_dir.sh"} {
		if _, err := os.Stat(filepath.Join(b.refDir, s)); err != nil {
			return fmt.Errorf("reference script: %w", err)
		}
	}
	for _, tool := range []string{"bash", "tar", "zstd"} {
		if r := execute(b.ctx, "", tool, "--version"); !r.ok() {
			return fmt.Errorf("%s is needed by the references: %v", tool, r.err)
		}
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "bale-bench-"); err != nil {
			return err
		}
	} else {
		// The work directory is removed at the end: never take one that holds anything.
		if ents, err := os.ReadDir(work); err == nil && len(ents) > 0 {
			return fmt.Errorf("-work %s is not empty", work)
		}
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
	}
	if b.work, err = filepath.Abs(work); err != nil {
		return err
	}
	named := []struct {
		p    *string
		name string
	}{
		{&b.pool, "POOL"}, {&b.tree, "TREE"}, {&b.listDir, "LISTDIR"},
		{&b.out1, "OUT1"}, {&b.out2, "OUT2"}, {&b.out3, "OUT3"}, {&b.out4, "OUT4"},
		{&b.tree2, "TREE2"}, {&b.bundle, "B.tar.zst"}, {&b.refBundle, "R.tar.zst"},
		{&b.unX, "X"}, {&b.unY, "Y"}, {&b.refsBundle, "BR.tar.zst"},
	}
	// Commands are shown with short names for the paths; longest paths are replaced first.
	var pairs [][2]string
	for _, x := range named {
		*x.p = filepath.Join(b.work, x.name)
		pairs = append(pairs, [2]string{*x.p, x.name})
		b.legend = append(b.legend, x.name)
	}
	pairs = append(pairs, [2]string{b.work, "WORK"}, [2]string{b.bale, "bale"}, [2]string{b.refDir + "/", ""})
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i][0]) > len(pairs[j][0]) })
	var flat []string
	for _, p := range pairs {
		flat = append(flat, p[0], p[1])
	}
	b.display = strings.NewReplacer(flat...)
	return nil
}

func (b *bench) cleanup() {
	if b.keep {
		fmt.Fprintf(os.Stderr, "bench: kept %s\n", b.work)
		return
	}
	if err := os.RemoveAll(b.work); err != nil {
		fmt.Fprintf(os.Stderr, "bench: removing %s: %v\n", b.work, err)
	}
}

// retire moves outputs that are no longer needed out of the way, into the work directory's
// trash, removed with it at the end (unless -keep, which leaves them in place). Removing them
// at once would tax the commands after: ext4 without a journal (as on the machine of
// docs/performance.md) skips the inodes freed in the last minute or five as it allocates new
// ones, reading each one's inode block (recently_deleted), so a command that creates many
// files right after a large tree was removed spent 2-4 times the system time (#19, stop 26).
// A rename frees no inode.
func (b *bench) retire(paths ...string) {
	if b.keep {
		return
	}
	trash := filepath.Join(b.work, "trash")
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		b.trashed++
		if os.MkdirAll(trash, 0o755) != nil || os.Rename(p, filepath.Join(trash, strconv.Itoa(b.trashed))) != nil {
			os.RemoveAll(p)
		}
	}
}

// coldKernel, with -drop-caches, writes back dirty pages and drops the kernel's page, dentry
// and inode caches, then reads the bale binary and inputs back into the page cache: every scale
// command then starts from the same state of the file system, whatever ran before (above all,
// the blocks of recently freed inodes that ext4 reads while they stay cached: see retire). The
// binary is read back too, or its start pages it in from the disk (list's first line took
// 0.134 s so, stop 26).
func (b *bench) coldKernel(inputs ...string) error {
	if !b.dropCaches {
		return nil
	}
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("-drop-caches: %w (it needs root)", err)
	}
	return warm(append([]string{b.bale}, inputs...)...)
}

// drop removes outputs that are no longer needed (unless -keep), to bound the disk use.
func (b *bench) drop(paths ...string) {
	if b.keep {
		return
	}
	for _, p := range paths {
		os.RemoveAll(p)
	}
}

// track records the disk use of the work directory.
func (b *bench) track() {
	if u := diskUsage(b.work); u.disk > b.peak {
		b.peak = u.disk
	}
}

// show is the command of r as printed in the table.
func (b *bench) show(r *run) string {
	s := b.display.Replace(strings.Join(r.argv, " "))
	if n := len(r.argv); n >= 3 && r.argv[0] == "bash" && r.argv[n-2] == "-c" {
		s = b.display.Replace(r.argv[n-1]) // a pipeline: show the pipeline itself
	}
	if r.dir != "" {
		s += " (in " + b.display.Replace(r.dir) + ")"
	}
	return s
}

// timed makes outputs absent, warms the inputs and runs the command once.
func (b *bench) timed(inputs, outputs []string, dir string, argv ...string) (*run, error) {
	for _, o := range outputs {
		if err := os.RemoveAll(o); err != nil {
			return nil, err
		}
	}
	if err := warm(inputs...); err != nil {
		return nil, err
	}
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	b.logf("running %s", b.show(&run{argv: argv, dir: dir}))
	r := execute(b.ctx, dir, argv...)
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	if r.err != nil {
		b.note("`%s` failed: %v: %s", b.show(r), r.err, r.tail())
	}
	b.track()
	return r, nil
}

// script returns the argv that runs reference script name.
func (b *bench) script(name string, args ...string) []string {
	return append([]string{"bash", filepath.Join(b.refDir, name)}, args...)
}

// pipeline returns the argv that runs a shell pipeline, failing if any stage fails; paths are
// quoted for the shell when they need it.
func pipeline(format string, paths ...any) []string {
	for i, p := range paths {
		if s := p.(string); strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-") != "" {
			paths[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return []string{"bash", "-o", "pipefail", "-c", fmt.Sprintf(format, paths...)}
}

// runAll generates the data and runs the selected comparisons.
func (b *bench) runAll() error {
	if b.only["scale"] { // its own pools, in scale.go
		if err := b.runScale(); err != nil || len(b.only) == 1 {
			return err
		}
	}
	b.images = poolNames(b.n)
	b.logf("generating a %s pool of %d tags in %s", b.size, b.n, b.pool)
	start := time.Now()
	if err := generatePool(b.ctx, b.pool, b.images, b.spec); err != nil {
		return fmt.Errorf("generating the pool: %w", err)
	}
	if _, err := writeImageList(b.listDir, b.images); err != nil {
		return err
	}
	gen := time.Since(start)
	debug.FreeOSMemory() // the layer buffers are garbage now; keep this process small
	syscall.Sync()
	u := diskUsage(b.pool)
	b.poolBytes = u.bytes
	b.header = append(b.header, fmt.Sprintf("Data (-size %s): POOL is registry storage of %d tags in %d two-component repositories "+
		"(Docker schema2 and OCI mixed, linux/amd64), each over 1-2 of %d shared base layers plus its own top layer; "+
		"layers are tar+gzip with stored (uncompressed) deflate blocks around ChaCha8 random bytes, so incompressible; "+
		"every %dth image (OCI) also has an uncompressed tar layer of %s-%s of generated text (file lists, compressible); "+
		"%d files, %s (%s bytes), generated in %.1f s.",
		b.size, b.n, (b.n+2)/3, b.spec.bases, b.spec.rawEvery, mib(b.spec.rawMin), mib(b.spec.rawMax), u.files, mib(u.bytes), thousands(u.bytes), gen.Seconds()))
	b.track()
	var treeRun *run
	if b.want("copy-dir-to-registry") || b.want("unpack-to-dir") || b.want("pack-dir") {
		var err error
		if treeRun, err = b.timed([]string{b.pool}, []string{b.tree}, "", b.script("registry_to_skopeo_dir.sh", b.pool, b.tree)...); err != nil {
			return err
		}
		if treeRun.ok() {
			b.countNote("TREE (registry_to_skopeo_dir.sh)", "dir", b.tree, false)
		}
	}
	steps := []struct {
		name string
		fn   func(*run) error
	}{
		{"copy-select", b.copySelect},
		{"copy-dir-to-registry", b.copyDirToRegistry},
		{"unpack-to-dir", b.unpackToDir},
		{"pack-dir", b.packDir},
	}
	for _, s := range steps {
		if b.want(s.name) {
			if err := s.fn(treeRun); err != nil {
				return err
			}
		}
	}
	b.drop(b.tree)
	if b.want("pack") || b.want("list") || b.want("sign") || b.want("unpack") || b.want("serve") || b.want("serve-load") || b.want("serve-pulls") || b.want("s3") || b.want("release-file") {
		if err := b.pack(); err != nil {
			return err
		}
	}
	if b.want("list") {
		if err := b.list(); err != nil {
			return err
		}
	}
	if b.want("sign") { // in sign.go
		if err := b.sign(); err != nil {
			return err
		}
	}
	// Last of the rows that read the pool: it adds referrers to it first.
	if b.want("referrers") {
		if err := b.referrers(); err != nil {
			return err
		}
	}
	b.drop(b.pool) // unpack needs only the bundles; this bounds the disk use at 3x the pool
	if b.want("unpack") || b.want("serve") || b.want("serve-load") || b.want("serve-pulls") || b.want("release-file") {
		if err := b.unpack(); err != nil {
			return err
		}
	}
	if b.want("s3") { // unpack into s3:// (issue #13), in s3.go
		if err := b.s3(); err != nil {
			return err
		}
	}
	b.drop(b.bundle, b.refBundle)
	if b.want("release-file") { // a 1 GiB file of a release file (issue #20), in releasefile.go
		if err := b.releaseFile(); err != nil {
			return err
		}
	}
	if b.want("limits") {
		b.logf("measuring the physical limits (sha256, zstd, disk)")
		var err error
		if b.limits, err = measureLimits(b.work); err != nil {
			return fmt.Errorf("measuring the limits: %w", err)
		}
	}
	return nil
}
