package main

import (
	"cmp"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets of the scale rows (issue #19).
const (
	scaleGrowthTarget = 4.5 // CPU at the big size / CPU at the small size, for 4x the tags
	scaleTagMsTarget  = 1.0 // ms of CPU a tag at the big size, for pack and diff
	scaleRSSTargetKB  = 256 << 10
	scaleNewEvery     = 20 // every scaleNewEvery-th tag is new in the patch (5%)
	// A command whose first run took less than scaleRepeatUnder seconds of CPU (serve-start
	// too; not one with a server to set up: push, unpack-s3) runs -scale-runs times (3 unless
	// asked), and its median run is reported. 35 s takes in unpack and copy at 20,000 tags
	// (13-33 s), whose single runs spread by a third from run to run (#19, stop 29).
	scaleRepeatUnder = 35.0
)

// scaleConfig is what the scale flags asked for.
type scaleConfig struct {
	sizes []int           // tags of each pool, smallest first
	only  map[string]bool // commands to run; empty: all
	runs  int             // runs of each command that repeats (odd: its median is a run)
}

// scaleFlags holds the scale flags until they are parsed.
type scaleFlags struct {
	sizes, only *string
	runs        *int
}

// scaleFlagSet defines the scale flags on the default flag set.
func scaleFlagSet() scaleFlags {
	return scaleFlags{
		sizes: flag.String("scale", "5000,20000", "scale row: the tags of the small and the big pool (a quick check: 500,2000)"),
		only:  flag.String("scale-only", "", "scale row: comma-separated subset of "+strings.Join(scaleNames(), ",")),
		runs: flag.Int("scale-runs", 3, fmt.Sprintf("scale row: runs at each size of a command whose first run takes under %.0f s of CPU, "+
			"an odd number; the median decides (on a shared machine more runs narrow its spread only a little, docs/performance.md stop 34)", scaleRepeatUnder)),
	}
}

// parse checks the scale flags and stores them in b.scale.
func (f scaleFlags) parse(b *bench) error {
	b.scale.only = map[string]bool{}
	for _, v := range strings.Split(*f.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 20 {
			return fmt.Errorf("-scale %q: want tag counts of at least 20, comma-separated", *f.sizes)
		}
		b.scale.sizes = append(b.scale.sizes, n)
	}
	if len(b.scale.sizes) != 2 || b.scale.sizes[0] >= b.scale.sizes[1] {
		return fmt.Errorf("-scale %q: want two sizes, the smaller first", *f.sizes)
	}
	if *f.runs < 1 || *f.runs%2 == 0 {
		return fmt.Errorf("-scale-runs %d: want an odd number of runs, 1 or more", *f.runs)
	}
	b.scale.runs = *f.runs
	for _, name := range strings.Split(*f.only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !contains(scaleNames(), name) {
			return fmt.Errorf("-scale-only %q: want some of %s", name, strings.Join(scaleNames(), ","))
		}
		b.scale.only[name] = true
	}
	return nil
}

// scaleSet is one pool of the scale rows and the paths its commands use, all under dir.
type scaleSet struct {
	n                                 int
	dir, pool, bundle, base, baseList string
	regAddr                           string // the docker-registry push writes to, while push runs
	results                           map[string]*run
	loads                             map[string]string    // 1-minute load average when each command started
	cpus                              map[string][]float64 // CPU of each run of a command, sorted
	patch                             *patchFigures        // the scale-patch row (scalepatch.go)
}

// inputs are the set's pool and bundles that argv reads.
func (s *scaleSet) inputs(argv []string) []string {
	var out []string
	for i, a := range argv {
		if i > 0 && argv[i-1] == "-o" {
			continue // written
		}
		if p := strings.TrimPrefix(a, "registry:"); p == s.pool || p == s.bundle || p == s.base {
			out = append(out, p)
		}
	}
	return out
}

// at names a path under the set's directory.
func (s *scaleSet) at(name string) string { return filepath.Join(s.dir, name) }

// scaleCmd is one command of the scale rows. argv gives its arguments after the bale binary;
// outputs (under the set's directory) are removed before and after it; setup, when set, runs
// before it (untimed) and returns what undoes it. serve is timed by serveStartOnce instead.
type scaleCmd struct {
	name    string
	outputs []string
	argv    func(s *scaleSet) []string
	setup   func(b *bench, s *scaleSet) (func(), error)
	perTag  bool // the per-tag target (pack, diff) applies
}

// scaleCmds are the commands of the scale rows, in the order they run; adding a command is one
// line (unpack-s3 unpacks into a bucket of MinIO that its setup starts, scales3.go).
var scaleCmds = []scaleCmd{
	{name: "pack", perTag: true, outputs: []string{"B.tar.zst"}, argv: func(s *scaleSet) []string { return []string{"pack", "-o", s.bundle, "registry:" + s.pool} }},
	{name: "list", argv: func(s *scaleSet) []string { return []string{"list", s.bundle} }},
	{name: "verify", argv: func(s *scaleSet) []string { return []string{"verify", s.bundle} }},
	{name: "verify-registry", argv: func(s *scaleSet) []string { return []string{"verify", "registry:" + s.pool} }},
	{name: "diff", perTag: true, argv: func(s *scaleSet) []string { return []string{"diff", s.base, s.bundle} }},
	{name: "catalog", outputs: []string{"C.db"}, argv: func(s *scaleSet) []string { return []string{"catalog", "-o", s.at("C.db"), "registry:" + s.pool} }},
	{name: "pack-base", outputs: []string{"P.tar.zst"}, argv: func(s *scaleSet) []string {
		return []string{"pack", "--base", s.base, "-o", s.at("P.tar.zst"), "registry:" + s.pool}
	}},
	{name: "unpack-registry", outputs: []string{"X"}, argv: func(s *scaleSet) []string { return []string{"unpack", "--to", "registry:" + s.at("X"), s.bundle} }},
	{name: "unpack-dir", outputs: []string{"D"}, argv: func(s *scaleSet) []string { return []string{"unpack", "--to", "dir:" + s.at("D"), s.bundle} }},
	{name: "unpack-s3", setup: (*bench).scaleS3Target, argv: func(s *scaleSet) []string {
		return []string{"unpack", "--to", "s3://" + scaleS3Bucket + "/site", s.bundle}
	}},
	{name: "copy", outputs: []string{"Y"}, argv: func(s *scaleSet) []string { return []string{"copy", "registry:" + s.pool, "registry:" + s.at("Y")} }},
	{name: "push", outputs: []string{"PUSHED"}, setup: (*bench).scalePushTarget, argv: func(s *scaleSet) []string { return []string{"push", s.bundle, "docker://" + s.regAddr} }},
	{name: "serve-start"},
	{name: "patch"}, // scalepatch.go: the size and unpack time of a patch of N/20 new tags
}

// scaleNames are the names of scaleCmds, for -scale-only.
func scaleNames() []string {
	var out []string
	for _, c := range scaleCmds {
		out = append(out, c.name)
	}
	return out
}

// runScale runs the scale rows: for each size of -scale, a generated pool and every command of
// scaleCmds on it; then one row a command comparing the sizes.
func (b *bench) runScale() error {
	sizes, only := b.scale.sizes, b.scale.only
	var sets []*scaleSet
	for _, n := range sizes {
		s, err := b.scaleSet(n, only)
		if err != nil {
			return err
		}
		sets = append(sets, s)
	}
	b.header = append(b.header, fmt.Sprintf("Scale pools (-scale %s): registry storage of N tags, three a repository, "+
		"each tag about 5 blobs (config, manifest, 1-2 of N/%d shared layers and 1-2 own layers of %d-%d payload bytes), "+
		"every %dth tag a two-platform manifest list or index; the base of diff and pack --base is the pool without every %dth tag (5%%). "+
		"CPU is user+sys of the command; ms/tag is that CPU over the big size's tags. Each command ran at both sizes before the next command, its runs alternating small and big. "+
		"A command whose first run took under %.0f s of CPU (serve-start included; push and unpack-s3, which need a server, not) ran %d times: its median run by CPU is shown, every run in brackets. \"runs allow\" is the least and the most growth of any run at the big size against any at the small one: how far the machine's spread reaches; the medians' growth alone decides the row.",
		joinInts(sizes), scaleSharedPer, scalePayloadMin, scalePayloadMax, scaleIndexEvery, scaleNewEvery, scaleRepeatUnder, b.scale.runs))
	if b.dropCaches {
		b.header = append(b.header, "-drop-caches: before each scale command the kernel's page, dentry and inode caches were dropped and its inputs read back.")
	}
	// Each command runs at every size, and has its row, before the next command starts (see
	// rounds), rather than every command at one size and then at the next: the speed of this
	// machine drifts over a run of an hour or two (the same unpack of 5,000 tags took 6.2 s of
	// CPU, then 9.9 s a minute later, after one of 20,000 tags, stop 29), and a drift must
	// weigh on both sides of a growth alike.
	small, big := sets[0], sets[len(sets)-1]
	for _, c := range scaleCmds {
		if len(only) > 0 && !only[c.name] {
			continue
		}
		if err := b.scaleCommand(c, sets); err != nil {
			return err
		}
		if c.name == "patch" {
			b.patchRow(small, big)
			continue
		}
		b.scaleRow(c, small, big)
	}
	return nil
}

func joinInts(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

// scaleSet generates the pool of n tags, the base of its diff and, when pack is not a row, its
// bundle: all that its commands read.
func (b *bench) scaleSet(n int, only map[string]bool) (*scaleSet, error) {
	s := &scaleSet{n: n, dir: filepath.Join(b.work, fmt.Sprintf("scale-%d", n)), results: map[string]*run{}, loads: map[string]string{}, cpus: map[string][]float64{}}
	s.pool, s.bundle, s.base, s.baseList = s.at("POOL"), s.at("B.tar.zst"), s.at("BASE.tar.zst"), s.at("base.list")
	images := poolNames(n)
	b.logf("generating a scale pool of %d tags in %s", n, s.pool)
	start := time.Now()
	if err := generateScalePool(b.ctx, s.pool, images); err != nil {
		return nil, fmt.Errorf("generating the scale pool of %d tags: %w", n, err)
	}
	var list strings.Builder
	for i, im := range images {
		if i%scaleNewEvery != scaleNewEvery/2 {
			list.WriteString(im.String() + "\n")
		}
	}
	if err := os.WriteFile(s.baseList, []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	u := diskUsage(s.pool)
	b.note("scale %d: POOL holds %d files, %s, generated in %.1f s", n, u.files, mib(u.bytes), time.Since(start).Seconds())
	if err := warm(s.pool); err != nil {
		return nil, err
	}
	if r := execute(b.ctx, "", b.bale, "pack", "--images", s.baseList, "-o", s.base, "registry:"+s.pool); !r.ok() {
		return nil, fmt.Errorf("untimed pack of the base of %d tags: %v: %s", n, r.err, r.tail())
	}
	if len(only) > 0 && !only["pack"] {
		// The other commands read the bundle: made here, untimed, when pack is not a row.
		if r := execute(b.ctx, "", b.bale, "pack", "-o", s.bundle, "registry:"+s.pool); !r.ok() {
			return nil, fmt.Errorf("untimed pack of the %d tags: %v: %s", n, r.err, r.tail())
		}
	}
	return s, nil
}

// scaleCommand runs command c on every set and records its results.
func (b *bench) scaleCommand(c scaleCmd, sets []*scaleSet) error {
	switch c.name {
	case "serve-start":
		return b.rounds(sets, c.name, true, b.serveStartOnce)
	case "patch":
		for _, s := range sets {
			if err := b.ctx.Err(); err != nil {
				return err
			}
			s.patch = b.scalePatch(s)
		}
		return nil
	}
	if err := b.rounds(sets, c.name, c.setup == nil, func(s *scaleSet) (*run, error) { return b.scaleRun(c, s) }); err != nil {
		return err
	}
	for _, s := range sets {
		if r := s.results[c.name]; c.name == "pack" && r.ok() {
			if sum, err := fileSHA256(s.bundle); err == nil {
				b.note("scale %d: B.tar.zst sha256 %s", s.n, sum)
			}
		}
	}
	return nil
}

// scaleRun runs command c once on set s, after its setup if it has one; it leaves the load
// average at the start in s.loads[c.name].
func (b *bench) scaleRun(c scaleCmd, s *scaleSet) (*run, error) {
	var outs []string
	for _, o := range c.outputs {
		outs = append(outs, s.at(o))
	}
	if c.setup != nil {
		undo, err := c.setup(b, s)
		if err != nil {
			return &run{argv: []string{c.name}, err: err}, nil
		}
		defer undo()
	}
	argv := c.argv(s)
	if err := b.coldKernel(s.inputs(argv)...); err != nil {
		return nil, err
	}
	load := loadAvg()
	r, err := b.timed(nil, outs, "", append([]string{b.bale}, argv...)...)
	if err != nil {
		return nil, err
	}
	s.loads[c.name] = load
	b.logf("scale %d %s: cpu %.2f s, wall %.2f s, rss %d MiB (load %s)", s.n, c.name, r.cpu, r.secs, r.rssKB>>10, load)
	if c.name != "pack" { // the bundle is an input of the others
		b.retire(outs...)
	}
	return r, nil
}

// rounds runs once on each set in turn (once leaves its load average in s.loads[name]); then,
// if again, another round on each set whose first run took under scaleRepeatUnder seconds of
// CPU, until such a set has had -scale-runs runs. The sizes alternate, rather than one size
// being repeated back to back, so that a drift of the machine over the minutes of a command
// weighs on both sides alike. Each set's result (s.results[name]) is its median run by CPU,
// with that run's load average left in s.loads[name]: one run of a command of a second or less
// varies by a third, of one of 20-30 s by a quarter (#19).
func (b *bench) rounds(sets []*scaleSet, name string, again bool, once func(s *scaleSet) (*run, error)) error {
	runs := make([][]*run, len(sets))
	loads := map[*run]string{}
	for round := range b.scale.runs {
		for i, s := range sets {
			if round > 0 && (!again || !runs[i][0].ok() || runs[i][0].cpu >= scaleRepeatUnder) {
				continue
			}
			if err := b.ctx.Err(); err != nil {
				return err
			}
			r, err := once(s)
			if err != nil {
				return err
			}
			loads[r] = s.loads[name]
			runs[i] = append(runs[i], r)
		}
	}
	for i, s := range sets {
		slices.SortFunc(runs[i], func(x, y *run) int { return cmp.Compare(x.cpu, y.cpu) })
		med := runs[i][len(runs[i])/2]
		s.results[name], s.loads[name] = med, loads[med]
		s.cpus[name] = nil
		for _, r := range runs[i] {
			s.cpus[name] = append(s.cpus[name], r.cpu)
		}
	}
	return nil
}

// scalePushTarget starts docker-registry on an empty storage for push.
func (b *bench) scalePushTarget(s *scaleSet) (func(), error) {
	root := s.at("PUSHED")
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	d, err := b.startRegistry(root)
	if err != nil {
		return nil, err
	}
	s.regAddr = d.addr
	return d.stop, nil
}

// serveStartOnce times bale serve of the bundle until it answers /v2/; CPU and peak RSS are
// read from /proc at that moment. rounds repeats it as it does the other commands. Its error
// is the run's (a failed start is a failed row, not the end of the bench).
func (b *bench) serveStartOnce(s *scaleSet) (*run, error) {
	r := &run{argv: []string{b.bale, "serve", s.bundle}}
	if err := b.coldKernel(); err != nil {
		r.err = err
		return r, nil
	}
	if err := warm(s.bundle); err != nil {
		r.err = err
		return r, nil
	}
	s.loads["serve-start"] = loadAvg()
	start := time.Now()
	d, err := b.startServe(s.bundle)
	if err != nil {
		r.err = err
		return r, nil
	}
	defer d.stop()
	for time.Since(start) < 10*time.Minute {
		resp, err := http.Get("http://" + d.addr + "/v2/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.secs = time.Since(start).Seconds()
	r.rssKB = d.peakRSS()
	r.cpu = procCPU(d.cmd.Process.Pid)
	b.logf("scale %d serve-start: cpu %.2f s, wall %.2f s, rss %d MiB", s.n, r.cpu, r.secs, r.rssKB>>10)
	return r, nil
}

// procCPU is the user+system seconds of process pid, from /proc/PID/stat.
func procCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	tck := 100.0 // USER_HZ on Linux
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil {
			tck = v
		}
	}
	return (ut + st) / tck
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// scaleRow adds the row of command c comparing the small and the big set.
func (b *bench) scaleRow(c scaleCmd, small, big *scaleSet) {
	cell := func(s *scaleSet) string {
		r := s.results[c.name]
		if r == nil {
			return "n/a"
		}
		if r.err != nil {
			return fmt.Sprintf("%d tags: FAILED (%v)", s.n, r.err)
		}
		first := ""
		if c.name == "list" && r.first > 0 { // goal 2: the first line within 100 ms of the process start
			first = fmt.Sprintf(", first line %.3f s", r.first)
		}
		runs := ""
		if cpus := s.cpus[c.name]; len(cpus) > 1 {
			runs = " (runs " + formatCPUs(cpus) + ")"
		}
		return fmt.Sprintf("%d tags: CPU %.2f s%s, wall %.2f s%s, max RSS %.0f MiB (load %s)", s.n, r.cpu, runs, r.secs, first, float64(r.rssKB)/1024, s.loads[c.name])
	}
	target := fmt.Sprintf("CPU ≤ %.1fx; RSS < %d MiB", scaleGrowthTarget, scaleRSSTargetKB>>10)
	if c.perTag {
		target += fmt.Sprintf("; < %.0f ms/tag", scaleTagMsTarget)
	}
	r := row{name: "scale-" + c.name, bale: cell(small), ref: cell(big), ratio: "–", target: target, result: "n/a"}
	sr, br := small.results[c.name], big.results[c.name]
	if !sr.ok() || !br.ok() {
		r.result, b.failed = "FAIL", true
		b.rows = append(b.rows, r)
		return
	}
	growth := br.cpu / max(sr.cpu, 0.001)
	perTag := br.cpu * 1000 / float64(big.n)
	r.ratio = fmt.Sprintf("%.2fx CPU for %.1fx the tags; %.3f ms/tag", growth, float64(big.n)/float64(small.n), perTag)
	if lo, hi, ok := growthRange(small.cpus[c.name], big.cpus[c.name]); ok {
		// What the runs allow, beside the medians' growth that decides: on a shared machine
		// the same command's runs spread by a fifth (#19), and this says how far.
		r.ratio += fmt.Sprintf(" (runs allow %.2f-%.2fx)", lo, hi)
	}
	ok := growth <= scaleGrowthTarget && br.rssKB < scaleRSSTargetKB && (!c.perTag || perTag < scaleTagMsTarget)
	r.result = okMiss(ok)
	b.rows = append(b.rows, r)
}

// formatCPUs lists the CPU seconds of a command's runs.
func formatCPUs(cpus []float64) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = fmt.Sprintf("%.2f", c)
	}
	return strings.Join(parts, ", ")
}

// growthRange is the least and the most growth any pair of runs gives, a run at the big size
// against one at the small size (both lists sorted); ok is false unless both sizes ran more
// than once. The medians' growth, not this range, decides a row.
func growthRange(small, big []float64) (lo, hi float64, ok bool) {
	if len(small) < 2 || len(big) < 2 || small[0] <= 0 {
		return 0, 0, false
	}
	return big[0] / small[len(small)-1], big[len(big)-1] / small[0], true
}
