// Package progress shows how far a long command has come: on a terminal, a bar of bytes with
// rate and ETA and one line per image in flight (vbauerster/mpb); off a terminal, one plain
// line per image (or per tenth of the bytes when there are no images); nothing when quiet.
// Counting is per read and per item, never a system call per byte.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
)

// Mode is how progress is shown.
type Mode int

// Modes.
const (
	Quiet Mode = iota // nothing
	Plain             // log lines
	Bars              // terminal bars
)

// ModeFor is Bars when f is a terminal, Plain otherwise, Quiet when asked.
func ModeFor(quiet bool, f *os.File) Mode {
	switch {
	case quiet:
		return Quiet
	case IsTerminal(f):
		return Bars
	}
	return Plain
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Tracker follows one job: bytes to move and items (images or blobs) to finish.
type Tracker struct {
	mode  Mode
	w     io.Writer
	what  string
	items int
	total int64

	mu       sync.Mutex
	done     int   // items finished
	moved    int64 // bytes
	tenth    int64 // plain mode: last tenth of the bytes logged
	start    time.Time
	p        *mpb.Progress
	bar      *mpb.Bar
	finished bool
	perItem  bool // items have lines of their own (Start); else plain mode logs tenths
	// images, imagesDone: for ImageDone lines
	images, imagesDone int
}

// New starts a Tracker writing to w; what is the verb shown ("pack", "push"). SetTotal tells
// it the size of the job once known.
func New(mode Mode, w io.Writer, what string) *Tracker {
	t := &Tracker{mode: mode, w: w, what: what, start: time.Now()}
	if mode == Bars {
		t.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
		t.bar = t.p.New(0, mpb.BarStyle(),
			mpb.BarPriority(1<<30), // the total stays at the bottom, under the images in flight
			mpb.PrependDecorators(decor.Name(what, decor.WCSyncSpaceR), decor.Any(t.itemsDecor, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done")))
	}
	return t
}

// SetTotal sets the size of the job: items (images or blobs) and bytes.
func (t *Tracker) SetTotal(items int, bytes int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.items, t.total = items, bytes
	t.mu.Unlock()
	if t.bar != nil {
		t.bar.SetTotal(max(bytes, 1), false)
	}
}

// Step counts one item done that has no line of its own (a blob).
func (t *Tracker) Step() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.done++
	t.mu.Unlock()
}

func (t *Tracker) itemsDecor(decor.Statistics) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.items == 0 {
		return fmt.Sprintf("%d", t.done)
	}
	return fmt.Sprintf("%d/%d", t.done, t.items)
}

// Add counts n bytes moved.
func (t *Tracker) Add(n int64) {
	if t == nil || n == 0 {
		return
	}
	t.mu.Lock()
	t.moved += n
	moved, line := t.moved, ""
	if t.mode == Plain && t.total > 0 && !t.perItem {
		if tenth := moved * 10 / t.total; tenth > t.tenth && tenth < 10 {
			t.tenth = tenth
			line = fmt.Sprintf("%s: %d%%, %s of %s, %s/s\n", t.what, tenth*10, units.Bytes(moved), units.Bytes(t.total), t.rate(moved))
		}
	}
	t.mu.Unlock()
	if t.bar != nil {
		t.bar.IncrInt64(n)
	}
	if line != "" {
		fmt.Fprint(t.w, line)
	}
}

func (t *Tracker) rate(n int64) string {
	secs := time.Since(t.start).Seconds()
	if secs <= 0 {
		return units.Bytes(0)
	}
	return units.Bytes(int64(float64(n) / secs))
}

// Images says that the job will log n images with ImageDone (off a terminal, one line each
// instead of a line per tenth of the bytes).
func (t *Tracker) Images(n int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.images, t.perItem = n, true
	t.mu.Unlock()
}

// ImageDone logs, off a terminal, that image name is complete (a job that goes blob by blob:
// every blob of the image has gone by). On a terminal the bar says enough.
func (t *Tracker) ImageDone(name string, size int64) {
	if t == nil || t.mode != Plain {
		return
	}
	t.mu.Lock()
	t.imagesDone++
	i, n := t.imagesDone, t.images
	t.mu.Unlock()
	fmt.Fprintf(t.w, "%s %s (%s) %d/%d\n", t.what, name, units.Bytes(size), i, n)
}

// Item is one image (or blob) in flight.
type Item struct {
	t    *Tracker
	name string
	size int64
	bar  *mpb.Bar
}

// Start shows an item in flight: on a terminal, a line of its own until it is done.
func (t *Tracker) Start(name string, size int64) *Item {
	it := &Item{t: t, name: name, size: size}
	if t != nil {
		t.mu.Lock()
		t.perItem = true
		t.mu.Unlock()
	}
	if t != nil && t.p != nil {
		it.bar = t.p.New(0, mpb.SpinnerStyle(), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name("  "+name, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Name(units.Bytes(size), decor.WCSyncSpace), decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)))
	}
	return it
}

// Done ends an item: off a terminal, one line ("image repo:tag (12.3 MiB) 5/160").
func (it *Item) Done(err error) {
	t := it.t
	if t == nil {
		return
	}
	t.mu.Lock()
	t.done++
	n, items := t.done, t.items
	t.mu.Unlock()
	if it.bar != nil {
		it.bar.SetTotal(-1, true)
	}
	if t.mode == Plain {
		state := ""
		if err != nil {
			state = " FAILED"
		}
		fmt.Fprintf(t.w, "%s %s (%s) %d/%d%s\n", t.what, it.name, units.Bytes(it.size), n, items, state)
	}
}

// Finish ends the display: the bar completes (or is dropped on failure) and every line is
// drawn before Finish returns, so that what is printed next starts on a clean line.
func (t *Tracker) Finish(ok bool) {
	if t == nil || t.finished {
		return
	}
	t.finished = true
	if t.bar == nil {
		return
	}
	if ok {
		t.bar.SetTotal(-1, true)
	} else {
		t.bar.Abort(false)
	}
	t.p.Wait()
}

// Source wraps src so that every byte read from its blobs is counted on t.
func Source(src layout.Source, t *Tracker) layout.Source {
	if t == nil || t.mode == Quiet {
		return src
	}
	if fs, ok := src.(layout.FileSource); ok {
		return countingFileSource{countingSource{fs, t}, fs, &sync.Map{}}
	}
	return countingSource{src, t}
}

type countingSource struct {
	layout.Source
	t *Tracker
}

func (c countingSource) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	rc, err := c.Source.OpenBlob(repo, d)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, c.t}, nil
}

