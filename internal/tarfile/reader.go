package tarfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Limits on what Open accepts from an archive it did not write.
const (
	// MaxMembers bounds the members of an archive.
	MaxMembers = 1 << 20
	// maxLinkDepth bounds a chain of links to links.
	maxLinkDepth = 8
	// maxZstdWindow admits what zstd --long (27) writes.
	maxZstdWindow = 1 << 27
)

// ErrArchive reports a tar file that is damaged, or that holds what no image archive does.
var ErrArchive = errors.New("bad archive")

// Compression is how a tar file is compressed as a whole.
type Compression int

// Compressions Open reads and Create writes.
const (
	None Compression = iota
	Gzip
	Zstd
)

// String names c as a file suffix would.
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

// Magic numbers of the compressed formats (and of the ones refused, to name them).
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte{'B', 'Z', 'h'}
)

// Detect tells the compression of a stream from its first bytes (at least 6 for a certain
// answer); it returns an error for compressions bale does not read.
func Detect(head []byte) (Compression, error) {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.HasPrefix(head, xzMagic):
		return None, fmt.Errorf("xz-compressed: decompress it first (xz -d), or recompress with gzip or zstd: %w", ErrArchive)
	case bytes.HasPrefix(head, bzip2Magic):
		return None, fmt.Errorf("bzip2-compressed: decompress it first (bunzip2), or recompress with gzip or zstd: %w", ErrArchive)
	}
	return None, nil
}

// Decompress returns a reader of r decompressed as c says, and a function that releases it.
func Decompress(r io.Reader, c Compression) (io.Reader, func(), error) {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %v: %w", err, ErrArchive)
		}
		return zr, func() { zr.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %v: %w", err, ErrArchive)
		}
		return zr, zr.Close, nil
	}
	return r, func() {}, nil
}

// FS is a tar file opened for reading its members in place. It implements fs.FS,
// fs.ReadFileFS and fs.StatFS for the regular members (directories are not listed).
type FS struct {
	name    string // the archive's path, for errors
	f       *os.File
	size    int64
	members map[string]*member
	// Compression is how the file was compressed as a whole.
	Compression Compression
}

// member is one entry of the archive.
type member struct {
	off, size int64
	mode      fs.FileMode
	mtime     time.Time
	link      string // for a link: the member it names, relative to the root
}

var (
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
)

// Options tune Open.
type Options struct {
	// TempDir is where a compressed archive is decompressed to (the file is unlinked at once
	// and lives until Close); "" means os.TempDir().
	TempDir string
}

// Open opens the tar file at path (plain, gzip or zstd) and indexes its members.
func Open(path string, opt Options) (*FS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	a := &FS{name: path, f: f, members: map[string]*member{}}
	if err := a.open(opt); err != nil {
		a.f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// open decompresses the file if need be, then indexes it.
func (a *FS) open(opt Options) error {
	head := make([]byte, 6)
	n, err := io.ReadFull(a.f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	if a.Compression, err = Detect(head[:n]); err != nil {
		return err
	}
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if a.Compression != None {
		if err := a.decompress(opt.TempDir); err != nil {
			return err
		}
	}
	fi, err := a.f.Stat()
	if err != nil {
		return err
	}
	a.size = fi.Size()
	return a.index()
}

// decompress replaces a.f with an unlinked temporary file holding the decompressed tar.
func (a *FS) decompress(dir string) error {
	zr, release, err := Decompress(bufio.NewReaderSize(a.f, 1<<20), a.Compression)
	if err != nil {
		return err
	}
	defer release()
	tmp, err := os.CreateTemp(dir, "bale-archive-*.tar")
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	os.Remove(tmp.Name()) // lives as long as it is open
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		if errors.Is(err, fs.ErrClosed) || isWriteError(err) {
			return fmt.Errorf("decompressing into %s: %w", tmp.Name(), err)
		}
		return fmt.Errorf("decompressing (%s): %v: %w", a.Compression, err, ErrArchive)
	}
	a.f.Close()
	a.f = tmp
	return nil
}

// isWriteError reports an error of the file system (a full disk), not of the input.
func isWriteError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "write"
}

// index reads every header once, recording where each member's data lies.
func (a *FS) index() error {
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr := tar.NewReader(a.f)
	count := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar headers (after %d members): %v: %w", count, err, ErrArchive)
		}
		if count++; count > MaxMembers {
			return fmt.Errorf("more than %d members: %w", MaxMembers, ErrArchive)
		}
		name, err := CleanName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue // the root directory itself ("./")
		}
		off, err := a.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		m := &member{off: off, size: hdr.Size, mode: hdr.FileInfo().Mode(), mtime: hdr.ModTime}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		//lint:ignore SA1019 old writers still write '\x00' for a regular file
		case tar.TypeReg, tar.TypeRegA:
			if isSparse(hdr) {
				return fmt.Errorf("member %s is a sparse file: %w", hdr.Name, ErrArchive)
			}
			if off+hdr.Size > a.size {
				return fmt.Errorf("member %s: %d bytes at offset %d run past the end of the file (%d bytes): %w", hdr.Name, hdr.Size, off, a.size, ErrArchive)
			}
		case tar.TypeSymlink:
			if m.link, err = linkTarget(hdr.Name, path.Dir(name), hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			if m.link, err = linkTarget(hdr.Name, ".", hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeGNUSparse:
			return fmt.Errorf("member %s is a sparse file: %w", hdr.Name, ErrArchive)
		default:
			return fmt.Errorf("member %s is a %s, which no image archive holds: %w", hdr.Name, typeName(hdr.Typeflag), ErrArchive)
		}
		if _, dup := a.members[name]; dup {
			return fmt.Errorf("member %s appears twice: %w", hdr.Name, ErrArchive)
		}
		a.members[name] = m
	}
	return nil
}

