package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Bundle is a bundle opened for random access (bale serve): its catalog, and where each
// carried blob's bytes lie in the tar stream. With a seek table, reading a blob decodes only
// the frames that hold it; without one (bundles of bale 0.1) the stream is decoded from the
// start up to the blob, every time.
type Bundle struct {
	Path    string
	Catalog *catalog.Catalog
	ra      io.ReaderAt
	size    int64
	close   func()
	table   *seekTable
	rawOff  []int64                 // decompressed offset of each frame; rawOff[n] is the stream's length
	blobs   map[digest.Digest]int64 // data offset of each carried blob in the tar stream
	// checked holds, by its data offset (a key that keeps no digest string alive), each blob
	// whose tar header was checked, with the outcome.
	checkMu sync.Mutex
	checked map[int64]error
	hdrLens headerLengths // layout's, then checkHeader's under checkMu
}

// OpenRandom opens the bundle at path (a file or a volume set) for random access: it reads
// the catalog and lays out the members as the writer does; with a seek table, the layout must
// end where the stream ends, or the bundle is refused.
func OpenRandom(ctx context.Context, path string) (*Bundle, error) {
	c, catSize, err := readCatalogFile(path)
	if err != nil {
		return nil, err
	}
	ra, size, release, err := openRandomAccess(ctx, path, c)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Path: path, Catalog: c, ra: ra, size: size, close: release, blobs: map[digest.Digest]int64{}}
	end, err := b.layout(catSize)
	if err == nil {
		b.table, err = readSeekTable(ra, size)
		if errors.Is(err, errNoSeekTable) {
			b.table, err = nil, nil
		}
	}
	if err == nil && b.table != nil {
		b.rawOff = make([]int64, len(b.table.raw)+1)
		for i, r := range b.table.raw {
			b.rawOff[i+1] = b.rawOff[i] + int64(r)
		}
		if b.rawOff[len(b.table.raw)] != end {
			err = fmt.Errorf("its frames hold %d bytes of tar, its catalog lays out %d (written by another bale? unpack it instead): %w", b.rawOff[len(b.table.raw)], end, ErrBundle)
		}
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// layout computes the data offset of every carried blob, as Write lays the members out after
// a catalog member of dbSize bytes and the list and signature members its meta records, and returns the length of the tar stream.
func (b *Bundle) layout(dbSize int64) (int64, error) {
	c := b.Catalog
	b.hdrLens = headerLengths{mtime: c.Meta.Created.UTC().Truncate(time.Second)}
	hl := &b.hdrLens
	var off int64
	member := func(name string, mode, size int64) (int64, error) {
		n, err := hl.of(name, mode, size)
		if err != nil {
			return 0, err
		}
		data := off + n
		off = data + (size+tarBlock-1)/tarBlock*tarBlock
		return data, nil
	}
	if _, err := member(CatalogName, 0o444, dbSize); err != nil {
		return 0, err
	}
	if l := c.Meta.List; l != nil { // read and checked with the catalog (readList)
		if _, err := member(ListName, 0o444, l.Size); err != nil {
			return 0, err
		}
	}
	for i, size := range c.Meta.Signatures { // read and checked with the catalog (readSignatures)
		if _, err := member(SignatureName(i+1), 0o444, size); err != nil {
			return 0, err
		}
	}
	for _, d := range c.CarriedBlobs() {
		name, err := registry.PathFor(registry.BlobData{Digest: d})
		if err != nil {
			return 0, err
		}
		if b.blobs[d], err = member(name, 0o444, c.Blobs[d].Size); err != nil {
			return 0, err
		}
	}
	for _, spec := range Links(c) {
		name, err := registry.PathFor(spec)
		if err != nil {
			return 0, err
		}
		if _, err := member(name, 0o644, linkSize); err != nil {
			return 0, err
		}
	}
	return off + 2*tarBlock, nil
}

// headerLengths gives the length of the tar header Write puts before a member, asking
// archive/tar once per shape of header: the length depends only on the name's length, where
// its slashes (and NULs) are and whether it is ASCII (the USTAR split, or a PAX record), on
// the mode and on whether the size fits USTAR's octal field (else on its digits), so names
// that differ in other bytes (the digests of a bundle's blob and link members, most of them)
// share one answer.
type headerLengths struct {
	mtime time.Time
	known map[string]int64
	key   []byte
}

// of is the length of the header of member name of size bytes.
func (h *headerLengths) of(name string, mode, size int64) (int64, error) {
	h.key = h.key[:0]
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == 0 || c >= 0x80:
			h.key = append(h.key, c)
		default:
			h.key = append(h.key, 'x')
		}
	}
	big := 0 // digits of a size USTAR's octal field cannot hold (a PAX record)
	if size >= 1<<33 {
		big = len(strconv.FormatInt(size, 10))
	}
	h.key = fmt.Appendf(h.key, "|%o|%d", mode, big)
	if n, ok := h.known[string(h.key)]; ok {
		return n, nil
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(memberHeader(name, mode, size, h.mtime)); err != nil {
		return 0, err
	}
	if h.known == nil {
		h.known = map[string]int64{}
	}
	h.known[string(h.key)] = int64(buf.Len())
	return int64(buf.Len()), nil
}

