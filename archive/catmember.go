package archive

// The catalog member at the head of a bundle: reading it whole (ReadCatalog), copying it out
// for a streamed read (ExtractCatalog), and the members that follow it.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/bale-project/bale/catalog"
)

func (r *Reader) readCatalog(known *knownCatalog) error {
	var h hash.Hash
	if known != nil || r.sumCatalog {
		h = sha256.New()
	}
	name, n, err := r.extractCatalog(h)
	if err != nil {
		return err
	}
	defer os.Remove(name)
	r.catSize = n
	if h != nil {
		r.catSum = h.Sum(nil)
	}
	if known != nil && bytes.Equal(r.catSum, known.sum) {
		r.cat = known.cat // validated and its id checked when it was read
		return r.readHeadMembers()
	}
	c, err := catalog.ReadAs(name, CatalogName)
	if err != nil {
		return fmt.Errorf("bundle %w", err)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("bundle catalog: %w", err)
	}
	if id := c.ComputeID(); id != c.Meta.ID {
		return fmt.Errorf("bundle catalog id %s does not match its content (%s): %w", c.Meta.ID, id, ErrBundle)
	}
	r.cat = c
	return r.readHeadMembers()
}

// readHeadMembers reads the members that follow the catalog: the list member (format 5),
// then the signature members, as the catalog records them.
func (r *Reader) readHeadMembers() error {
	if err := r.readList(); err != nil {
		return err
	}
	return r.readSignatures()
}

// extractCatalog copies the first member, which must be the catalog, to a new temporary file
// and returns its name (the caller removes it) and size; h, if not nil, hashes its bytes.
func (r *Reader) extractCatalog(h hash.Hash) (string, int64, error) {
	hdr, err := r.tr.Next()
	if err != nil {
		return "", 0, fmt.Errorf("reading bundle head: %v (not a bale bundle, or damaged): %w", err, ErrBundle)
	}
	if hdr.Name != CatalogName || !isRegular(hdr) {
		return "", 0, fmt.Errorf("first member is %q, want the catalog %q (not a bale bundle?): %w", hdr.Name, CatalogName, ErrBundle)
	}
	if hdr.Size > MaxCatalogSize || hdr.Size < 0 {
		return "", 0, fmt.Errorf("catalog of %d bytes exceeds %d: %w", hdr.Size, MaxCatalogSize, ErrBundle)
	}
	f, err := os.CreateTemp("", "bale-catalog-*.db")
	if err != nil {
		return "", 0, err
	}
	var w io.Writer = f
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	n, err := io.Copy(w, r.tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("catalog truncated at %d of %d bytes: %w", n, hdr.Size, ErrBundle)
	} else if err != nil {
		err = fmt.Errorf("reading catalog: %v (truncated or damaged): %w", err, ErrBundle)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// ReadCatalog reads only the catalog at the head of the bundle file at path (the first volume
// of a volume set).
func ReadCatalog(path string) (*catalog.Catalog, error) {
	c, _, err := readCatalogFile(path)
	return c, err
}

// ExtractCatalog copies the catalog member at the head of the bundle at path (the first volume
// of a volume set) to a temporary file, without reading it: for catalog.OpenStream, which
// reads it in place. remove deletes the file.
func ExtractCatalog(path string) (file string, remove func(), err error) {
	zr, closeHead, path, err := openHeadStream(path)
	if err != nil {
		return "", nil, err
	}
	defer closeHead()
	br := &Reader{dec: zr, tr: tar.NewReader(zr)}
	file, _, err = br.extractCatalog(nil)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	return file, func() { os.Remove(file) }, nil
}

// readCatalogSum is ReadCatalog that also returns the sha256 of the catalog member's bytes.
func readCatalogSum(path string) (*knownCatalog, error) {
	zr, closeHead, path, err := openHeadStream(path)
	if err != nil {
		return nil, err
	}
	br := &Reader{dec: zr, close: closeHead, tr: tar.NewReader(zr), sumCatalog: true}
	defer br.Close()
	if err := br.readCatalog(nil); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &knownCatalog{cat: br.cat, sum: br.catSum}, nil
}

// readCatalogFile is ReadCatalog that also returns the size of the catalog member.
func readCatalogFile(path string) (*catalog.Catalog, int64, error) {
	r, err := openHead(path)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	return r.cat, r.catSize, nil
}

// openHeadStream opens the bundle at path (the first volume of a volume set) as one zstd
// stream, decoded by one goroutine with small buffers: for reading the members at its head.
// close closes the decoder and the file; name is the file opened.
func openHeadStream(path string) (zr *zstd.Decoder, close func(), name string, err error) {
	if first := FirstVolume(path); first != "" {
		path = first
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, path, err
	}
	zr, err = zstd.NewReader(f, headDecoder()...)
	if err != nil {
		f.Close()
		return nil, nil, path, err
	}
	return zr, func() { zr.Close(); f.Close() }, path, nil
}

// openFileAt opens the file at path for random access, with its size.
func openFileAt(path string) (io.ReaderAt, int64, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, fi.Size(), func() { f.Close() }, nil
}
