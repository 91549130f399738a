package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecuteFirstLine: execute records when the first line of stdout came out, apart from
// the whole run: a command that prints a line, then sleeps, then prints another.
func TestExecuteFirstLine(t *testing.T) {
	r := execute(context.Background(), "", "sh", "-c", "echo one; sleep 0.5; echo two")
	if !r.ok() {
		t.Fatalf("sh: %v\n%s", r.err, r.out)
	}
	if r.first <= 0 || r.first > r.secs-0.4 || r.out != "one\ntwo\n" {
		t.Errorf("first line at %.3f s of %.3f s, output %q", r.first, r.secs, r.out)
	}
}

// TestExecuteCancelKillsChildren: a cancel kills what the measured command started, not only
// the command: a shell that starts a child and waits for it, as GNU time waits for bale.
func TestExecuteCancelKillsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
				break
			}
		}
		cancel()
	}()
	start := time.Now()
	r := execute(ctx, "", "sh", "-c", "sleep 20 & echo $! > "+pidFile+"; wait")
	if r.ok() {
		t.Fatalf("the run was not cancelled: %s", r.out)
	}
	// Killing only the shell left the sleep holding the output pipe: execute returned when
	// the sleep ended.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the cancelled run returned after %v", took.Round(time.Second))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The child may take a moment to be reaped by init once it is killed.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(raw), ") Z ") {
			return // gone, or a zombie: killed
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL) // the test started it
			t.Fatalf("the child %d of the cancelled command is still running", pid)
		}
	}
}

func TestGrowthRange(t *testing.T) {
	for _, tc := range []struct {
		small, big []float64
		lo, hi     float64
		ok         bool
	}{
		{[]float64{2.32, 2.33, 2.60}, []float64{9.54, 10.59, 11.65}, 9.54 / 2.60, 11.65 / 2.32, true},
		{[]float64{2}, []float64{8, 9}, 0, 0, false},
		{[]float64{1, 2}, []float64{8}, 0, 0, false},
		{[]float64{0, 1}, []float64{4, 5}, 0, 0, false},
	} {
		lo, hi, ok := growthRange(tc.small, tc.big)
		if ok != tc.ok || math.Abs(lo-tc.lo) > 1e-9 || math.Abs(hi-tc.hi) > 1e-9 {
			t.Errorf("growthRange(%v, %v) = %v, %v, %v; want %v, %v, %v", tc.small, tc.big, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
	if got := formatCPUs([]float64{2.3, 10.587}); got != "2.30, 10.59" {
		t.Errorf("formatCPUs = %q", got)
	}
}

func TestScaleRunsFlag(t *testing.T) {
	sizes, only := "500,2000", "pack"
	for _, tc := range []struct {
		runs int
		ok   bool
	}{{1, true}, {3, true}, {9, true}, {0, false}, {2, false}, {-1, false}} {
		runs := tc.runs
		b := &bench{}
		err := scaleFlags{sizes: &sizes, only: &only, runs: &runs}.parse(b)
		if (err == nil) != tc.ok || (tc.ok && b.scale.runs != tc.runs) {
			t.Errorf("-scale-runs %d: err %v, runs %d", tc.runs, err, b.scale.runs)
		}
	}
}
