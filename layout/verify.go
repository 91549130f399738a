package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// Verifier is a reader that hashes what passes through it and, at EOF, fails with
// ErrDigestMismatch unless exactly Size bytes with the expected sha256 were read.
type Verifier struct {
	r    io.Reader
	want Descriptor
	h    hash.Hash
	n    int64
	err  error
}

// NewVerifier wraps r so that reading it to EOF verifies it against d. It never reads more
// than d.Size+1 bytes from r.
func NewVerifier(r io.Reader, d Descriptor) *Verifier {
	return &Verifier{r: io.LimitReader(r, d.Size+1), want: d, h: sha256.New()}
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