// isSparse reports a PAX sparse file, whose data is not stored in one piece.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// typeName names a tar entry type for an error.
func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("entry of type %q", t)
}

// CleanName maps a member name to its name in the FS: a leading "./" and a trailing "/" are
// dropped ("." is the root itself). An empty or absolute name, or one with a ".." element,
// is refused.
func CleanName(raw string) (string, error) {
	n := strings.TrimSuffix(raw, "/")
	for strings.HasPrefix(n, "./") {
		n = strings.TrimLeft(n[2:], "/")
	}
	if n == "" || n == "." {
		if raw == "" {
			return "", fmt.Errorf("a member has an empty name: %w", ErrArchive)
		}
		return ".", nil
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("member %q has an absolute name: %w", raw, ErrArchive)
	}
	for _, e := range strings.Split(n, "/") {
		if e == ".." {
			return "", fmt.Errorf("member %q leaves the archive (..): %w", raw, ErrArchive)
		}
	}
	n = path.Clean(n)
	if !fs.ValidPath(n) || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("member %q: not a valid name: %w", raw, ErrArchive)
	}
	return n, nil
}

// linkTarget resolves the target of link member name, relative to dir (a symlink's own
// directory, or "." for a hard link), refusing one that leaves the archive.
func linkTarget(name, dir, target string) (string, error) {
	if target == "" || strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("member %s links to %q, outside the archive: %w", name, target, ErrArchive)
	}
	t := path.Join(dir, target)
	if t == ".." || strings.HasPrefix(t, "../") || !fs.ValidPath(t) {
		return "", fmt.Errorf("member %s links to %q, outside the archive: %w", name, target, ErrArchive)
	}
	return t, nil
}

// Path is the archive's path, as given to Open.
func (a *FS) Path() string { return a.name }

// Names lists the regular members and links, sorted.
func (a *FS) Names() []string {
	out := make([]string, 0, len(a.members))
	for n := range a.members {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// resolve follows links from name to a regular member.
func (a *FS) resolve(op, name string) (*member, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	for depth := 0; ; depth++ {
		m := a.members[name]
		if m == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if m.link == "" {
			return m, nil
		}
		if depth == maxLinkDepth {
			return nil, fmt.Errorf("member %s: links nest deeper than %d: %w", name, maxLinkDepth, ErrArchive)
		}
		name = m.link
	}
}

// Open opens member name (following links inside the archive) for reading.
func (a *FS) Open(name string) (fs.File, error) {
	m, err := a.resolve("open", name)
	if err != nil {
		return nil, err
	}
	return &File{SectionReader: io.NewSectionReader(a.f, m.off, m.size), info: info{path.Base(name), m}}, nil
}

// Stat describes member name (following links).
func (a *FS) Stat(name string) (fs.FileInfo, error) {
	m, err := a.resolve("stat", name)
	if err != nil {
		return nil, err
	}
	return info{path.Base(name), m}, nil
}

// ReadFile reads member name whole.
func (a *FS) ReadFile(name string) ([]byte, error) {
	m, err := a.resolve("read", name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, m.size)
	if _, err := a.f.ReadAt(b, m.off); err != nil {
		return nil, fmt.Errorf("member %s: %w", name, err)
	}
	return b, nil
}

// Close releases the file (and removes a decompressed copy).
func (a *FS) Close() error { return a.f.Close() }

// File is an open member: it reads, seeks and reads at offsets, all within the member.
type File struct {
	*io.SectionReader
	info info
}

// Stat describes the member.
func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }

// Close does nothing: the archive holds the file.
func (f *File) Close() error { return nil }

// info is the fs.FileInfo of a member.
type info struct {
	name string
	m    *member
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.m.size }
func (i info) Mode() fs.FileMode  { return i.m.mode &^ fs.ModeType }
func (i info) ModTime() time.Time { return i.m.mtime }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }
