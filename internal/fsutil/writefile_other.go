//go:build !linux

package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path through a temporary file and a rename, creating parents.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeVia(path, mode, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFrom streams r into path through a temporary file and a rename, creating parents; a read
// error leaves nothing at path.
func WriteFrom(path string, r io.Reader, mode os.FileMode) error {
	return writeVia(path, mode, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	})
}

// rename is os.Rename.
func rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// writeVia creates a temporary file beside path (and path's directory if it is missing),
// fills it, gives it mode and renames it to path; on any error it removes it.
func writeVia(path string, mode os.FileMode, fill func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern)
	if errors.Is(err, fs.ErrNotExist) { // the directory's first file: make it (one call less for the others)
		if err = mkdirAll(dir); err == nil {
			f, err = os.CreateTemp(dir, tempPattern)
		}
	}
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
	return rename(f.Name(), path)
}
