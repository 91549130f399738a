package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Decoder limits for untrusted bundles: bale writes windows of at most 8 MiB.
const (
	maxWindow        = 64 << 20
	maxDecoderMemory = 256 << 20
)

// maxTrailing bounds what may follow the tar end-of-archive marker (record padding).
const maxTrailing = 1 << 20

// linkSize is the exact size of a link file: "sha256:" and 64 hex digits.
const linkSize = 71

// Member is one bundle member after the catalog: a blob (Read it to EOF to verify it) or a
// link file (already checked against the catalog).
type Member struct {
	Name string
	Spec registry.PathSpec
	// Blob describes the content of a BlobData member.
	Blob layout.Descriptor
	// Link is the digest a link member holds.
	Link   digest.Digest
	src    io.Reader // the blob's bytes, unverified
	body   *layout.Verifier
	failed error // the error Read returned, already seen by the caller
}

// take returns a blob member's content unverified, for a caller that verifies it itself
// (the unpack pipeline hashes on another goroutine); Read then returns io.EOF.
func (m *Member) take() io.Reader {
	if m.body == nil {
		return bytes.NewReader(nil)
	}
	m.body = nil
	return m.src
}

// Read reads a blob member's content, failing with layout.ErrDigestMismatch at EOF if it does
// not match its digest. It returns io.EOF at once for links.
func (m *Member) Read(p []byte) (int, error) {
	if m.body == nil {
		return 0, io.EOF
	}
	n, err := m.body.Read(p)
	if err != nil && err != io.EOF {
		if !errors.Is(err, layout.ErrDigestMismatch) {
			err = fmt.Errorf("reading bundle: %v (truncated or damaged): %w", err, ErrBundle)
		}
		m.failed = err
	}
	return n, err
}

// Reader reads a bundle member by member, checking each name, type, size and order against
// the catalog at its head, and every blob against its digest.
type Reader struct {
	dec     io.Reader // the decompressed stream
	close   func()    // releases the decoder
	tr      *tar.Reader
	cat     *catalog.Catalog
	catSize int64  // bytes of the catalog member
	catSum  []byte // sha256 of the catalog member, when a known catalog was given or sumCatalog set
	// sumCatalog: hash the catalog member (readCatalogSum).
	sumCatalog bool
	sigs       []SignatureMember
	cur        *Member
	blobs      map[*catalog.BlobRecord]bool // blob members read (by record: no digest string kept)
	// links are the link members the catalog expects, each with its index in linkRead (true
	// once read). Keyed by path spec (its strings shared with the catalog), not by member
	// name: a name is about 150 bytes, and a release of 20,000 tags has over 100,000 links.
	// The map is only read once made: assigning to a key stores the key given, which would
	// keep the strings of every member name parsed.
	links    map[registry.PathSpec]int32
	linkRead []bool
	inLinks  bool // a link member has been read: no more blobs
	inTags   bool // a tag link has been read: no more repository links
	done     bool
}

// decoderOptions are the limits of every zstd decoder of untrusted bundles.
func decoderOptions(extra ...zstd.DOption) []zstd.DOption {
	return append([]zstd.DOption{zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxDecoderMemory)}, extra...)
}

// NewReader starts reading a bundle from r, decompressing it as one stream: it decodes the
// catalog, which must be the first member, and validates it.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(r, false)
}

