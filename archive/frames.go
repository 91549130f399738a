package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Framing (docs/bundle-format.md §2.1): the writer compresses the tar stream as independent
// zstd frames of at most FrameSize uncompressed bytes, starting a new frame at each phase
// (catalog, blobs, links) and before every blob of at least cutSize bytes, and ends the file
// with a seek table in the zstd seekable format (a skippable frame that plain zstd skips).
// With the table a reader decompresses frames on every core; without it, it streams.
const (
	// FrameSize is the most uncompressed bytes bale puts in one frame.
	FrameSize = 1 << 20
	// cutSize: a blob member at least this big starts a frame of its own.
	cutSize = 64 << 10
	// maxTableFrame bounds a frame's decompressed size for the parallel reader; a seek table
	// with a larger frame is ignored and the bundle is streamed.
	maxTableFrame = 16 << 20
)

// The zstd seekable format (zstd's contrib/seekable_format, version 0.1).
const (
	skippableSeekMagic = 0x184D2A5E
	seekableMagic      = 0x8F92EAB1
	seekFooterSize     = 9
	seekEntrySize      = 8 // no checksums: every frame has its own content checksum
)

// seekEntry is one frame of the seek table.
type seekEntry struct{ comp, raw uint32 }

// frameJob is one frame on its way through the encoder pool or the decoder pool.
type frameJob struct {
	in, out []byte
	err     error
	done    chan struct{}
}

// frameWriter compresses what is written to it as independent zstd frames on a pool of
// goroutines and writes them, in order, to w; Close ends the last frame and writes the seek
// table. Its output does not depend on the scheduling.
type frameWriter struct {
	w       io.Writer
	enc     *zstd.Encoder
	buf     []byte
	jobs    chan *frameJob // to the encoders
	order   chan *frameJob // to the writer goroutine, in frame order
	free    chan []byte    // recycled buffers
	wg      sync.WaitGroup
	done    chan struct{} // closed when the writer goroutine has finished
	mu      sync.Mutex
	err     error
	entries []seekEntry
	closed  bool
}

// newFrameWriter starts a frameWriter at level on as many goroutines as GOMAXPROCS.
func newFrameWriter(w io.Writer, level zstd.EncoderLevel) (*frameWriter, error) {
	workers := runtime.GOMAXPROCS(0)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers),
		zstd.WithWindowSize(FrameSize)) // a frame never looks further back than itself
	if err != nil {
		return nil, err
	}
	inflight := min(workers+2, 8)
	fw := &frameWriter{
		w:     w,
		enc:   enc,
		jobs:  make(chan *frameJob, inflight),
		order: make(chan *frameJob, inflight),
		free:  make(chan []byte, inflight),
		done:  make(chan struct{}),
	}
	fw.buf = fw.buffer()
	for range workers {
		fw.wg.Go(func() {
			for j := range fw.jobs {
				j.out = fw.enc.EncodeAll(j.in, fw.buffer())
				close(j.done)
			}
		})
	}
	go fw.writeLoop()
	return fw, nil
}

func (fw *frameWriter) buffer() []byte {
	select {
	case b := <-fw.free:
		return b[:0]
	default:
		return make([]byte, 0, FrameSize+FrameSize/64+1024)
	}
}

func (fw *frameWriter) recycle(b []byte) {
	select {
	case fw.free <- b:
	default:
	}
}

func (fw *frameWriter) writeLoop() {
	defer close(fw.done)
	for j := range fw.order {
		<-j.done
		if fw.failed() == nil {
			if _, err := fw.w.Write(j.out); err != nil {
				fw.fail(err)
			} else {
				fw.entries = append(fw.entries, seekEntry{comp: uint32(len(j.out)), raw: uint32(len(j.in))})
			}
		}
		fw.recycle(j.in)
		fw.recycle(j.out)
	}
}

func (fw *frameWriter) fail(err error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err == nil {
		fw.err = err
	}
}

