package dirtree

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
)

// StoreDir is the content store that `bale unpack --to dir:` keeps inside the tree while it
// writes it: one file per blob, named by its hex digest, that the image directories hard-link.
// Open skips it (its name starts with .bale-); unpack removes it once every image is in place,
// and a re-run after a failed or killed unpack reuses what it holds.
const StoreDir = ".bale-blobs"

// Store is the content store of a tree (see StoreDir). Every blob in it was verified on the
// way in (written through a temporary name and renamed) or is verified before it is trusted.
type Store struct {
	dir string
	// Copied counts the blobs SeedBlob had to copy because linking was impossible.
	Copied int
}

// NewStore names the content store of the tree at root without touching the file system.
func NewStore(root string) *Store { return &Store{dir: filepath.Join(root, StoreDir)} }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is the file of blob d in the store (which may not exist).
func (s *Store) Path(d layout.Descriptor) (string, error) {
	if err := layout.ValidateDigest(d.Digest); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, d.Digest.Encoded()), nil
}

// StatBlob reports whether blob d is in the store as a regular file of its size.
func (s *Store) StatBlob(d layout.Descriptor) bool {
	p, err := s.Path(d)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// HasBlob reports whether blob d is in the store with its size and its content verifies.
func (s *Store) HasBlob(d layout.Descriptor) bool {
	p, err := s.Path(d)
	return err == nil && s.StatBlob(d) && layout.VerifyFile(p, d) == nil
}

// WriteBlob stores blob d from r through a temporary name, verifying it: the file appears
// only if it matches.
func (s *Store) WriteBlob(d layout.Descriptor, r io.Reader) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := layout.WriteVerified(p, d, r, fsutil.BlobMode); err != nil {
		return fmt.Errorf("writing blob %s into %s: %w", d.Digest, s.dir, err)
	}
	return nil
}

// SeedBlob stores blob d as a hard link to the file path of an existing image of the tree, or
// as a verified copy of it on another file system. Unpack verifies it before any image names
// it (a manifest by its digest, a layer by its size, as for registry storage).
func (s *Store) SeedBlob(d layout.Descriptor, path string) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	err = fsutil.Link(path, p)
	if err == nil || !fsutil.IsCrossDevice(err) {
		return err
	}
	f, _, err := layout.OpenRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s.Copied++
	return layout.WriteVerified(p, d, f, fsutil.BlobMode)
}

// ReadBlobManifest reads blob d of the store as a manifest, verifying it.
func (s *Store) ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	return layout.ReadManifestBlob(p, d)
}

// Remove removes the store and everything in it (the image directories keep their links).
func (s *Store) Remove() error { return os.RemoveAll(s.dir) }

// Lock creates the tree's root if needed and takes its exclusive lock without waiting: an
// flock on the root directory itself, so that nothing is left in the tree, released by the
// returned function or when the process ends, even by kill -9.
func (t *Tree) Lock() (func(), error) {
	if err := os.MkdirAll(t.root, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("creating dir tree: %w", err)
	}
	f, err := os.Open(t.root)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", t.root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: another bale is writing there; wait for it to finish and run this again: %w", t.root, fsutil.ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", t.root, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