// Unwrap returns the source counted, which referrer discovery asks directly for tags and
// referrers (layout.Wrapper).
func (c countingSource) Unwrap() layout.Source { return c.Source }

// Check forwards the access check of a live registry (layout.Checker).
func (c countingSource) Check(repo string, push bool) error {
	if ch, ok := c.Source.(layout.Checker); ok {
		return ch.Check(repo, push)
	}
	return nil
}

// countingFileSource keeps BlobPath, so hard links stay hard links. A blob asked for by path is
// linked, not read: its size counts once, when its path is first asked for, and a read of it
// afterwards (the copy when linking failed) is not counted again.
type countingFileSource struct {
	countingSource
	fs     layout.FileSource
	byPath *sync.Map // digests counted by BlobPath
}

func (c countingFileSource) BlobPath(repo string, d layout.Descriptor) (string, error) {
	p, err := c.fs.BlobPath(repo, d)
	if err == nil {
		if _, seen := c.byPath.LoadOrStore(d.Digest, true); !seen {
			c.t.Add(d.Size)
		}
	}
	return p, err
}

func (c countingFileSource) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	if _, counted := c.byPath.Load(d.Digest); counted {
		return c.fs.OpenBlob(repo, d)
	}
	return c.countingSource.OpenBlob(repo, d)
}

type countingReader struct {
	io.ReadCloser
	t *Tracker
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.t.Add(int64(n))
	return n, err
}