func (fw *frameWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

// Write buffers p, handing every full frame to the encoders.
func (fw *frameWriter) Write(p []byte) (int, error) {
	if err := fw.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), FrameSize-len(fw.buf))
		fw.buf = append(fw.buf, p[:k]...)
		p = p[k:]
		if len(fw.buf) == FrameSize {
			fw.Cut()
		}
	}
	return n, nil
}

// Cut ends the current frame, if it holds anything: the next byte written starts a new one.
func (fw *frameWriter) Cut() {
	if len(fw.buf) == 0 {
		return
	}
	j := &frameJob{in: fw.buf, done: make(chan struct{})}
	fw.order <- j
	fw.jobs <- j
	fw.buf = fw.buffer()
}

// Close ends the last frame, waits for every frame to be written and writes the seek table.
func (fw *frameWriter) Close() error {
	if err := fw.closeFrames(); err != nil {
		return err
	}
	_, err := fw.w.Write(appendSeekTable(nil, fw.entries))
	return err
}

// closeFrames ends the last frame and waits for every frame to be written; the entries are
// then complete.
func (fw *frameWriter) closeFrames() error {
	if fw.closed {
		return fw.failed()
	}
	fw.closed = true
	fw.Cut()
	close(fw.jobs)
	close(fw.order)
	fw.wg.Wait()
	<-fw.done
	fw.enc.Close()
	return fw.failed()
}

// appendSeekTable appends the skippable frame holding the seek table of entries to b.
func appendSeekTable(b []byte, entries []seekEntry) []byte {
	b = binary.LittleEndian.AppendUint32(b, skippableSeekMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)*seekEntrySize+seekFooterSize))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint32(b, e.comp)
		b = binary.LittleEndian.AppendUint32(b, e.raw)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	b = append(b, 0) // descriptor: no checksums
	return binary.LittleEndian.AppendUint32(b, seekableMagic)
}

// seekTable is a validated seek table: frame i spans off[i]..off[i+1] of the file and
// decompresses to raw[i] bytes.
type seekTable struct {
	off []int64
	raw []uint32
}

// frames is the number of frames in the table.
func (t *seekTable) frames() int { return len(t.raw) }

// errNoSeekTable: the file has no usable seek table; read it as a stream.
var errNoSeekTable = errors.New("no seek table")

// readSeekTable reads the seek table at the end of the file r of size bytes. It returns
// errNoSeekTable when there is none or when it does not describe the file exactly (frames
// must cover every byte before the table, each at most maxTableFrame decompressed); the
// frames themselves are checked as they are decoded.
func readSeekTable(r io.ReaderAt, size int64) (*seekTable, error) {
	if size < 8+seekFooterSize {
		return nil, errNoSeekTable
	}
	var foot [seekFooterSize]byte
	if _, err := r.ReadAt(foot[:], size-seekFooterSize); err != nil {
		return nil, fmt.Errorf("reading the seek table: %w", err)
	}
	if binary.LittleEndian.Uint32(foot[5:]) != seekableMagic || foot[4] != 0 {
		return nil, errNoSeekTable
	}
	n := int64(binary.LittleEndian.Uint32(foot[:4]))
	tableSize := 8 + n*seekEntrySize + seekFooterSize
	if tableSize > size {
		return nil, errNoSeekTable
	}
	buf := make([]byte, tableSize-seekFooterSize)
	if _, err := r.ReadAt(buf, size-tableSize); err != nil {
		return nil, fmt.Errorf("reading the seek table: %w", err)
	}
	if binary.LittleEndian.Uint32(buf) != skippableSeekMagic || int64(binary.LittleEndian.Uint32(buf[4:])) != tableSize-8 {
		return nil, errNoSeekTable
	}
	t := &seekTable{off: make([]int64, 1, n+1), raw: make([]uint32, 0, n)}
	for i := int64(0); i < n; i++ {
		e := buf[8+i*seekEntrySize:]
		comp, raw := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
		if comp == 0 || raw > maxTableFrame || comp > maxTableFrame+maxTableFrame/64+1024 {
			return nil, errNoSeekTable
		}
		t.off = append(t.off, t.off[i]+int64(comp))
		t.raw = append(t.raw, raw)
	}
	if t.off[n] != size-tableSize {
		return nil, errNoSeekTable
	}
	return t, nil
}

