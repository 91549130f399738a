package fileart

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// ErrUnsafe is a directory artifact whose tar would write outside its directory (an absolute
// name, a "..", a symbolic link out of the tree, a link through a symbolic link), or holds a
// device, a fifo or a socket.
var ErrUnsafe = errors.New("unsafe directory artifact")

// epoch is the modification time of every tar entry bale writes, so that the same tree gives
// the same layer digest whenever it is packed (oras-go's TarReproducible writes zero times).
var epoch = time.Unix(0, 0).UTC()

// tarGzipDir writes dir as a tar+gzip into a new file under tmp, entries named title and
// title/<path> as oras-go's tarDirectory names them (uid and gid 0, no user names; hard links
// as regular files), in lexical order with times at epoch. A symbolic link that leaves the
// tree, or a device, fifo or socket, is refused. It returns the gzip's descriptor and path
// and the tar's digest.
func tarGzipDir(ctx context.Context, dir, title, tmp string) (layout.Descriptor, string, digest.Digest, error) {
	f, err := os.CreateTemp(tmp, "dir-")
	if err != nil {
		return layout.Descriptor{}, "", "", err
	}
	defer f.Close()
	gzHash, tarHash := sha256.New(), sha256.New()
	counted := &countWriter{w: io.MultiWriter(f, gzHash)}
	gz := gzip.NewWriter(counted)
	tw := tar.NewWriter(io.MultiWriter(gz, tarHash))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(title, filepath.ToSlash(rel))
		return addEntry(tw, p, name, title)
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return layout.Descriptor{}, "", "", fmt.Errorf("directory %s: %w", dir, err)
	}
	d := layout.Descriptor{Digest: digest.NewDigest(digest.SHA256, gzHash), Size: counted.n}
	return d, f.Name(), digest.NewDigest(digest.SHA256, tarHash), nil
}

// addEntry writes the tar header of p as name, and a regular file's content.
func addEntry(tw *tar.Writer, p, name, title string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var link string
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(p); err != nil {
			return err
		}
		if !linkInside(name, link, title) {
			return fmt.Errorf("%s: symbolic link to %s leaves the directory: %w", p, link, ErrUnsafe)
		}
	case fi.Mode().IsRegular(), fi.IsDir():
	default:
		return fmt.Errorf("%s is a %s: only files, directories and symbolic links are carried: %w", p, fi.Mode().Type(), ErrUnsafe)
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.ModTime, h.AccessTime, h.ChangeTime = epoch, time.Time{}, time.Time{}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(tw, f); err != nil || n != fi.Size() {
		return fmt.Errorf("%s: %d of %d bytes read (changed while packed?): %v", p, n, fi.Size(), err)
	}
	return nil
}

// linkInside reports whether a symbolic link at name (a slash path under top) pointing at
// target stays inside top.
func linkInside(name, target, top string) bool {
	if target == "" || path.IsAbs(target) {
		return false
	}
	p := path.Join(path.Dir(name), target)
	return p == top || strings.HasPrefix(p, top+"/")
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Extract reads the tar+gzip blob of a directory layer from r (verified against layer, and
// its tar against AnnotationDigest when set) into the new directory dst/<title>: every entry
// must be title or below it. Absolute names, "..", links out of the tree, links through a
// symbolic link, devices, fifos, sockets and duplicate names are refused with ErrUnsafe;
// modes are kept (permission bits only), times set to the tar's. On error the caller removes
// dst, which must be empty and its own.
func Extract(r io.Reader, layer layout.Descriptor, dst string) error {
	title := layer.Annotations[AnnotationTitle]
	if err := checkTitle(title); err != nil {
		return err
	}
	v := layout.NewVerifier(r, layer)
	gz, err := gzip.NewReader(v)
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	var tr io.Reader = gz
	var tarHash digest.Digester
	if want := layer.Annotations[AnnotationDigest]; want != "" {
		if err := layout.ValidateDigest(digest.Digest(want)); err != nil {
			return fmt.Errorf("layer %s: %s: %w", layer.Digest, AnnotationDigest, err)
		}
		tarHash = digest.SHA256.Digester()
		tr = io.TeeReader(gz, tarHash.Hash())
	}
	x := extractor{root: dst, title: title, seen: map[string]bool{}}
	if err := x.run(tar.NewReader(tr)); err != nil {
		return fmt.Errorf("layer %s (%s): %w", layer.Digest, title, err)
	}
	// The rest of the tar (its padding) and of the gzip stream, then the blob's own end.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if _, err := io.Copy(io.Discard, v); err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if tarHash != nil && tarHash.Digest().String() != layer.Annotations[AnnotationDigest] {
		return fmt.Errorf("layer %s: its tar hashes to %s, %s says %s: %w", layer.Digest, tarHash.Digest(),
			AnnotationDigest, layer.Annotations[AnnotationDigest], layout.ErrDigestMismatch)
	}
	return x.finish()
}

// extractor writes the entries of one directory layer under root.
type extractor struct {
	root, title string
	seen        map[string]bool
	dirs        []dirTime // directory modes and times, set once their content is written
}

type dirTime struct {
	path string
	mode fs.FileMode
	mt   time.Time
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := x.entry(tr, h); err != nil {
			return err
		}
	}
}

