package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Unpack's blob pipeline: the bundle is one ordered stream, but a blob's sha256 and its file
// write need not hold up the next blob. The reading goroutine copies each blob's bytes into
// pooled chunks and hands them to a goroutine of the blob's own, which verifies and stores
// them while the reader goes on: up to GOMAXPROCS blobs at a time, and a fixed number of
// chunks in flight (memory does not grow with the bundle).
const (
	chunkSize = 1 << 20
	chunks    = 16
)

// errAborted: the bundle could not be read to the end of the blob; add reports why.
var errAborted = errors.New("blob cut short by a read error")

// errStopped: a blob of the pipeline failed; wait says why.
var errStopped = errors.New("blob pipeline stopped")

// blobPipeline runs the verify-and-store work of blobs on a bounded pool of goroutines.
type blobPipeline struct {
	keepGoing bool          // a failed store does not stop add (verify reports every blob)
	slots     chan struct{} // one per blob in flight
	free      chan []byte   // chunk buffers
	wg        sync.WaitGroup
	mu        sync.Mutex
	errs      []error
}

// newBlobPipeline returns a pipeline storing up to slots blobs at once (GOMAXPROCS when 0).
func newBlobPipeline(slots int) *blobPipeline {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	p := &blobPipeline{slots: make(chan struct{}, slots), free: make(chan []byte, chunks)}
	for range chunks {
		p.free <- make([]byte, chunkSize)
	}
	return p
}

// add reads the d.Size bytes of blob d from r on the calling goroutine and runs store on
// another, on a reader of those bytes verified against d (reading it to EOF fails with
// layout.ErrDigestMismatch if they do not match). store must read to EOF to verify. An error
// reading r is returned; errors of store are collected for wait. Once a store has failed,
// add returns errStopped at once.
func (p *blobPipeline) add(d layout.Descriptor, r io.Reader, store func(v *layout.Verifier) error) error {
	if !p.keepGoing && p.failed() != nil {
		return errStopped
	}
	p.slots <- struct{}{}
	ch := make(chan []byte, chunks)
	cr := &chunkReader{ch: ch, free: p.free}
	p.wg.Go(func() {
		defer func() { <-p.slots }()
		if err := store(layout.NewVerifier(cr, d)); err != nil && !errors.Is(err, errAborted) {
			p.fail(err)
		}
		cr.drain()
	})
	defer close(ch)
	for left := d.Size; left > 0; {
		buf := <-p.free
		n := int(min(left, int64(len(buf))))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			p.free <- buf
			cr.aborted = true // before close(ch): the store sees it with the end of the chunks
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading bundle: %v (truncated or damaged): %w", err, ErrBundle)
		}
		ch <- buf[:n]
		left -= int64(n)
	}
	return nil
}

// feed reads every member of br and hands each blob to add, to be stored by store (called with
// the blob, its member name and a verifying reader of its bytes). It returns the first error
// reading the bundle, ctx's error, or errStopped once a store has failed (unless keepGoing);
// the caller then waits for the stores.
func (p *blobPipeline) feed(ctx context.Context, br *Reader, store func(d layout.Descriptor, name string, v *layout.Verifier) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := br.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ok := m.Spec.(registry.BlobData); !ok {
			continue // links are written from the catalog, after every blob
		}
		d, name := m.Blob, m.Name
		err = p.add(d, m.take(), func(v *layout.Verifier) error { return store(d, name, v) })
		if errors.Is(err, errStopped) {
			return err
		}
		if err != nil {
			return fmt.Errorf("bundle member %s: %w", name, err)
		}
	}
}

func (p *blobPipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

func (p *blobPipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// wait waits for every blob and returns their errors: every one with keepGoing; else the
// first, with the count of the others (blobs that were in flight when it failed, which mostly
// failed the same way: an access denied or a full store would otherwise be told once per blob).
func (p *blobPipeline) wait() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keepGoing || len(p.errs) <= 1 {
		return errors.Join(p.errs...)
	}
	return fmt.Errorf("%w\n(and %d more blobs that were being stored failed)", p.errs[0], len(p.errs)-1)
}

// waitAll waits for every blob and returns their errors one by one.
func (p *blobPipeline) waitAll() []error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs
}

// chunkReader reads the chunks of one blob, returning each to the pool once used. It is an
// io.WriterTo, so a layout.Verifier hands the chunks on without copying them.
type chunkReader struct {
	ch   <-chan []byte
	free chan<- []byte
	cur  []byte // the chunk being read
	rest []byte // its unread part
	// aborted is set before ch is closed when the blob could not be read whole: the end of
	// the chunks is then errAborted, not io.EOF.
	aborted bool
}

func (c *chunkReader) end() error {
	if c.aborted {
		return errAborted
	}
	return io.EOF
}

func (c *chunkReader) next() bool {
	if c.cur != nil {
		c.free <- c.cur[:cap(c.cur)]
		c.cur = nil
	}
	b, ok := <-c.ch
	if !ok {
		return false
	}
	c.cur, c.rest = b, b
	return true
}

// Read implements io.Reader.
func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		if !c.next() {
			return 0, c.end()
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// WriteTo implements io.WriterTo.
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(c.rest) == 0 && !c.next() {
			if err := c.end(); err != io.EOF {
				return total, err
			}
			return total, nil
		}
		n, err := w.Write(c.rest)
		total += int64(n)
		c.rest = c.rest[n:]
		if err != nil {
			return total, err
		}
	}
}

// drain returns every remaining chunk to the pool.
func (c *chunkReader) drain() {
	for c.next() {
	}
}
