package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestPlain: off a terminal, one line per image, or a line per tenth of the bytes for jobs
// without image lines; quiet writes nothing.
func TestPlain(t *testing.T) {
	var b bytes.Buffer
	tr := New(Plain, &b, "push")
	tr.SetTotal(2, 100)
	tr.Start("a:1", 60).Done(nil)
	tr.Add(60)
	tr.Start("b:2", 40).Done(errors.New("x"))
	tr.Finish(false)
	if got, want := b.String(), "push a:1 (60 B) 1/2\npush b:2 (40 B) 2/2 FAILED\n"; got != want {
		t.Errorf("image lines:\n%q\nwant\n%q", got, want)
	}

	b.Reset()
	tr = New(Plain, &b, "unpack")
	tr.SetTotal(20, 1000)
	for range 20 {
		tr.Add(50)
		tr.Step()
	}
	tr.Finish(true)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 9 || !strings.HasPrefix(lines[0], "unpack: 10%,") || !strings.HasPrefix(lines[8], "unpack: 90%,") {
		t.Errorf("tenths:\n%s", b.String())
	}

	b.Reset()
	tr = New(Quiet, &b, "copy")
	tr.SetTotal(1, 10)
	tr.Start("a:1", 10).Done(nil)
	tr.Add(10)
	tr.Finish(true)
	if b.Len() != 0 {
		t.Errorf("quiet wrote %q", b.String())
	}
	var nilTracker *Tracker
	nilTracker.Add(1)
	nilTracker.Finish(true)
}
