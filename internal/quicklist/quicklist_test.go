package quicklist

import (
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/bale-project/bale/archive/bundlesig"
)

// TestParseArgs: only `bale list|ls [--json] [--wide] BUNDLE` is listed early, the options
// anywhere; any other command line starts bale as always.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		ok         bool
		json, wide bool
		path       string
	}{
		{args: []string{"bale", "list", "b.tar.zst"}, ok: true, path: "b.tar.zst"},
		{args: []string{"bale", "ls", "b.tar.zst"}, ok: true, path: "b.tar.zst"},
		{args: []string{"bale", "list", "--json", "b.tar.zst"}, ok: true, json: true, path: "b.tar.zst"},
		{args: []string{"bale", "list", "b.tar.zst", "-wide", "-json"}, ok: true, json: true, wide: true, path: "b.tar.zst"},
		{args: []string{"bale", "list", "--wide", "/srv/b.tar.zst"}, ok: true, wide: true, path: "/srv/b.tar.zst"},
		{args: []string{"bale", "list"}},
		{args: []string{"bale", "list", "--json"}},
		{args: []string{"bale", "list", "a.tar.zst", "b.tar.zst"}},
		{args: []string{"bale", "list", "--key", "k.pub", "b.tar.zst"}},
		{args: []string{"bale", "list", "--from-catalog", "b.tar.zst"}},
		{args: []string{"bale", "list", "--json=false", "b.tar.zst"}},
		{args: []string{"bale", "list", "--", "b.tar.zst"}},
		{args: []string{"bale", "list", "-"}},
		{args: []string{"bale", "list", ""}},
		{args: []string{"bale", "list", "registry:/srv/r"}},
		{args: []string{"bale", "list", "s3://bucket/root"}},
		{args: []string{"bale", "list", "docker://127.0.0.1:5000"}},
		{args: []string{"bale", "--debug", "list", "b.tar.zst"}},
		{args: []string{"bale", "verify", "b.tar.zst"}},
		{args: []string{"bale", "list", "b.tar.zst", "--generate-bash-completion"}},
		{args: []string{"bale"}},
	} {
		o, wide, path, ok := parseArgs(tc.args)
		if ok != tc.ok || (ok && (o.JSON != tc.json || wide != tc.wide || path != tc.path)) {
			t.Errorf("parseArgs(%q) = json %v, wide %v, %q, %v; want json %v, wide %v, %q, %v",
				tc.args, o.JSON, wide, path, ok, tc.json, tc.wide, tc.path, tc.ok)
		}
	}
}

// TestPolicyNames: the site policy this package looks for is the one package bundlesig
// reads.
func TestPolicyNames(t *testing.T) {
	if policyEnv != bundlesig.PolicyEnv || defaultPolicy != bundlesig.DefaultPolicy {
		t.Errorf("quicklist looks for %s and %s, bundlesig reads %s and %s", policyEnv, defaultPolicy, bundlesig.PolicyEnv, bundlesig.DefaultPolicy)
	}
}

// TestRunLeavesOthers: Run writes nothing and is not done for a command line it does not
// take or a file that is not a bundle.
func TestRunLeavesOthers(t *testing.T) {
	for _, args := range [][]string{{"bale", "verify", "x"}, {"bale", "list", t.TempDir()}, {"bale", "list", "missing.tar.zst"}} {
		var out, errb bytes.Buffer
		if _, done := Run(args, &out, &errb); done || out.Len()+errb.Len() > 0 {
			t.Errorf("Run(%q): done %v, stdout %q, stderr %q", args, done, out.String(), errb.String())
		}
	}
}

// TestCollectLate: the early list makes the collector wait for listHeap, and puts Go's
// settings back for the full command; with GOGC or GOMEMLIMIT set it changes nothing.
func TestCollectLate(t *testing.T) {
	for _, e := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, set := os.LookupEnv(e); set {
			t.Setenv(e, v) // restored after the test
			os.Unsetenv(e)
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	restore := collectLate()
	if p, l := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); p != -1 || l != listHeap {
		t.Errorf("while listing: GC percent %d, memory limit %d; want -1, %d", p, l, listHeap)
	}
	restore()
	if p, l := debug.SetGCPercent(100), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Errorf("restored: GC percent %d, memory limit %d; want 100, %d", p, l, int64(math.MaxInt64))
	}
	t.Setenv("GOGC", "50")
	collectLate()
	if p, l := debug.SetGCPercent(100), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Errorf("with GOGC set: GC percent %d, memory limit %d; want them untouched", p, l)
	}
}
