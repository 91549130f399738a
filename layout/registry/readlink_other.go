//go:build !linux

package registry

import (
	"io"

	"github.com/bale-project/bale/layout"
)

// readLinkFile returns the first bytes (at most max) of the link file at p, which must be a
// regular file (layout.OpenRegular); an absent one satisfies fs.ErrNotExist.
func readLinkFile(p string, max int64) ([]byte, error) {
	f, size, err := layout.OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, min(size, max))
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}
