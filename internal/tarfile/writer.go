package tarfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Modes and time of every member Create writes: the same input gives the same bytes.
const (
	fileMode = 0o444
	dirMode  = 0o755
)

// mtime is the modification time of every member (the epoch, as skopeo writes it).
var mtime = time.Unix(0, 0).UTC()

// CompressionFor is the compression a file name asks for: .gz and .tgz gzip, .zst zstd.
func CompressionFor(name string) Compression {
	switch {
	case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".tgz"):
		return Gzip
	case strings.HasSuffix(name, ".zst"), strings.HasSuffix(name, ".tzst"):
		return Zstd
	}
	return None
}

// Writer writes a tar file through a temporary file beside its path.
type Writer struct {
	path  string
	tmp   *os.File
	buf   *bufio.Writer
	zw    io.WriteCloser // the compressor, nil for a plain tar
	tw    *tar.Writer
	names map[string]bool // members written, directories included
	done  bool
}

// Create starts writing the tar file path, compressed as its name says (CompressionFor).
// Nothing appears at path until Commit.
func Create(path string) (*Writer, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".bale-tmp-*")
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, tmp: tmp, names: map[string]bool{}}
	w.buf = bufio.NewWriterSize(tmp, 1<<20)
	var out io.Writer = w.buf
	switch CompressionFor(path) {
	case Gzip:
		w.zw = gzip.NewWriter(w.buf)
		out = w.zw
	case Zstd:
		zw, err := zstd.NewWriter(w.buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.zw = zw
		out = zw
	}
	w.tw = tar.NewWriter(out)
	return w, nil
}

// Path is the file the writer makes.
func (w *Writer) Path() string { return w.path }

// Has reports whether member name was written.
func (w *Writer) Has(name string) bool { return w.names[name] }

// Add writes member name (a clean, relative, slash-separated name) of size bytes read from r,
// after the directories above it; r must hold exactly size bytes (a reader that verifies
// what it reads makes the member verified as it is written).
func (w *Writer) Add(name string, size int64, r io.Reader) error {
	if w.done {
		return fmt.Errorf("%s: adding %s after Commit or Abort", w.path, name)
	}
	if c, err := CleanName(name); err != nil || c != name || w.names[name] {
		return fmt.Errorf("%s: member name %q is not clean or already written", w.path, name)
	}
	if err := w.dirs(path.Dir(name)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: fileMode, ModTime: mtime, Format: format(size)}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: member %s: %w", w.path, name, err)
	}
	n, err := io.Copy(w.tw, r)
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, expected %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("%s: member %s: %w", w.path, name, err)
	}
	w.names[name] = true
	return nil
}

// AddBytes writes member name holding b.
func (w *Writer) AddBytes(name string, b []byte) error {
	return w.Add(name, int64(len(b)), bytes.NewReader(b))
}

// format is USTAR where it fits (every reader takes it), PAX for members over 8 GiB.
func format(size int64) tar.Format {
	if size >= 1<<33-1 {
		return tar.FormatPAX
	}
	return tar.FormatUSTAR
}

// dirs writes the directory entries of dir and its parents not yet written.
func (w *Writer) dirs(dir string) error {
	if dir == "." || w.names[dir+"/"] {
		return nil
	}
	if err := w.dirs(path.Dir(dir)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: dirMode, ModTime: mtime, Format: tar.FormatUSTAR}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: directory %s: %w", w.path, dir, err)
	}
	w.names[dir+"/"] = true
	return nil
}

// Commit ends the tar (and its compression), flushes it to disk and renames it into place.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: committed twice or after Abort", w.path)
	}
	err := w.tw.Close()
	if w.zw != nil && err == nil {
		err = w.zw.Close()
	}
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.tmp.Chmod(0o644)
	}
	if err == nil {
		err = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.path)
	}
	w.done = true
	if err != nil {
		os.Remove(w.tmp.Name())
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		d.Sync() // the rename, durable
		d.Close()
	}
	return nil
}

// Abort drops what was written; nothing appears at the path. It may follow Commit (a no-op).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.zw != nil {
		w.zw.Close()
	}
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}

// Spool is a temporary file beside the writer's target, unlinked at once, for a member whose
// size is known only once it is produced (a layer decompressed); Close releases it.
func (w *Writer) Spool() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(w.path), ".bale-tmp-spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
