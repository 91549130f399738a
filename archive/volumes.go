package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
)

// Volumes (docs/bundle-format.md §2.2): a bundle split for media with a size limit. OUT.001
// holds the catalog member alone (its frames); OUT.002 … OUT.(n-1) hold the rest of the
// stream (blobs, links, the end-of-archive marker), cut every VolumeSize bytes wherever the
// cut falls; OUT.n holds the seek table. `cat OUT.* | tar --zstd -x` reads the bundle. The
// catalog lists OUT.002 … OUT.(n-1) with their size and sha256, so that a reader names a
// missing or damaged volume before doing any work; OUT.001 is checked by the catalog's own
// checks, OUT.n by its structure (a reader without it streams).

// MaxVolumes bounds the number of volumes of a bundle (three-digit suffixes).
const MaxVolumes = 999

// MinVolumeSize is the smallest --volume-size.
const MinVolumeSize = 64 << 10

// VolumeName is the name of volume i (from 1) of the bundle path.
func VolumeName(path string, i int) string { return fmt.Sprintf("%s.%03d", path, i) }

// FirstVolume returns the first volume of the volume set path names: path itself when it
// ends in .001, else path.001 when path does not exist and path.001 does; "" otherwise.
func FirstVolume(path string) string {
	if strings.HasSuffix(path, ".001") {
		return path
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(VolumeName(path, 1)); err == nil {
			return VolumeName(path, 1)
		}
	}
	return ""
}

