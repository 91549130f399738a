package archive

import (
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// readList reads the list member the catalog's meta records (format 5), right after it: it
// must have its name, the size recorded and the sha256 recorded, hashed as it streams.
func (r *Reader) readList() error {
	l := r.cat.Meta.List
	if l == nil {
		return nil
	}
	hdr, err := r.tr.Next()
	if err != nil {
		return fmt.Errorf("reading the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
	}
	if hdr.Name != ListName || !isRegular(hdr) {
		return fmt.Errorf("member %q after the catalog, which records the list member %s there: %w", hdr.Name, ListName, ErrBundle)
	}
	if hdr.Size != l.Size {
		return fmt.Errorf("list member %s of %d bytes, the catalog records %d: %w", ListName, hdr.Size, l.Size, ErrBundle)
	}
	h := sha256.New()
	if n, err := io.Copy(h, r.tr); err != nil || n != l.Size {
		return fmt.Errorf("reading the list member %s: %v (truncated or damaged): %w", ListName, err, ErrBundle)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != l.Digest {
		return fmt.Errorf("list member %s has sha256 %s, the catalog records %s: %w", ListName, got.Encoded(), l.Digest.Encoded(), ErrBundle)
	}
	return nil
}
