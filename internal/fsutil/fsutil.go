// Package fsutil holds the few file-system moves every bale layout makes: write to a temporary
// name in the target directory and rename, hard-link with a copy fallback, and refuse anything
// that is not a plain file.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Modes of what bale writes: content is read-only so that an edit through a hard link cannot
// silently change a blob that other images share.
const (
	DirMode  os.FileMode = 0o755
	BlobMode os.FileMode = 0o444
	FileMode os.FileMode = 0o644
)

// tempPattern names bale's temporary files; they live beside their final name.
const tempPattern = ".bale-tmp-*"

// WriteFile writes data to path through a temporary file and a rename, creating parents.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeVia(path, mode, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteVerified streams r into path through a temporary file, verifying it against d; nothing
// appears at path unless the content matches.
func WriteVerified(path string, d layout.Descriptor, r io.Reader, mode os.FileMode) error {
	return writeVia(path, mode, func(f *os.File) error {
		_, err := io.Copy(f, layout.NewVerifier(r, d))
		return err
	})
}

func writeVia(path string, mode os.FileMode, fill func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Link hard-links src to dst, replacing dst through a temporary name if it exists. It returns
// an error satisfying IsCrossDevice when src and dst are on different file systems.
func Link(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	// link(2) is atomic: a new dst appears whole or not at all, so the common case (dst absent)
	// needs no temporary name; that is one syscall where the rename path takes five.
	err := os.Link(src, dst)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil {
		if si, err := os.Stat(src); err == nil && os.SameFile(fi, si) {
			return nil
		}
	}
	tmp, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name)
	if err := os.Link(src, name); err != nil {
		return err
	}
	if err := os.Rename(name, dst); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// IsCrossDevice reports whether err is a hard link refused across file systems.
func IsCrossDevice(err error) bool {
	return errors.Is(err, syscall.EXDEV)
}

// OpenRegular opens path for reading only if it is a regular file (not a symlink, device or
// directory) and returns it with its size.
func OpenRegular(path string) (*os.File, int64, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: not a regular file (%s): %w", path, fi.Mode().Type(), layout.ErrInvalid)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, 0, fmt.Errorf("%s: changed while opening: %w", path, layout.ErrInvalid)
	}
	return f, fi2.Size(), nil
}

// ReadVerified reads a whole small file and verifies it against d.
func ReadVerified(path string, d layout.Descriptor) ([]byte, error) {
	f, _, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(layout.NewVerifier(f, d))
}

// VerifyFile hashes the file at path and checks it against d.
func VerifyFile(path string, d layout.Descriptor) error {
	f, size, err := OpenRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if size != d.Size {
		return fmt.Errorf("%s: %d bytes, expected %d for %s: %w", path, size, d.Size, d.Digest, layout.ErrDigestMismatch)
	}
	_, err = io.Copy(io.Discard, layout.NewVerifier(f, d))
	return err
}

// Place puts blob d of repo from src at dst: a hard link when src is a layout.FileSource on
// the same file system, otherwise a verified copy. It reports whether it had to copy.
func Place(dst string, src layout.Source, repo string, d layout.Descriptor) (copied bool, err error) {
	if fsrc, ok := src.(layout.FileSource); ok {
		p, err := fsrc.BlobPath(repo, d)
		if err != nil {
			return false, err
		}
		err = Link(p, dst)
		if err == nil {
			return false, nil
		}
		if !IsCrossDevice(err) {
			return false, fmt.Errorf("linking blob %s: %w", d.Digest, err)
		}
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return true, err
	}
	defer rc.Close()
	return true, WriteVerified(dst, d, rc, BlobMode)
}

// RemoveDir removes the directory dir and everything in it; it is first renamed to a
// temporary name beside it, so that no reader sees it half removed.
func RemoveDir(dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".bale-old-")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(tmp, "x")); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.RemoveAll(tmp)
}

// ReadManifest reads the manifest file at path, which must be a regular file of at most
// layout.MaxManifestSize bytes hashing to d, and parses it. A missing file is an
// ErrNotFound; errors name what (e.g. "manifest sha256:… of repo").
func ReadManifest(path string, d digest.Digest, what string) (*layout.Manifest, error) {
	f, size, err := OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", what, layout.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > layout.MaxManifestSize {
		return nil, fmt.Errorf("%s: %d bytes: %w", what, size, layout.ErrInvalid)
	}
	b, err := io.ReadAll(layout.NewVerifier(f, layout.Descriptor{Digest: d, Size: size}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	m, err := layout.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}
