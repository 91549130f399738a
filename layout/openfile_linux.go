//go:build linux

package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
)

// OpenRegularReader is OpenRegular for a caller that only reads the file through to its end:
// one open (O_NOFOLLOW refuses a symbolic link, O_NONBLOCK keeps a FIFO from blocking) and one
// fstat, without the lstat, epoll_ctl and finalizer of an os.File, and no read past the size
// fstat gave (#19: blob and manifest files are most of what pack and verify registry: open).
// A symbolic link, directory, FIFO or device is ErrInvalid; an absent file satisfies
// fs.ErrNotExist.
func OpenRegularReader(path string) (io.ReadCloser, int64, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, 0, fmt.Errorf("%s: not a regular file (a symbolic link): %w", path, ErrInvalid)
	}
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, 0, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, 0, fmt.Errorf("%s: not a regular file (mode %#o): %w", path, st.Mode&syscall.S_IFMT, ErrInvalid)
	}
	return &fdReader{fd: fd, path: path, left: st.Size}, st.Size, nil
}

// fdReader reads a regular file by its descriptor up to the size it had when opened.
type fdReader struct {
	fd   int
	path string
	left int64 // bytes up to the size fstat gave
}

// Read implements io.Reader: io.EOF once the size fstat gave is read (or the file ends first).
func (r *fdReader) Read(p []byte) (int, error) {
	if r.fd < 0 {
		return 0, fs.ErrClosed
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for {
		n, err := syscall.Read(r.fd, p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: r.path, Err: err}
		case n == 0 && len(p) > 0:
			r.left = 0
			return 0, io.EOF
		}
		r.left -= int64(n)
		return n, nil
	}
}

// Close implements io.Closer.
func (r *fdReader) Close() error {
	if r.fd < 0 {
		return fs.ErrClosed
	}
	err := syscall.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.path, Err: err}
	}
	return nil
}
