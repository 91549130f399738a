//go:build linux

package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// WriteFile writes data to path through a temporary file and a rename, creating parents.
// Links are most of the files unpack and copy write (#19): the temporary file is written by
// its descriptor (open, write, fchmod, close, rename), without the fcntl and epoll_ctl calls
// of an os.File and the lstat that os.Rename makes of the target first (rename(2) refuses to
// replace a directory by itself).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeFdVia(path, mode, func(fd int, tmp string) error { return writeFd(fd, tmp, data) })
}

// WriteFrom streams r into path through a temporary file and a rename, creating parents; a read
// error leaves nothing at path. The file is written by its descriptor, as WriteFile's.
func WriteFrom(path string, r io.Reader, mode os.FileMode) error {
	return writeFdVia(path, mode, func(fd int, tmp string) error {
		_, err := io.Copy(fdWriter{fd: fd, name: tmp}, r)
		return err
	})
}

// writeFdVia creates a temporary file beside path (and path's directory if it is missing),
// fills it, gives it mode and renames it to path; on any error it removes it.
func writeFdVia(path string, mode os.FileMode, fill func(fd int, tmp string) error) error {
	dir := filepath.Dir(path)
	fd, tmp, err := createTemp(dir)
	if errors.Is(err, fs.ErrNotExist) { // the directory's first file: make it (one call less for the others)
		if err = mkdirAll(dir); err == nil {
			fd, tmp, err = createTemp(dir)
		}
	}
	if err != nil {
		return err
	}
	if err = fill(fd, tmp); err != nil {
		err = fmt.Errorf("writing %s: %w", path, err)
	}
	if err == nil {
		if ferr := ignoringEINTR(func() error { return syscall.Fchmod(fd, uint32(mode.Perm())) }); ferr != nil {
			err = &fs.PathError{Op: "chmod", Path: tmp, Err: ferr}
		}
	}
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = &fs.PathError{Op: "close", Path: tmp, Err: cerr}
	}
	if err == nil {
		err = rename(tmp, path)
	}
	if err != nil {
		syscall.Unlink(tmp)
		return err
	}
	return nil
}

// rename is os.Rename without its lstat of newpath first: rename(2) itself refuses to replace a
// directory by a file.
func rename(oldpath, newpath string) error {
	if err := ignoringEINTR(func() error { return syscall.Rename(oldpath, newpath) }); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// createTemp creates a new file of mode 0600 named by tempPattern in dir, as os.CreateTemp
// does, and returns its descriptor and name.
func createTemp(dir string) (int, string, error) {
	prefix := filepath.Join(dir, tempPattern[:len(tempPattern)-1])
	for try := 0; ; try++ {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		var fd int
		err := ignoringEINTR(func() (err error) {
			fd, err = syscall.Open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
			return err
		})
		if err == nil {
			return fd, name, nil
		}
		if errors.Is(err, syscall.EEXIST) && try < 10000 {
			continue
		}
		return -1, "", &fs.PathError{Op: "createtemp", Path: prefix + "*", Err: err}
	}
}

// writeFd writes all of data to fd, the file named name.
func writeFd(fd int, name string, data []byte) error {
	_, err := fdWriter{fd: fd, name: name}.Write(data)
	return err
}

// fdWriter writes to a file by its descriptor.
type fdWriter struct {
	fd   int
	name string
}

// Write implements io.Writer: all of p, or an error.
func (w fdWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := syscall.Write(w.fd, p[written:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return written, &fs.PathError{Op: "write", Path: w.name, Err: err}
		}
		written += n
	}
	return written, nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
