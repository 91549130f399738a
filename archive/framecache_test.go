package archive_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
)

// bigBundle writes a bundle whose one big layer spans about size bytes of frames, and returns
// its path and the layer's digest and size.
func bigBundle(t *testing.T, size int) (string, digest.Digest, int64) {
	path, big := bigBundleBytes(t, size)
	return path, digest.FromBytes(big), int64(len(big))
}

// bigBundleBytes is bigBundle, returning the layer's bytes.
func bigBundleBytes(t *testing.T, size int) (string, []byte) {
	t.Helper()
	fx := bigFixture(t, size)
	path := filepath.Join(t.TempDir(), "big.tar.zst")
	if err := os.WriteFile(path, fx.bundle(t), 0o644); err != nil {
		t.Fatal(err)
	}
	var big []byte
	for _, b := range fx.blobs {
		if len(b) > len(big) {
			big = b
		}
	}
	return path, big
}

// TestRangeReadsAllocate: 64 concurrent 1 MiB range reads spread over a 16 MiB layer, as bale
// serve answers Range requests (seek, then copy through a 32 KiB buffer), allocate a bounded
// amount however many run: decoded frames are shared and their buffers reused, not made per
// request (bale 0.1.x: 2 MiB or more per request, 64 requests about 200 MiB).
func TestRangeReadsAllocate(t *testing.T) {
	path, d, size := bigBundle(t, 16<<20)
	b, err := archive.OpenRandom(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const readers, span = 64, 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for k := range readers {
		wg.Go(func() {
			rs, _, err := b.OpenBlob(d)
			if err != nil {
				errs <- err
				return
			}
			defer rs.Close()
			off := int64(k) * (size - span) / readers // spread, not frame-aligned
			if _, err := rs.Seek(off, io.SeekStart); err != nil {
				errs <- err
				return
			}
			buf := make([]byte, 32<<10)
			if n, err := io.CopyBuffer(io.Discard, io.LimitReader(rs, span), buf); err != nil || n != span {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d concurrent 1 MiB range reads allocated %.1f MiB", readers, float64(got)/(1<<20))
	if got > 48<<20 {
		t.Errorf("%d concurrent 1 MiB range reads allocated %.1f MiB, want at most 48", readers, float64(got)/(1<<20))
	}
}

// TestFrameBudget: readers that each hold a frame never hold more than the budget together;
// those that find no room wait until a reader lets its frame go, then all finish; readers of
// the same frame share one decode.
func TestFrameBudget(t *testing.T) {
	path, d, size := bigBundle(t, 12<<20)
	restore := archive.SetFrameBudget(4*archive.FrameSize, time.Hour)
	defer restore()
	b, err := archive.OpenRandom(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Eight readers one frame apart, each reading one byte and so holding one frame (not the
	// layer's first, which OpenBlob decoded to check its tar header).
	const n = 8
	var rss []io.ReadSeekCloser
	for k := range n {
		rs, _, err := b.OpenBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Seek(int64(k+1)*archive.FrameSize+archive.FrameSize/2, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rss = append(rss, rs)
	}
	_, _, _, decodes0 := archive.FrameStats()
	read := make(chan int, n)
	for k, rs := range rss {
		go func() {
			if _, err := io.ReadFull(rs, make([]byte, 1)); err != nil {
				t.Error(err)
			}
			read <- k
		}()
	}
	// Four get their frame (the budget), four wait. Polled: what is checked is the state
	// reached, not how soon.
	var done []int
	for deadline := time.Now().Add(time.Minute); ; {
		select {
		case k := <-read:
			done = append(done, k)
		case <-time.After(time.Millisecond):
		}
		_, _, waiting, _ := archive.FrameStats()
		if len(done) == 4 && waiting == 4 {
			break
		}
		if len(done) > 4 || time.Now().After(deadline) {
			t.Fatalf("%d readers read and %d wait, want 4 and 4", len(done), waiting)
		}
	}
	budget, peak, _, _ := archive.FrameStats()
	if peak > budget {
		t.Errorf("held %d bytes of frames, budget %d", peak, budget)
	}
	// Each reader that read lets its frame go: a waiting one goes on.
	for _, k := range done {
		rss[k].Close()
	}
	for range n - 4 {
		k := <-read
		rss[k].Close()
	}
	budget, peak, waiting, decodes := archive.FrameStats()
	if peak > budget || waiting != 0 || decodes-decodes0 != n {
		t.Errorf("after all: peak %d (budget %d), %d waiting, %d frames decoded for %d readers", peak, budget, waiting, decodes-decodes0, n)
	}

	// Two readers of one frame, holding it together: one decode.
	_, _, _, decodes0 = archive.FrameStats()
	for range 2 { // both readers stay open (closed at the end) while the second reads
		rs, _, err := b.OpenBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		rs.Seek(size-100, io.SeekStart)
		if _, err := io.ReadFull(rs, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, decodes := archive.FrameStats(); decodes-decodes0 != 1 {
		t.Errorf("two readers of one frame: %d decodes, want 1", decodes-decodes0)
	}
}

// TestFrameStalled: a reader that holds a frame and stops reading (a client that stalls) does
// not keep the others waiting: once it has been idle long enough, a reader that finds no room
// takes its frame; it reads on afterwards, decoding the frame again, and gets the right bytes,
// the whole blob still checked against its digest.
func TestFrameStalled(t *testing.T) {
	path, big := bigBundleBytes(t, 6<<20)
	d := digest.FromBytes(big)
	restore := archive.SetFrameBudget(2*archive.FrameSize, time.Millisecond)
	defer restore()
	b, err := archive.OpenRandom(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	open := func(off int64) io.ReadSeekCloser {
		rs, _, err := b.OpenBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	// Two stalled readers fill the budget: the whole blob from its start, and one from its
	// third frame on.
	whole, third := open(0), open(2*archive.FrameSize+7)
	defer whole.Close()
	defer third.Close()
	first := make([]byte, 100)
	if _, err := io.ReadFull(whole, first); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(third, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// A third reader goes on, taking a stalled one's frame.
	late := open(4 * archive.FrameSize)
	defer late.Close()
	got, err := io.ReadAll(io.LimitReader(late, archive.FrameSize))
	if err != nil || !bytes.Equal(got, big[4*archive.FrameSize:5*archive.FrameSize]) {
		t.Fatalf("the third reader: %d bytes, %v", len(got), err)
	}
	// The stalled readers read on: the right bytes, and the whole blob hashes to its digest.
	rest, err := io.ReadAll(whole)
	if err != nil {
		t.Fatalf("the whole blob after the stall: %v", err)
	}
	if !bytes.Equal(append(first, rest...), big) {
		t.Error("the whole blob after the stall: wrong bytes")
	}
	got, err = io.ReadAll(io.LimitReader(third, 3*archive.FrameSize))
	if want := big[2*archive.FrameSize+8 : 5*archive.FrameSize+8]; err != nil || !bytes.Equal(got, want) {
		t.Errorf("the third-frame reader after the stall: %d bytes, %v", len(got), err)
	}
	if budget, peak, waiting, _ := archive.FrameStats(); peak > budget || waiting != 0 || archive.FramesTaken() == 0 {
		t.Errorf("peak %d (budget %d), %d waiting, %d frames taken from stalled readers", peak, budget, waiting, archive.FramesTaken())
	}
}
