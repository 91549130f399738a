package registry

import (
	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
)

// What archive's unpack needs of registry storage on disk, besides reading and writing.

// Prepare creates the blobs/ and repositories/ directories, takes the exclusive flock on
// <root>/.bale.lock (one unpack at a time; the lock goes with the process, even after
// kill -9) and removes the .bale-tmp-* and .bale-old-* an interrupted run left, walking the
// storage only when the lock file says its last holder did not let go (fsutil.LockSwept). The
// returned function releases the lock.
func (s *Store) Prepare() (func(), error) {
	if err := s.Init(); err != nil {
		return nil, err
	}
	return fsutil.LockSwept(s.root)
}

// HasBlob reports whether blob d is present as a regular file of its size whose content
// verifies (a file edited in place through a hard link is written again).
func (s *Store) HasBlob(d layout.Descriptor) bool {
	return s.StatBlob(d) && s.VerifyBlob(d) == nil
}

// SeedBlob stores blob d as a hard link to the file path (see LinkBlob).
func (s *Store) SeedBlob(d layout.Descriptor, path string) error { return s.LinkBlob(d, path) }

// Sync flushes the file system holding the root (syncfs(2)).
func (s *Store) Sync() error { return fsutil.SyncFS(s.root) }

// String names the storage as a location: registry:ROOT.
func (s *Store) String() string { return "registry:" + s.root }
