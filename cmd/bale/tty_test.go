package main

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ansi matches the terminal control sequences the bars draw with.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// runOnTerminal runs bale with a pseudo-terminal as its standard error (and output) and
// returns everything it wrote there.
func runOnTerminal(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(baleBin, args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer f.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, f); close(done) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bale %v on a terminal: %v\n%s", args, err, out.String())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return out.String()
}

// TestProgressOnTerminal: on a terminal, unpack and copy draw bars (blobs or images, bytes,
// rate, the image lines in flight) and end cleanly: the bar is complete ("done") and the summary comes after
// it, on a line of its own, with nothing drawn after it; off a terminal the same commands
// write one plain line per image and no control sequence; --quiet writes no progress.
func TestProgressOnTerminal(t *testing.T) {
	root := bigStore(t, 4, 6<<20)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+root)

	out := runOnTerminal(t, "unpack", "--to", "registry:"+filepath.Join(work, "x"), bundle)
	plain := ansi.ReplaceAllString(out, "")
	if !strings.Contains(plain, "unpack 13/13") || !strings.Contains(plain, "[===") || !strings.Contains(plain, "28.0 MiB / 28.0 MiB") || !strings.Contains(plain, "done") {
		t.Errorf("unpack on a terminal drew no bar:\n%q", out)
	}
	last := strings.TrimSpace(plain[strings.LastIndex(strings.TrimRight(plain, "\r\n"), "\n")+1:])
	if !strings.HasPrefix(last, "unpacked 4 images") {
		t.Errorf("the last line on the terminal is %q, want the summary", last)
	}
	if i := strings.LastIndex(out, "unpacked 4 images"); ansi.MatchString(out[i:]) {
		t.Errorf("control sequences after the summary: %q", out[i:])
	}

	out = runOnTerminal(t, "copy", "registry:"+root, "dir:"+filepath.Join(work, "tree"))
	plain = ansi.ReplaceAllString(out, "")
	// The bytes of linked blobs count too (each once).
	if !strings.Contains(plain, "copy") || !strings.Contains(plain, "4/4") || !strings.Contains(plain, "copied 4 images") || !strings.Contains(plain, "28.0 MiB / 28.0 MiB") {
		t.Errorf("copy on a terminal:\n%q", out)
	}

	res := mustBale(t, "copy", "registry:"+root, "dir:"+filepath.Join(work, "tree2"))
	if ansi.MatchString(res.stderr) || strings.Count(res.stderr, "\ncopy big/app-") != 3 || !strings.HasPrefix(res.stderr, "copy big/app-") {
		t.Errorf("copy off a terminal, want one line per image:\n%s", res.stderr)
	}
	res = mustBale(t, "unpack", "--quiet", "--to", "registry:"+filepath.Join(work, "y"), bundle)
	if lines := strings.Count(strings.TrimSpace(res.stderr), "\n"); lines != 0 {
		t.Errorf("unpack --quiet printed more than its summary:\n%s", res.stderr)
	}
}