// decode decodes frame i, whose bytes are in, with dec into out[:0]; a frame that does not
// decode to exactly its table size is an error.
func (t *seekTable) decode(i int, dec *zstd.Decoder, in, out []byte) ([]byte, error) {
	out, err := dec.DecodeAll(in, out[:0])
	switch {
	case err != nil:
		return out, fmt.Errorf("frame %d at offset %d: %w", i, t.off[i], err)
	case len(out) != int(t.raw[i]):
		return out, fmt.Errorf("frame %d at offset %d decodes to %d bytes, the seek table says %d", i, t.off[i], len(out), t.raw[i])
	}
	return out, nil
}

// frameReader is the decompressed stream of a file with a seek table: frames are read and
// decoded on a pool of goroutines, a bounded number ahead, and returned in order. A frame
// that does not decode to exactly its table size fails the stream.
type frameReader struct {
	cancel context.CancelFunc
	order  chan *frameJob
	cur    *frameJob
	rest   []byte
	err    error
	free   chan []byte
	wg     sync.WaitGroup
}

// newFrameReader starts decoding the frames of t from r with dec (whose concurrency bounds
// the parallel DecodeAll calls) on workers goroutines.
func newFrameReader(r io.ReaderAt, t *seekTable, dec *zstd.Decoder, workers int) *frameReader {
	ctx, cancel := context.WithCancel(context.Background())
	inflight := min(workers+2, 8)
	fr := &frameReader{cancel: cancel, order: make(chan *frameJob, inflight), free: make(chan []byte, inflight)}
	jobs := make(chan struct {
		j *frameJob
		i int
	}, inflight)
	fr.wg.Go(func() {
		defer close(fr.order)
		defer close(jobs)
		for i := range t.frames() {
			j := &frameJob{done: make(chan struct{})}
			select {
			case fr.order <- j:
			case <-ctx.Done():
				return
			}
			jobs <- struct {
				j *frameJob
				i int
			}{j, i}
		}
	})
	for range workers {
		fr.wg.Go(func() {
			for job := range jobs {
				j, i := job.j, job.i
				in := fr.buffer(int(t.off[i+1] - t.off[i]))
				if _, err := r.ReadAt(in, t.off[i]); err != nil {
					j.err = fmt.Errorf("reading frame %d at offset %d: %w", i, t.off[i], err)
				} else {
					j.out, j.err = t.decode(i, dec, in, fr.buffer(int(t.raw[i])))
				}
				fr.recycle(in)
				close(j.done)
			}
		})
	}
	return fr
}

// buffer returns a slice of length n, recycled when one is big enough.
func (fr *frameReader) buffer(n int) []byte {
	select {
	case b := <-fr.free:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n, max(n, FrameSize))
}

func (fr *frameReader) recycle(b []byte) {
	if b == nil {
		return
	}
	select {
	case fr.free <- b:
	default:
	}
}

// Read implements io.Reader.
func (fr *frameReader) Read(p []byte) (int, error) {
	for len(fr.rest) == 0 {
		if fr.err != nil {
			return 0, fr.err
		}
		if fr.cur != nil {
			fr.recycle(fr.cur.out)
			fr.cur = nil
		}
		j, ok := <-fr.order
		if !ok {
			fr.err = io.EOF
			continue
		}
		<-j.done
		if j.err != nil {
			fr.err = j.err
			continue
		}
		fr.cur, fr.rest = j, j.out
	}
	n := copy(p, fr.rest)
	fr.rest = fr.rest[n:]
	return n, nil
}

// Close stops the decoders and waits for them.
func (fr *frameReader) Close() {
	fr.cancel()
	go func() {
		for range fr.order { // unblock the feeder
		}
	}()
	fr.wg.Wait()
}