// newReader is NewReader; headOnly sets the decoder up for reading the catalog alone (one
// goroutine, small buffers) and skips what only Next needs.
func newReader(r io.Reader, headOnly bool) (*Reader, error) {
	opts := decoderOptions()
	if headOnly {
		opts = decoderOptions(zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	}
	zr, err := zstd.NewReader(r, opts...)
	if err != nil {
		return nil, err
	}
	return start(zr, zr.Close, headOnly, nil)
}

// knownCatalog is a bundle's catalog read before (readCatalogs) and the sha256 of its catalog
// member: a reader of that bundle whose catalog member has the same bytes takes it rather than
// decode a second copy (at 20,000 tags a decoded catalog is about 60 MB).
type knownCatalog struct {
	cat *catalog.Catalog
	sum []byte
}

// NewFileReader is NewReader for a bundle file: when the file ends with a seek table (§2.1 of
// the format), its frames are read and decompressed on every core, a few frames ahead of the
// reader; otherwise the file is read as one stream.
func NewFileReader(f *os.File) (*Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return newReaderAt(f, fi.Size(), func() {})
}

// newReaderAt is NewFileReader for any random-access bundle of size bytes (a file, a volume
// set); release is called by Close.
func newReaderAt(ra io.ReaderAt, size int64, release func()) (*Reader, error) {
	return newReaderAtKnown(ra, size, release, nil)
}

// newReaderAtKnown is newReaderAt taking the catalog known when the bundle's catalog member
// has the same bytes (see knownCatalog); known may be nil.
func newReaderAtKnown(ra io.ReaderAt, size int64, release func(), known *knownCatalog) (*Reader, error) {
	t, err := readSeekTable(ra, size)
	if errors.Is(err, errNoSeekTable) {
		zr, err := zstd.NewReader(io.NewSectionReader(ra, 0, size), decoderOptions()...)
		if err != nil {
			release()
			return nil, err
		}
		return start(zr, func() { zr.Close(); release() }, false, known)
	}
	if err != nil {
		release()
		return nil, err
	}
	zd, err := frameDecoder()
	if err != nil {
		release()
		return nil, err
	}
	fr := newFrameReader(ra, t, zd, runtime.GOMAXPROCS(0))
	return start(fr, func() { fr.Close(); zd.Close(); release() }, false, known)
}

// OpenBundle opens the bundle at path for reading: a file, or a volume set (path its first
// volume PATH.001, or PATH when only the volumes exist), whose every volume is checked first
// (ErrVolume names the missing or damaged ones). The Reader's Close closes the files.
func OpenBundle(ctx context.Context, path string) (*Reader, error) {
	ra, size, release, err := openRandomAccess(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	return newReaderAt(ra, size, release)
}

// openRandomAccess opens the bundle at path as one io.ReaderAt of size bytes: the file, or
// the volume set, checked against its catalog (c, or read from the first volume when nil).
// release closes what it opened.
func openRandomAccess(ctx context.Context, path string, c *catalog.Catalog) (ra io.ReaderAt, size int64, release func(), err error) {
	if first := FirstVolume(path); first != "" {
		if c == nil {
			if c, err = ReadCatalog(first); err != nil {
				return nil, 0, nil, err
			}
		}
		vs, err := openVolumes(ctx, first, c)
		if err != nil {
			return nil, 0, nil, err
		}
		return vs, vs.size, func() { vs.Close() }, nil
	}
	return openFileAt(path)
}

// frameDecoder decodes whole frames (DecodeAll) on up to GOMAXPROCS goroutines at once,
// within the limits of untrusted bundles and the seek table's frame size.
func frameDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, decoderOptions(zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(maxTableFrame), zstd.WithDecodeAllCapLimit(true))...)
}

// start reads and checks the catalog at the head of the decompressed stream dec.
func start(dec io.Reader, close func(), headOnly bool, known *knownCatalog) (*Reader, error) {
	br := &Reader{dec: dec, close: close, tr: tar.NewReader(dec)}
	if err := br.readCatalog(known); err != nil {
		close()
		return nil, err
	}
	if headOnly {
		return br, nil
	}
	specs := Links(br.cat)
	if len(specs) > math.MaxInt32 {
		close()
		return nil, fmt.Errorf("catalog of %d links: %w", len(specs), ErrBundle)
	}
	br.links = make(map[registry.PathSpec]int32, len(specs))
	br.linkRead = make([]bool, len(specs))
	for i, spec := range specs {
		if _, err := registry.PathFor(spec); err != nil {
			close()
			return nil, fmt.Errorf("catalog: %w", err)
		}
		br.links[spec] = int32(i)
	}
	br.blobs = make(map[*catalog.BlobRecord]bool, len(br.cat.Blobs))
	return br, nil
}