// entry writes one tar entry, checked first.
func (x *extractor) entry(tr *tar.Reader, h *tar.Header) error {
	name := strings.TrimSuffix(h.Name, "/")
	if name == "" || path.IsAbs(name) || strings.Contains(name, "\\") || path.Clean(name) != name {
		return fmt.Errorf("entry %q: not a clean relative name: %w", h.Name, ErrUnsafe)
	}
	if name != x.title && !strings.HasPrefix(name, x.title+"/") {
		return fmt.Errorf("entry %q is not under %q: %w", h.Name, x.title, ErrUnsafe)
	}
	if x.seen[name] {
		return fmt.Errorf("entry %q given twice: %w", h.Name, ErrUnsafe)
	}
	x.seen[name] = true
	// Every parent must be a directory this tar made (so never a symbolic link).
	if parent := path.Dir(name); name != x.title && !x.isDir(parent) {
		return fmt.Errorf("entry %q: its directory %q is not a directory of the tar: %w", h.Name, parent, ErrUnsafe)
	}
	p := filepath.Join(x.root, filepath.FromSlash(name))
	mode := fs.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		x.dirs = append(x.dirs, dirTime{p, mode, h.ModTime})
		return os.Mkdir(p, 0o700)
	case tar.TypeReg: // archive/tar reads the old TypeRegA as TypeReg
		return writeEntry(p, tr, h.Size, mode, h.ModTime)
	case tar.TypeSymlink:
		if !linkInside(name, h.Linkname, x.title) {
			return fmt.Errorf("entry %q: symbolic link to %q leaves the directory: %w", h.Name, h.Linkname, ErrUnsafe)
		}
		return os.Symlink(h.Linkname, p)
	case tar.TypeLink:
		target := path.Clean(h.Linkname)
		if !x.seen[target] || x.isDir(target) || (target != x.title && !strings.HasPrefix(target, x.title+"/")) {
			return fmt.Errorf("entry %q: hard link to %q, not a file written before it: %w", h.Name, h.Linkname, ErrUnsafe)
		}
		src := filepath.Join(x.root, filepath.FromSlash(target))
		if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("entry %q: hard link to %q, not a regular file: %w", h.Name, h.Linkname, ErrUnsafe)
		}
		return os.Link(src, p)
	}
	return fmt.Errorf("entry %q: type %q (device, fifo or other): %w", h.Name, string(h.Typeflag), ErrUnsafe)
}

// isDir reports whether name (a slash path) is a directory an earlier entry made.
func (x *extractor) isDir(name string) bool {
	if !x.seen[name] {
		return false
	}
	fi, err := os.Lstat(filepath.Join(x.root, filepath.FromSlash(name)))
	return err == nil && fi.IsDir()
}

// finish applies the directories' modes and times, deepest first.
func (x *extractor) finish() error {
	if !x.seen[x.title] {
		return fmt.Errorf("no entry %q in the tar: %w", x.title, ErrUnsafe)
	}
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		os.Chtimes(d.path, d.mt, d.mt)
	}
	return nil
}

// writeEntry writes a new file at p from r (size bytes) with mode and modification time mt.
func writeEntry(p string, r io.Reader, size int64, mode fs.FileMode, mt time.Time) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		os.Chtimes(p, mt, mt)
	}
	return err
}

// checkTitle refuses a layer title that is not a clean relative path: it names what is
// written under DIR/<name>/.
func checkTitle(title string) error {
	if title == "" || path.IsAbs(title) || strings.Contains(title, "\\") || path.Clean(title) != title ||
		title == "." || title == ".." || strings.HasPrefix(title, "../") {
		return fmt.Errorf("title %q: not a clean relative path: %w", title, ErrUnsafe)
	}
	for _, part := range strings.Split(title, "/") {
		if strings.HasPrefix(part, ".bale-") {
			return fmt.Errorf("title %q: bale's temporary names are reserved: %w", title, ErrUnsafe)
		}
	}
	return nil
}
