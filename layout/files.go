package layout

// The file moves of the layouts kept as files (registry storage, dir:, oci:): read a file only if
// it is a regular one, and read, write or place a blob only as its descriptor says.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
)

// WriteVerified streams r into path through a temporary file, verifying it against d; nothing
// appears at path unless the content matches.
func WriteVerified(path string, d Descriptor, r io.Reader, mode os.FileMode) error {
	return fsutil.WriteFrom(path, NewVerifier(r, d), mode)
}

// OpenRegular opens path for reading only if it is a regular file (not a symlink, device or
// directory) and returns it with its size.
func OpenRegular(path string) (*os.File, int64, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: not a regular file (%s): %w", path, fi.Mode().Type(), ErrInvalid)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, 0, fmt.Errorf("%s: changed while opening: %w", path, ErrInvalid)
	}
	return f, fi2.Size(), nil
}

// ReadVerified reads a whole small file and verifies it against d.
func ReadVerified(path string, d Descriptor) ([]byte, error) {
	f, size, err := OpenRegularReader(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllSized(NewVerifier(f, d), min(size, d.Size))
}

// readAllSized is io.ReadAll of r into a buffer made for size bytes (and the read that finds
// the end), not grown from 512 bytes.
func readAllSized(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, max(size, 0)+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// VerifyFile hashes the file at path and checks it against d.
func VerifyFile(path string, d Descriptor) error {
	f, size, err := OpenRegularReader(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if size != d.Size {
		return fmt.Errorf("%s: %d bytes, expected %d for %s: %w", path, size, d.Size, d.Digest, ErrDigestMismatch)
	}
	_, err = io.Copy(io.Discard, NewVerifier(f, d))
	return err
}

// Place puts blob d of repo from src at dst: a hard link when src is a FileSource on
// the same file system, otherwise a verified copy. It reports whether it had to copy.
func Place(dst string, src Source, repo string, d Descriptor) (copied bool, err error) {
	if fsrc, ok := src.(FileSource); ok {
		p, err := fsrc.BlobPath(repo, d)
		if err != nil {
			return false, err
		}
		err = fsutil.Link(p, dst)
		if err == nil {
			return false, nil
		}
		if !fsutil.IsCrossDevice(err) {
			return false, fmt.Errorf("linking blob %s: %w", d.Digest, err)
		}
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return true, err
	}
	defer rc.Close()
	return true, WriteVerified(dst, d, rc, fsutil.BlobMode)
}

// ReadManifest reads the manifest file at path, which must be a regular file of at most
// MaxManifestSize bytes hashing to d, and parses it. A missing file is an
// ErrNotFound; errors name what (e.g. "manifest sha256:… of repo").
func ReadManifest(path string, d digest.Digest, what string) (*Manifest, error) {
	f, size, err := OpenRegularReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > MaxManifestSize {
		return nil, fmt.Errorf("%s: %d bytes: %w", what, size, ErrInvalid)
	}
	b, err := readAllSized(NewVerifier(f, Descriptor{Digest: d, Size: size}), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// ReadManifestBlob reads the blob file p of manifest d, verifying it against d (at most
// MaxManifestSize bytes), and parses it; a missing file is an ErrNotFound naming d.
func ReadManifestBlob(p string, d Descriptor) (*Manifest, error) {
	if d.Size > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes: %w", d.Digest, d.Size, ErrInvalid)
	}
	b, err := ReadVerified(p, d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}