// Catalog returns the bundle's catalog.
func (r *Reader) Catalog() *catalog.Catalog { return r.cat }

// Close releases the decoder.
func (r *Reader) Close() error {
	r.close()
	return nil
}

func isRegular(h *tar.Header) bool {
	//lint:ignore SA1019 old writers still write '\x00' for a regular file
	return h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA
}

// Next returns the next member, having verified the previous one to its end. At the end of
// the bundle it checks that every blob and link of the catalog was present and returns io.EOF.
func (r *Reader) Next() (*Member, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.cur != nil {
		if r.cur.failed != nil {
			// The caller has seen this member fail; skip the rest of it.
			if _, err := io.Copy(io.Discard, r.tr); err != nil {
				return nil, fmt.Errorf("reading bundle: %v (truncated or damaged): %w", err, ErrBundle)
			}
		} else if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return nil, fmt.Errorf("bundle member %s: %w", r.cur.Name, err)
		}
		r.cur = nil
	}
	hdr, err := r.tr.Next()
	if err == io.EOF {
		return nil, r.finish()
	}
	if err != nil {
		return nil, fmt.Errorf("reading bundle: %v (truncated or damaged): %w", err, ErrBundle)
	}
	m, err := r.member(hdr)
	if err != nil {
		return nil, fmt.Errorf("bundle member %q: %w", hdr.Name, err)
	}
	r.cur = m
	return m, nil
}

func (r *Reader) member(hdr *tar.Header) (*Member, error) {
	if !isRegular(hdr) {
		return nil, fmt.Errorf("type %q is not a regular file: %w", hdr.Typeflag, ErrBundle)
	}
	spec, err := registry.ParsePath(hdr.Name)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBundle)
	}
	m := &Member{Name: hdr.Name, Spec: spec}
	if b, ok := spec.(registry.BlobData); ok {
		if r.inLinks {
			return nil, fmt.Errorf("blob after link members: %w", ErrBundle)
		}
		desc, err := r.cat.Descriptor(b.Digest)
		if err != nil {
			return nil, fmt.Errorf("blob not in the catalog: %w", ErrBundle)
		}
		if !r.cat.Carried(b.Digest) {
			return nil, fmt.Errorf("blob the catalog expects from base %s, which a patch must not carry: %w", r.cat.Blobs[b.Digest].Base, ErrBundle)
		}
		rec := r.cat.Blobs[b.Digest]
		if r.blobs[rec] {
			return nil, fmt.Errorf("duplicate member: %w", ErrBundle)
		}
		if hdr.Size != desc.Size {
			return nil, fmt.Errorf("member of %d bytes, the catalog says %d: %w", hdr.Size, desc.Size, ErrBundle)
		}
		r.blobs[rec] = true
		m.Blob = desc
		if rec := r.cat.Manifests[b.Digest]; rec != nil {
			raw, err := io.ReadAll(layout.NewVerifier(r.tr, desc))
			if err != nil {
				if errors.Is(err, layout.ErrDigestMismatch) {
					return nil, err
				}
				return nil, fmt.Errorf("reading bundle: %v (truncated or damaged): %w", err, ErrBundle)
			}
			if err := CheckManifest(r.cat, raw); err != nil {
				return nil, err
			}
			m.src = bytes.NewReader(raw)
			m.body = layout.NewVerifier(m.src, desc)
			return m, nil
		}
		m.src = r.tr
		m.body = layout.NewVerifier(r.tr, desc)
		return m, nil
	}
	i, ok := r.links[spec]
	if !ok {
		return nil, fmt.Errorf("link not in the catalog: %w", ErrBundle)
	}
	if r.linkRead[i] {
		return nil, fmt.Errorf("duplicate member: %w", ErrBundle)
	}
	r.linkRead[i] = true
	want := linkTarget(r.cat, spec)
	_, isTag := spec.(registry.TagCurrent)
	if _, ok := spec.(registry.TagIndex); ok {
		isTag = true
	}
	if r.inTags && !isTag {
		return nil, fmt.Errorf("repository link after tag links: %w", ErrBundle)
	}
	r.inLinks, r.inTags = true, r.inTags || isTag
	if hdr.Size != linkSize {
		return nil, fmt.Errorf("link of %d bytes, want %d: %w", hdr.Size, linkSize, ErrBundle)
	}
	buf := make([]byte, linkSize)
	if _, err := io.ReadFull(r.tr, buf); err != nil {
		return nil, fmt.Errorf("reading link: %v: %w", err, ErrBundle)
	}
	if digest.Digest(buf) != want {
		return nil, fmt.Errorf("link holds %q, the catalog says %s: %w", buf, want, ErrBundle)
	}
	m.Link = want
	return m, nil
}

