package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Verifier is a reader that hashes what passes through it and, at EOF, fails with
// ErrDigestMismatch unless exactly Size bytes with the expected sha256 were read.
type Verifier struct {
	src  io.Reader // as given
	r    io.Reader // src, limited to Size+1 bytes
	want Descriptor
	h    hash.Hash
	n    int64
	err  error
}

// NewVerifier wraps r so that reading it to EOF verifies it against d. It never reads more
// than d.Size+1 bytes from r.
func NewVerifier(r io.Reader, d Descriptor) *Verifier {
	return &Verifier{src: r, r: io.LimitReader(r, d.Size+1), want: d, h: sha256.New()}
}

// copyBufSize is the buffer of WriteTo: few large writes (one syscall a MiB into a file).
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// WriteTo writes the rest of the content to w, verifying it as Read does, in large writes (so
// io.Copy into a file makes one write a MiB). A source that is an io.WriterTo other than a
// file (whose WriteTo copies 32 KiB at a time) hands over its own buffers, uncopied.
func (v *Verifier) WriteTo(w io.Writer) (int64, error) {
	if v.err != nil {
		return 0, v.err
	}
	vw := &verifyWriter{v: v, w: w}
	var err error
	if wt, ok := v.src.(io.WriterTo); ok && v.n == 0 && !isFile(v.src) {
		_, err = wt.WriteTo(vw)
	} else {
		bp := copyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(vw, struct{ io.Reader }{v.r}, *bp)
		copyBufs.Put(bp)
	}
	if err == nil {
		err = v.check()
	}
	if err != nil {
		v.err = err
	}
	return vw.written, err
}

func isFile(r io.Reader) bool {
	_, ok := r.(*os.File)
	return ok
}

// verifyWriter hashes and counts what it passes on to w, refusing more than the blob's size.
type verifyWriter struct {
	v       *Verifier
	w       io.Writer
	written int64
}

func (vw *verifyWriter) Write(p []byte) (int, error) {
	v := vw.v
	if int64(len(p)) > v.want.Size-v.n {
		return 0, fmt.Errorf("blob %s: more than the expected %d bytes: %w", v.want.Digest, v.want.Size, ErrDigestMismatch)
	}
	v.h.Write(p)
	v.n += int64(len(p))
	n, err := vw.w.Write(p)
	vw.written += int64(n)
	return n, err
}

// Read implements io.Reader.
func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want.Size {
		v.err = fmt.Errorf("blob %s: more than the expected %d bytes: %w", v.want.Digest, v.want.Size, ErrDigestMismatch)
		return n, v.err
	}
	if err == io.EOF {
		if err := v.check(); err != nil {
			v.err = err
			return n, err
		}
	}
	return n, err
}

func (v *Verifier) check() error {
	if v.n != v.want.Size {
		return fmt.Errorf("blob %s: read %d bytes, expected %d: %w", v.want.Digest, v.n, v.want.Size, ErrDigestMismatch)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Digest.Encoded() {
		return fmt.Errorf("blob %s: content hashes to sha256:%s: %w", v.want.Digest, got, ErrDigestMismatch)
	}
	return nil
}

// VerifyBytes checks b against d.
func VerifyBytes(b []byte, d Descriptor) error {
	if int64(len(b)) != d.Size {
		return fmt.Errorf("blob %s: %d bytes, expected %d: %w", d.Digest, len(b), d.Size, ErrDigestMismatch)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return fmt.Errorf("blob %s: content hashes to %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return nil
}
