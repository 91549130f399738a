//go:build linux

package fsutil

import (
	"errors"
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
	err = writeFd(fd, data)
	if err == nil {
		err = ignoringEINTR(func() error { return syscall.Fchmod(fd, uint32(mode.Perm())) })
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

// writeFd writes all of data to fd.
func writeFd(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: "temporary file", Err: err}
		}
		data = data[n:]
	}
	return nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
