//go:build !linux

package fsutil

import "os"

// WriteFile writes data to path through a temporary file and a rename, creating parents.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeVia(path, mode, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// rename is os.Rename.
func rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