// setChecked records the outcome of checking the tar header of the blob whose data is at start.
func (b *Bundle) setChecked(start int64, err error) {
	b.checkMu.Lock()
	defer b.checkMu.Unlock()
	if b.checked == nil {
		b.checked = map[int64]error{}
	}
	b.checked[start] = err
}

// Close releases the files, and the bundle's decoded frames.
func (b *Bundle) Close() error {
	if b.table != nil {
		frames.forget(b)
	}
	if b.close != nil {
		b.close()
	}
	return nil
}

// OpenBlob returns a reader of carried blob d that can seek (for Range requests); close it. Read
// through from the start, it fails at the end with layout.ErrDigestMismatch unless the bytes
// hash to d; any frame that fails its checksum fails the read.
func (b *Bundle) OpenBlob(d digest.Digest) (io.ReadSeekCloser, int64, error) {
	start, ok := b.blobs[d]
	if !ok {
		return nil, 0, fmt.Errorf("blob %s: %w", d, layout.ErrNotFound)
	}
	size := b.Catalog.Blobs[d].Size
	if err := b.checkHeader(d, start, size); err != nil {
		return nil, 0, err
	}
	return &blobReader{b: b, d: d, start: start, size: size, h: sha256.New()}, size, nil
}

// checkHeader checks, once per blob, that the tar header before start names d's member with
// its size: the layout computed from the catalog is the bundle's.
func (b *Bundle) checkHeader(d digest.Digest, start, size int64) error {
	b.checkMu.Lock()
	err, ok := b.checked[start]
	b.checkMu.Unlock()
	if ok {
		return err
	}
	name, _ := registry.PathFor(registry.BlobData{Digest: d})
	b.checkMu.Lock()
	n, err := b.hdrLens.of(name, 0o444, size)
	b.checkMu.Unlock()
	var got []byte
	if err == nil {
		got = make([]byte, n)
		_, err = b.readRaw(got, start-n)
	}
	if err == nil {
		var hdr *tar.Header
		hdr, err = tar.NewReader(bytes.NewReader(got)).Next()
		if err == nil && (hdr.Name != name || hdr.Size != size) {
			err = fmt.Errorf("the member at that place is %s of %d bytes", hdr.Name, hdr.Size)
		}
	}
	switch {
	case errors.Is(err, ErrBundle): // a damaged frame: it says so, and wraps ErrBundle
		err = fmt.Errorf("blob %s: reading its tar header: %w", d, err)
	case err != nil:
		err = fmt.Errorf("blob %s is not where the catalog lays it out: %v: %w", d, err, ErrBundle)
	}
	b.setChecked(start, err)
	return err
}

// readRaw reads len(p) bytes of the decompressed stream at off.
func (b *Bundle) readRaw(p []byte, off int64) (int, error) {
	if b.table == nil {
		st, err := openStream(io.NewSectionReader(b.ra, 0, b.size))
		if err != nil {
			return 0, err
		}
		defer st.release()
		if _, err := io.CopyN(io.Discard, st.dec, off); err != nil {
			return 0, err
		}
		return io.ReadFull(st.dec, p)
	}
	total := 0
	for len(p) > 0 {
		f, rest, err := b.frameFrom(off)
		if err != nil {
			return total, err
		}
		n := copy(p, rest)
		frames.done(f)
		frames.release(f)
		total += n
		p, off = p[n:], off+int64(n)
	}
	return total, nil
}

// frameFrom returns the frame holding offset off of the decompressed stream (there is a seek
// table), decoded, held and in use (done, then release it), and its bytes from off on.
func (b *Bundle) frameFrom(off int64) (*cachedFrame, []byte, error) {
	i := sort.Search(len(b.rawOff)-1, func(i int) bool { return b.rawOff[i+1] > off })
	if i >= len(b.table.raw) {
		return nil, nil, io.ErrUnexpectedEOF
	}
	f, err := frames.get(b, i)
	if err != nil {
		return nil, nil, err
	}
	return f, f.data[off-b.rawOff[i]:], nil
}

// streams are the one-stream decoders, each with a buffer, for bundles without a seek table
// (bale 0.1): reading a blob decodes the stream from its start, with a window of up to
// maxWindow, so few run at once, each reused. A reader holds one from its first read until
// it closes or seeks.
var streams = func() chan *stream {
	c := make(chan *stream, 2)
	for range cap(c) {
		c <- &stream{}
	}
	return c
}()

