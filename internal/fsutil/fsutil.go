// Package fsutil holds the few file-system moves every bale layout makes: write to a temporary
// name in the target directory and rename, hard-link, remove a tree atomically, lock a target.
// It knows nothing of images: the moves that verify content (WriteVerified, Place,
// ReadManifest, ...) are in package layout, built on these.
package fsutil

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// Link hard-links src to dst, replacing dst through a temporary name if it exists. It returns
// an error satisfying IsCrossDevice when src and dst are on different file systems.
func Link(src, dst string) error {
	dir := filepath.Dir(dst)
	// link(2) is atomic: a new dst appears whole or not at all, so the common case (dst absent,
	// its directory there) is one syscall; the directory is made only when the link finds none.
	err := os.Link(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if merr := mkdirAll(dir); merr != nil {
			return merr
		}
		err = os.Link(src, dst)
	}
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

// mkdirAll is os.MkdirAll(dir, DirMode) for a directory that a write has just found missing:
// mkdir first, its parent only when that is missing too, and a stat only when something is
// already at dir (os.MkdirAll stats each level before it makes it).
func mkdirAll(dir string) error {
	err := os.Mkdir(dir, DirMode)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if parent := filepath.Dir(dir); parent != dir {
			if perr := mkdirAll(parent); perr != nil {
				return perr
			}
			if err = os.Mkdir(dir, DirMode); err == nil {
				return nil
			}
		}
	}
	if errors.Is(err, fs.ErrExist) { // there already, or made meanwhile by another writer
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}

// IsCrossDevice reports whether err is a hard link refused across file systems.
func IsCrossDevice(err error) bool {
	return errors.Is(err, syscall.EXDEV)
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

// TempName returns an unused temporary name in dir, of the kind Sweep removes; nothing is
// left at it. For a writer that renames its outputs into place at the end of a run.
func TempName(dir string) (string, error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, os.Remove(name)
}

// WriteNew writes r into the new file p (it must not exist) and gives it mode.
func WriteNew(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
