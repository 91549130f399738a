package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
)

// ErrNoListHead reports a bundle that cannot be listed from its list member without its
// catalog: no seek table (recompressed, or a stream), no frame starting right after the
// catalog member, or no list member there (format 1 to 4). Its catalog is read instead.
var ErrNoListHead = errors.New("no list member at a frame start")

// ListHead is the list member of a format-5 bundle found from the seek table, without
// decoding the catalog: its header (first line), size, and the signature members that follow
// it. Digest is its sha256, set once Hash or Rows has decoded it whole; Rows hands out its
// rows.
type ListHead struct {
	Header     listing.Header
	Size       int64
	Digest     digest.Digest
	Signatures []SignatureMember

	ra      io.ReaderAt
	end     int64 // compressed size of the bundle
	start   int64 // compressed offset of the frame the list member's header starts
	release func()
}

// OpenListHead finds the list member of the bundle at path (a file, or a volume set whose
// volumes are found by name; bale list checks their sizes with CheckVolumes from the
// header): it decodes the head of frame 0 for the catalog member's tar header, computes where
// the list member starts (the catalog's data rounded up to 512 bytes), takes the frame of the
// seek table that starts exactly there, and decodes from it the list member's header line;
// then, from the frame where the member ends, the signature members after it. The rows are
// not decoded until Hash or Rows. ErrNoListHead when any of that is not as bale writes it.
func OpenListHead(path string) (*ListHead, error) {
	ra, size, release, err := openHeadAccess(path)
	if err != nil {
		return nil, err
	}
	lh := &ListHead{ra: ra, end: size, release: release}
	if err := lh.find(); err != nil {
		release()
		return nil, err
	}
	return lh, nil
}

// openHeadAccess opens the file at path, or the volume set whose first volume it names with
// every PATH.NNN found after it, as one io.ReaderAt, without reading any of it.
func openHeadAccess(path string) (io.ReaderAt, int64, func(), error) {
	first := FirstVolume(path)
	if first == "" {
		return openFileAt(path)
	}
	base := strings.TrimSuffix(first, ".001")
	vs := &volumeSet{}
	for i := 1; i <= MaxVolumes && fileExists(VolumeName(base, i)); i++ {
		if err := vs.open(VolumeName(base, i)); err != nil {
			vs.Close()
			return nil, 0, nil, err
		}
	}
	return vs, vs.size, func() { vs.Close() }, nil
}

// find sets lh from the head of the bundle (OpenListHead).
func (lh *ListHead) find() error {
	t, err := readSeekTable(lh.ra, lh.end)
	if errors.Is(err, errNoSeekTable) || (err == nil && t.frames() < 2) {
		return ErrNoListHead
	}
	if err != nil {
		return err
	}
	// Frame 0 is the catalog member's: its tar header is the first block.
	zr, err := zstd.NewReader(io.NewSectionReader(lh.ra, 0, t.off[1]), headDecoder()...)
	if err != nil {
		return err
	}
	hdr, err := tar.NewReader(zr).Next()
	zr.Close()
	if err != nil || hdr.Name != CatalogName || hdr.Size < 0 || hdr.Size > MaxCatalogSize {
		return ErrNoListHead // not a bale bundle: the catalog path says why
	}
	listOff := tarBlock + (hdr.Size+tarBlock-1)/tarBlock*tarBlock
	var raw int64
	lh.start = -1
	for i := range t.frames() {
		if raw == listOff {
			lh.start = t.off[i]
			break
		}
		if raw += int64(t.raw[i]); raw > listOff {
			break
		}
	}
	if lh.start < 0 {
		return ErrNoListHead
	}
	if err := lh.readHeader(); err != nil {
		return err
	}
	return lh.readSignatures(t, listOff+tarBlock+(lh.Size+tarBlock-1)/tarBlock*tarBlock)
}

// readHeader decodes the list member's tar header and its first line (the header), and no
// more of it: its digest is computed when signatures need it (Hash) and by Rows.
func (lh *ListHead) readHeader() error {
	tr, hdr, closeZ, err := lh.member()
	if err != nil {
		return err
	}
	defer closeZ()
	if hdr == nil || hdr.Name != ListName || !isRegular(hdr) || hdr.Size <= 0 || hdr.Size > catalog.MaxListSize {
		return ErrNoListHead // not format 5, or damaged: the catalog path reads it
	}
	line, err := bufio.NewReader(tr).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
	}
	h, err := listing.ParseHeader(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		return fmt.Errorf("%s: %w: %w", ListName, err, ErrBundle)
	}
	if h.Format != catalog.FormatVersion {
		return ErrNoListHead // the catalog path reads it, or says which format it is
	}
	lh.Header, lh.Size = h, hdr.Size
	return nil
}