// CheckManifest parses manifest bytes and checks that the catalog c describes them truly: its
// media type, children and blobs, and the sizes of what it references. Links and dir trees
// are written from the catalog, so a catalog that lied could otherwise leave a tag whose
// content is incomplete.
func CheckManifest(c *catalog.Catalog, raw []byte) error {
	m, err := layout.ParseManifest(raw)
	if err != nil {
		return err
	}
	rec := c.Manifests[m.Digest]
	if rec == nil {
		return fmt.Errorf("manifest %s is not in the catalog: %w", m.Digest, ErrBundle)
	}
	bad := func(what string, a ...any) error {
		return fmt.Errorf("manifest %s: %s: %w", m.Digest, fmt.Sprintf(what, a...), ErrBundle)
	}
	if m.MediaType != rec.MediaType {
		return bad("media type %s, the catalog says %s", m.MediaType, rec.MediaType)
	}
	refs, want := m.Manifests, rec.Children
	if !m.IsIndex() {
		refs, want = m.Blobs(), rec.Blobs
	}
	if len(refs) != len(want) {
		return bad("references %d manifests or blobs, the catalog says %d", len(refs), len(want))
	}
	for i, d := range refs {
		if d.Digest != want[i] {
			return bad("reference %d is %s, the catalog says %s", i, d.Digest, want[i])
		}
		if m.IsIndex() && slices.Contains(rec.Absent, d.Digest) {
			continue // a sparse index: this platform's image is not in the bundle
		}
		if b := c.Blobs[d.Digest]; b == nil || b.Size != d.Size {
			return bad("%s has size %d, not the catalog's", d.Digest, d.Size)
		}
		if cm := c.Manifests[d.Digest]; m.IsIndex() && (cm == nil || cm.MediaType != d.MediaType) {
			return bad("child %s has media type %s, not the catalog's", d.Digest, d.MediaType)
		}
	}
	return nil
}

func (r *Reader) finish() error {
	r.done = true
	var errs []error
	for _, d := range r.cat.CarriedBlobs() {
		if !r.blobs[r.cat.Blobs[d]] {
			errs = append(errs, fmt.Errorf("blob %s is in the catalog but not in the bundle: %w", d, ErrBundle))
		}
	}
	var missing []string
	for spec, i := range r.links {
		if !r.linkRead[i] {
			name, _ := registry.PathFor(spec) // checked by start
			missing = append(missing, name)
		}
	}
	// What the checks needed goes now: an unpack still writes every link from the catalog.
	r.blobs, r.links, r.linkRead = nil, nil, nil
	if len(missing) > 0 {
		sort.Strings(missing)
		errs = append(errs, fmt.Errorf("%d link(s) of the catalog missing from the bundle, first %s: %w", len(missing), missing[0], ErrBundle))
	}
	// Drain what follows the tar end so zstd checksums over the whole stream are checked; a
	// tar writer pads to its record size, but nothing more may follow (no bomb of zeros).
	if n, err := io.Copy(io.Discard, io.LimitReader(r.dec, maxTrailing+1)); err != nil {
		errs = append(errs, fmt.Errorf("reading bundle end: %v: %w", err, ErrBundle))
	} else if n > maxTrailing {
		errs = append(errs, fmt.Errorf("more than %d bytes after the end of the tar stream: %w", maxTrailing, ErrBundle))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return io.EOF
}