// writeVolumes is WriteFile for opt.VolumeSize > 0: the volumes of path, written through
// temporary names and renamed into place once all are complete (the first volume last);
// volumes of an earlier, longer pack with the same name are removed.
func writeVolumes(ctx context.Context, path string, c *catalog.Catalog, src layout.Source, opt WriteOptions) (err error) {
	if opt.VolumeSize < MinVolumeSize {
		return fmt.Errorf("volume size %d is below %d bytes", opt.VolumeSize, MinVolumeSize)
	}
	dir := filepath.Dir(path)
	sw := &splitWriter{dir: dir, size: opt.VolumeSize}
	defer func() {
		if err != nil {
			sw.remove()
		}
	}()
	// The data volumes first: their bytes do not depend on the catalog, which lists them.
	fw, err := newFrameWriter(sw, levelOf(opt))
	if err != nil {
		return err
	}
	mw := newMemberWriter(fw, c)
	if err := writeData(ctx, mw, c, src, opt); err != nil {
		fw.closeFrames()
		return err
	}
	if err := fw.closeFrames(); err != nil {
		return err
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if len(sw.vols)+2 > MaxVolumes {
		return fmt.Errorf("%d volumes of %d bytes: more than %d; give a larger --volume-size", len(sw.vols)+2, opt.VolumeSize, MaxVolumes)
	}
	c.Meta.Volumes, c.Meta.Signatures = nil, nil // signatures live beside the first volume
	for i := range sw.vols {
		sw.vols[i].Name = filepath.Base(VolumeName(path, i+2))
		c.Meta.Volumes = append(c.Meta.Volumes, sw.vols[i])
	}
	list, err := listMember(c)
	if err != nil {
		return err
	}
	cf, err := writeCatalogFile(c)
	if err != nil {
		return err
	}
	defer cf.Close()
	// The first volume: the catalog member and the list member.
	first, err := sw.temp()
	if err != nil {
		return err
	}
	cw, err := newFrameWriter(first, levelOf(opt))
	if err != nil {
		return err
	}
	cm := newMemberWriter(cw, c)
	if err := cm.catalog(cf); err != nil {
		cw.closeFrames()
		return err
	}
	if err := cm.list(list); err != nil {
		cw.closeFrames()
		return err
	}
	if err := cm.tw.Flush(); err != nil {
		cw.closeFrames()
		return err
	}
	if err := cw.closeFrames(); err != nil {
		return err
	}
	// The last volume: the seek table of every frame, the catalog's first.
	last, err := sw.temp()
	if err != nil {
		return err
	}
	if _, err := last.Write(appendSeekTable(nil, append(cw.entries, fw.entries...))); err != nil {
		return err
	}
	for _, f := range []*os.File{first, last} {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	n := len(sw.vols) + 2
	renames := [][2]string{}
	for i, t := range sw.temps[:len(sw.vols)] {
		renames = append(renames, [2]string{t, VolumeName(path, i+2)})
	}
	renames = append(renames, [2]string{last.Name(), VolumeName(path, n)}, [2]string{first.Name(), VolumeName(path, 1)})
	for _, r := range renames {
		if err := os.Rename(r[0], r[1]); err != nil {
			return err
		}
	}
	for i := n + 1; i <= MaxVolumes; i++ { // an earlier pack of the same name that had more
		if err := os.Remove(VolumeName(path, i)); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	return nil
}

// levelOf is the zstd level of opt.
func levelOf(opt WriteOptions) zstd.EncoderLevel {
	if opt.Level == 0 {
		return zstd.SpeedDefault
	}
	return opt.Level
}

// splitWriter writes a byte stream into temporary files of at most size bytes each, hashing
// each; vols describes the finished ones (names are filled in by the caller).
type splitWriter struct {
	dir   string
	size  int64
	cur   *os.File
	n     int64
	h     hash.Hash
	temps []string
	vols  []catalog.Volume
}

func (s *splitWriter) temp() (*os.File, error) {
	f, err := os.CreateTemp(s.dir, ".bale-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating a volume: %w", err)
	}
	s.temps = append(s.temps, f.Name())
	return f, nil
}

// Write implements io.Writer.
func (s *splitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.cur == nil {
			f, err := s.temp()
			if err != nil {
				return written, err
			}
			s.cur, s.n, s.h = f, 0, sha256.New()
		}
		k := int(min(int64(len(p)), s.size-s.n))
		if _, err := s.cur.Write(p[:k]); err != nil {
			return written, err
		}
		s.h.Write(p[:k])
		s.n += int64(k)
		written += k
		p = p[k:]
		if s.n == s.size {
			if err := s.finish(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (s *splitWriter) finish() error {
	f := s.cur
	s.cur = nil
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.vols = append(s.vols, catalog.Volume{Size: s.n, Digest: digest.NewDigest(digest.SHA256, s.h)})
	return nil
}

// Close finishes the last data volume.
func (s *splitWriter) Close() error {
	if s.cur == nil {
		return nil
	}
	return s.finish()
}

// remove removes every temporary file.
func (s *splitWriter) remove() {
	if s.cur != nil {
		s.cur.Close()
	}
	for _, t := range s.temps {
		os.Remove(t)
	}
}

// ErrVolume reports a volume of a split bundle that is missing or damaged.
var ErrVolume = errors.New("missing or damaged volume")

// volumeSet is the files of a split bundle, in order, as one io.ReaderAt.
type volumeSet struct {
	files []*os.File
	off   []int64 // start of each file in the stream
	size  int64
}

// openVolumes opens the volume set whose first volume is first, whose catalog c lists the
// data volumes, and checks every data volume's presence, size and sha256 (on every core)
// before anything else: the error names each missing or damaged volume. The data volumes
// stay open from their check on.
func openVolumes(ctx context.Context, first string, c *catalog.Catalog) (*volumeSet, error) {
	base := strings.TrimSuffix(first, ".001")
	nv := len(c.Meta.Volumes)
	data := make([]*os.File, nv)
	err := par.Each(ctx, nv, max(2, par.Workers()/2), func(i int) error {
		v, p := c.Meta.Volumes[i], VolumeName(base, i+2)
		if filepath.Base(p) != v.Name {
			return fmt.Errorf("%s: the catalog calls volume %d %s (renamed volumes must keep their names): %w", p, i+2, v.Name, ErrVolume)
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("volume %d of %d, %s: %w: %w", i+2, nv+2, p, err, ErrVolume)
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		switch {
		case err != nil:
			err = fmt.Errorf("volume %s: %w: %w", p, err, ErrVolume)
		case n != v.Size:
			err = fmt.Errorf("volume %s is %d bytes, the catalog says %d (truncated or not this bundle's): %w", p, n, v.Size, ErrVolume)
		case digest.NewDigest(digest.SHA256, h) != v.Digest:
			err = fmt.Errorf("volume %s is damaged: its sha256 is %s, the catalog says %s: %w", p, digest.NewDigest(digest.SHA256, h).Encoded(), v.Digest.Encoded(), ErrVolume)
		}
		if err != nil {
			f.Close()
			return err
		}
		data[i] = f
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		for _, f := range data {
			if f != nil {
				f.Close()
			}
		}
		return nil, fmt.Errorf("%s: %w", first, err)
	}
	// The first volume and the seek table (the last, if it is there) are checked by the
	// catalog and table checks (spec §2.2).
	vs := &volumeSet{}
	err = vs.open(first)
	for i, f := range data {
		vs.add(f, c.Meta.Volumes[i].Size)
	}
	if table := VolumeName(base, nv+2); err == nil && fileExists(table) {
		err = vs.open(table)
	}
	if err != nil {
		vs.Close()
		return nil, err
	}
	return vs, nil
}

// add appends f, of size bytes, to the set.
func (vs *volumeSet) add(f *os.File, size int64) {
	vs.files = append(vs.files, f)
	vs.off = append(vs.off, vs.size)
	vs.size += size
}

// open appends the file at path.
func (vs *volumeSet) open(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	vs.add(f, fi.Size())
	return nil
}

// fileExists reports whether path names something that can be stat'ed.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ReadAt implements io.ReaderAt over the concatenation.
func (vs *volumeSet) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for len(p) > 0 {
		if off >= vs.size {
			return total, io.EOF
		}
		i := len(vs.off) - 1
		for vs.off[i] > off {
			i--
		}
		n, err := vs.files[i].ReadAt(p, off-vs.off[i])
		total += n
		p, off = p[n:], off+int64(n)
		if err != nil && err != io.EOF {
			return total, err
		}
		if n == 0 && err == io.EOF {
			// the file ended early (changed since it was opened)
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// Close closes every file.
func (vs *volumeSet) Close() error {
	for _, f := range vs.files {
		f.Close()
	}
	return nil
}

// CheckVolumes checks, without reading them, that every data volume of the bundle path (a
// volume set, c its catalog) is there with the size its catalog records, and names each one
// that is missing or of another size. It is the quick check of commands that read only the
// catalog (bale list); openVolumes also checks their sha256. A bundle of one file passes.
func CheckVolumes(path string, c *catalog.Catalog) error {
	first := FirstVolume(path)
	if first == "" || len(c.Meta.Volumes) == 0 {
		return nil
	}
	base := strings.TrimSuffix(first, ".001")
	n := len(c.Meta.Volumes) + 2
	var errs []error
	for i, v := range c.Meta.Volumes {
		p := VolumeName(base, i+2)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("volume %d of %d, %s, is missing: %w", i+2, n, p, ErrVolume))
		case fi.Size() != v.Size:
			errs = append(errs, fmt.Errorf("volume %d of %d, %s, is %d bytes, the catalog says %d (truncated or not this bundle's): %w", i+2, n, p, fi.Size(), v.Size, ErrVolume))
		}
	}
	return errors.Join(errs...)
}
