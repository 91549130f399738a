package registry

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"

	"github.com/bale-project/bale/layout"
)

// readLinkFile returns the first bytes (at most max) of the link file at p, which must be a
// regular file (a symbolic link, a directory or a FIFO is ErrInvalid, as layout.OpenRegular
// says); an absent one satisfies fs.ErrNotExist. Links are most of the files a command reads
// (#19): one open (O_NOFOLLOW refuses a symbolic link, O_NONBLOCK keeps a FIFO from blocking),
// one fstat, one read and one close, without the lstat, fcntl and epoll_ctl calls of an
// os.File.
func readLinkFile(p string, max int64) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s: not a regular file (a symbolic link): %w", p, layout.ErrInvalid)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file (mode %#o): %w", p, st.Mode&syscall.S_IFMT, layout.ErrInvalid)
	}
	b := make([]byte, min(st.Size, max))
	for n := 0; n < len(b); {
		m, err := syscall.Read(fd, b[n:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		case m == 0:
			return nil, io.ErrUnexpectedEOF
		}
		n += m
	}
	return b, nil
}