// member decodes from the list member's frame and reads the first tar header there: the
// reader positioned at its data, and the header, nil when there is none to read (each caller
// says what that means); close releases the decoder.
func (lh *ListHead) member() (tr *tar.Reader, hdr *tar.Header, close func(), err error) {
	zr, err := zstd.NewReader(io.NewSectionReader(lh.ra, lh.start, lh.end-lh.start), headDecoder()...)
	if err != nil {
		return nil, nil, nil, err
	}
	tr = tar.NewReader(zr)
	if hdr, err = tr.Next(); err != nil {
		hdr = nil
	}
	return tr, hdr, zr.Close, nil
}

// readSignatures reads the signature members that follow the list member, whose data ends at
// raw (uncompressed) offset after: it decodes from the frame holding that offset, not the
// list member's frames before it.
func (lh *ListHead) readSignatures(t *seekTable, after int64) error {
	var raw int64
	for i := range t.frames() {
		next := raw + int64(t.raw[i])
		if after < next {
			zr, err := zstd.NewReader(io.NewSectionReader(lh.ra, t.off[i], lh.end-t.off[i]), headDecoder()...)
			if err != nil {
				return err
			}
			defer zr.Close()
			if _, err := io.CopyN(io.Discard, zr, after-raw); err != nil {
				return fmt.Errorf("reading past the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
			}
			return lh.signatureMembers(tar.NewReader(zr))
		}
		raw = next
	}
	return nil // the member ends the stream: no signature members
}

// errStopRows ends the row lines of a pass early (the first pass reads the header only).
var errStopRows = errors.New("stop")

// headDecoder are the options of the decoders of the head: one goroutine, small buffers.
func headDecoder() []zstd.DOption {
	return decoderOptions(zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
}

// pass decodes the list member from its frame, hashing it whole, and hands its lines to fn
// in turn (the header first) until fn returns errStopRows; it records the member's digest, or
// requires the one an earlier pass recorded.
func (lh *ListHead) pass(fn func(line []byte) error) error {
	tr, hdr, closeZ, err := lh.member()
	if err != nil {
		return err
	}
	defer closeZ()
	if hdr == nil || hdr.Name != ListName || hdr.Size != lh.Size {
		return fmt.Errorf("the list member %s changed while it was read: %w", ListName, ErrBundle)
	}
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(tr, h), 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer (a row with many referrers): read it whole.
			rest, rerr := br.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), rerr
		}
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("reading the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
		}
		if ferr := fn(bytes.TrimSuffix(line, []byte("\n"))); errors.Is(ferr, errStopRows) {
			// The rest is hashed, not split into lines.
			if _, err := io.Copy(io.Discard, br); err != nil {
				return fmt.Errorf("reading the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
			}
			break
		} else if ferr != nil {
			return ferr
		}
	}
	return lh.finish(h)
}

// finish records the digest of the list member hashed by h, or requires the one recorded.
func (lh *ListHead) finish(h hash.Hash) error {
	d := digest.NewDigest(digest.SHA256, h)
	if lh.Digest == "" {
		lh.Digest = d
	} else if d != lh.Digest {
		return fmt.Errorf("the list member %s changed while it was read: %w", ListName, ErrBundle)
	}
	return nil
}

// Hash returns the sha256 of the list member, decoding it whole the first time (what the
// signatures' statement names).
func (lh *ListHead) Hash() (digest.Digest, error) {
	if lh.Digest != "" {
		return lh.Digest, nil
	}
	if err := lh.pass(func([]byte) error { return errStopRows }); err != nil {
		return "", err
	}
	return lh.Digest, nil
}

// signatureMembers reads the signature members at tr's position.
func (lh *ListHead) signatureMembers(tr *tar.Reader) error {
	for n := 1; n <= catalog.MaxSignatures; n++ {
		hdr, err := tr.Next()
		if err != nil || hdr.Name != SignatureName(n) {
			return nil // the blobs, or the end: the signature members are all read
		}
		if !isRegular(hdr) || hdr.Size <= 0 || hdr.Size > catalog.MaxSignatureSize {
			return fmt.Errorf("signature member %s of %d bytes: %w", hdr.Name, hdr.Size, ErrBundle)
		}
		raw := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, raw); err != nil {
			return fmt.Errorf("reading signature member %s: %v (truncated or damaged): %w", hdr.Name, err, ErrBundle)
		}
		lh.Signatures = append(lh.Signatures, SignatureMember{Name: hdr.Name, Raw: raw})
	}
	return nil
}

// Rows decodes the list member and calls fn with each row in turn, holding one at a time;
// the member must hash as it did for Hash, if that ran first.
func (lh *ListHead) Rows(fn func(listing.Image) error) error {
	header := true
	return lh.pass(func(line []byte) error {
		if header {
			header = false
			return nil
		}
		im, err := listing.ParseRow(line)
		if err != nil {
			return fmt.Errorf("%w: %w", err, ErrBundle)
		}
		return fn(im)
	})
}

// Close releases the files.
func (lh *ListHead) Close() error {
	lh.release()
	return nil
}
