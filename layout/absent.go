package layout

import (
	"errors"
	"os"
)

// SkipAbsent reports whether blob d of repo is left out of a copy from src: a
// non-distributable layer (NonDistributable) that src does not hold, as a registry that never
// received it. Every other blob is copied, and its absence is an error.
func SkipAbsent(src Source, repo string, d Descriptor) bool {
	return NonDistributable(d) && !hasBlob(src, repo, d)
}

// hasBlob reports whether src holds blob d: its file exists, or it opens.
func hasBlob(src Source, repo string, d Descriptor) bool {
	if fs, ok := src.(FileSource); ok {
		p, err := fs.BlobPath(repo, d)
		if err != nil {
			return false
		}
		_, err = os.Stat(p)
		return err == nil
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return !errors.Is(err, ErrNotFound)
	}
	rc.Close()
	return true
}