// stream is a one-stream decoder and the buffer its reader fills.
type stream struct {
	dec *zstd.Decoder
	buf []byte
}

// openStream waits for a free stream and sets it to decode r from its start.
func openStream(r io.Reader) (*stream, error) {
	st := <-streams
	var err error
	if st.dec == nil {
		st.dec, err = zstd.NewReader(r, decoderOptions(zstd.WithDecoderConcurrency(1))...)
	} else {
		err = st.dec.Reset(r)
	}
	if err != nil {
		if st.dec != nil {
			st.dec.Close()
		}
		streams <- &stream{}
		return nil, err
	}
	return st, nil
}

// release gives the stream back.
func (st *stream) release() { streams <- st }

// blobReader reads one blob of a Bundle.
type blobReader struct {
	b           *Bundle
	d           digest.Digest
	start, size int64
	pos         int64
	buf         []byte       // decoded bytes from pos on
	frame       *cachedFrame // with a seek table: the frame buf is in, held
	h           hash.Hash
	hashed      int64   // bytes hashed from the start (pos plus what buf holds); -1 after a seek elsewhere
	stream      *stream // without a seek table: the stream, at start+pos
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.frame != nil && !frames.use(r.frame) {
		// Taken while this reader was idle (its client stopped reading): decoded again
		// below, and not hashed again (it has been).
		r.releaseFrame()
	}
	if len(r.buf) == 0 {
		// With a seek table, the rest of the frame holding pos, held until read; without,
		// 1 MiB of the stream.
		r.releaseFrame()
		var buf []byte
		var err error
		if r.b.table != nil {
			r.frame, buf, err = r.b.frameFrom(r.start + r.pos)
		} else {
			buf, err = r.readStream(min(int64(1<<20), r.size-r.pos))
		}
		if err != nil {
			return 0, fmt.Errorf("blob %s: %w", r.d, err)
		}
		buf = buf[:min(int64(len(buf)), r.size-r.pos)]
		want := int64(len(buf))
		// Hashed as it is decoded, so that the last window is withheld when the whole blob
		// does not hash to d: a client sees the response cut short, not wrong bytes.
		if r.hashed == r.pos {
			r.h.Write(buf)
			r.hashed += want
			if r.hashed == r.size && digest.NewDigest(digest.SHA256, r.h) != r.d {
				r.doneFrame()
				r.releaseFrame()
				return 0, fmt.Errorf("blob %s: the bundle's bytes hash to %s: %w", r.d, digest.NewDigest(digest.SHA256, r.h), layout.ErrDigestMismatch)
			}
		}
		r.buf = buf
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.pos += int64(n)
	r.doneFrame()
	if len(r.buf) == 0 {
		r.releaseFrame() // read through: another reader may have its room
	}
	return n, nil
}

// doneFrame ends a read from the frame the reader holds.
func (r *blobReader) doneFrame() {
	if r.frame != nil {
		frames.done(r.frame)
	}
}

// releaseFrame lets the frame the reader holds go.
func (r *blobReader) releaseFrame() {
	if r.frame != nil {
		frames.release(r.frame)
		r.frame, r.buf = nil, nil
	}
}

// readStream reads the next n bytes (at most 1 MiB) from the one-stream decoder, opened at
// start+pos when needed, into the stream's buffer.
func (r *blobReader) readStream(n int64) ([]byte, error) {
	if r.stream == nil {
		st, err := openStream(io.NewSectionReader(r.b.ra, 0, r.b.size))
		if err != nil {
			return nil, err
		}
		r.stream = st
		if _, err := io.CopyN(io.Discard, st.dec, r.start+r.pos); err != nil {
			return nil, err
		}
	}
	if int64(cap(r.stream.buf)) < n {
		r.stream.buf = make([]byte, 1<<20)
	}
	buf := r.stream.buf[:n]
	_, err := io.ReadFull(r.stream.dec, buf)
	return buf, err
}

// Close lets go of the frame or the stream decoder the reader holds.
func (r *blobReader) Close() error {
	r.releaseFrame()
	if r.stream != nil {
		r.stream.release()
		r.stream, r.buf = nil, nil
	}
	return nil
}

func (r *blobReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	}
	if abs < 0 {
		return 0, errors.New("negative position")
	}
	if abs == r.pos {
		return abs, nil
	}
	r.buf = nil
	r.Close()
	switch {
	case abs == 0: // from the start again (http.ServeContent seeks to the end and back)
		r.h.Reset()
		r.hashed = 0
	case abs != r.hashed:
		r.hashed = -1 // a range, not the whole blob: frame checksums only
	}
	r.pos = abs
	return abs, nil
}
