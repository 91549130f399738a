package main

import (
	"context"
	"testing"
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
