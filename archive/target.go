package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Target is registry storage that Unpack writes into: a directory (*registry.Store) or a
// bucket (*s3store.Store). It is read as a layout.Source (for the sinks of
// UnpackOptions.Also and the tags a patch removes), written as a layout.Sink, and keeps
// the referrers tag schema.
type Target interface {
	layout.Source
	layout.Sink
	layout.ReferrerTagger
	// Prepare makes the target ready for one unpack and takes its lock (one unpack at a time),
	// then removes what an interrupted run left; the function it returns releases the lock.
	Prepare() (unlock func(), err error)
	// StatBlob reports whether blob d is present with its size (content not read).
	StatBlob(d layout.Descriptor) bool
	// HasBlob reports whether blob d is present and trusted as it is, so that its member is
	// only verified, not written again.
	HasBlob(d layout.Descriptor) bool
	// WriteBlob stores blob d from r, verifying it; the blob appears only if it matches.
	WriteBlob(d layout.Descriptor, r io.Reader) error
	// ReadBlobManifest reads blob d as a manifest, verifying it.
	ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error)
	// EnsureRepo makes repo visible to the registry even before it has links.
	EnsureRepo(repo string) error
	// WriteLink writes the link of spec holding d.
	WriteLink(spec registry.PathSpec, d digest.Digest) error
	// Untag removes repo:tag if it still points at d, and reports whether it did.
	Untag(repo, tag string, d digest.Digest) (bool, error)
	// Sync makes what was written durable (skipped with UnpackOptions.NoSync).
	Sync() error
	// SeedBlob stores blob d from the file path of another layout (a blob a patch expects that
	// only an existing dir tree holds); it is verified before any link names it.
	SeedBlob(d layout.Descriptor, path string) error
	// String names the target in messages.
	String() string
}

// Jobber is a Target that wants more blobs in flight than the CPUs (a bucket, where each
// request waits on the network).
type Jobber interface {
	Jobs() int
}

var _ Target = (*registry.Store)(nil)

// blobTarget is the part of a Target that stores and checks blobs: registry storage, or the
// content store of a dir tree (UnpackTree).
type blobTarget interface {
	StatBlob(d layout.Descriptor) bool
	HasBlob(d layout.Descriptor) bool
	WriteBlob(d layout.Descriptor, r io.Reader) error
	ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error)
	SeedBlob(d layout.Descriptor, path string) error
}

// spaceHint adds to err, when it is a full file system (or quota) under the directory target
// dst, how much space the rest of the unpack needs and how much to free: every blob of cats
// (the bundle that failed and those after it) not yet in dst, each in whole blocks of the file
// system with its two directories, a block for each link and for each directory a link may
// need, and in the sinks of opt.Also on the same file system a block for each file and
// directory of a tree of hard links, or every byte of an archive file written whole. It counts
// generously, so that freeing what it says is enough for a re-run, which keeps and reuses
// what was written. Other errors are returned as they are.
func spaceHint(err error, cats []*catalog.Catalog, dst Target, opt UnpackOptions) error {
	st, ok := dst.(*registry.Store)
	if !ok || !fsutil.IsNoSpace(err) {
		return err
	}
	root := existingDir(st.Root())
	var fs unix.Statfs_t
	if unix.Statfs(root, &fs) != nil || fs.Bsize <= 0 {
		return err
	}
	need, blobs := spaceNeeded(cats, st, opt.Also, fs.Bsize)
	free := int64(fs.Bavail) * fs.Bsize
	short := max(need-free, fs.Bsize)
	return fmt.Errorf("%w\n(the file system of %s is full: the rest of this unpack needs up to %s (%d blobs still to write, links and directories, in %d-byte blocks) and %s is free: free %s (%d bytes) or more there and run this again; what was written is kept and reused)",
		err, st.Root(), units.Bytes(need), blobs, fs.Bsize, units.Bytes(free), units.Bytes(short), short)
}

// spaceNeeded is spaceHint's count, in bytes, and how many blobs are still to write.
func spaceNeeded(cats []*catalog.Catalog, dst *registry.Store, also []layout.Sink, bsize int64) (int64, int) {
	blocks := func(n int64) int64 { return (n + bsize - 1) / bsize * bsize }
	dev := deviceOf(dst.Root())
	seen := map[digest.Digest]bool{}
	var need int64
	var blobs int
	need += 16 * bsize // the lock, the repositories' _uploads, a temporary link at a time
	for _, c := range cats {
		for _, d := range c.CarriedBlobs() {
			desc, err := c.Descriptor(d)
			if err != nil || seen[d] || dst.StatBlob(desc) {
				continue
			}
			seen[d] = true
			blobs++
			need += blocks(desc.Size) + 2*bsize // data, its directory and its shard's
		}
		need += int64(len(Links(c))) * 4 * bsize // the link and up to three new directories
		need += int64(len(c.RepoNames())) * 8 * bsize
		for _, s := range also {
			r, ok := s.(interface{ Root() string })
			if !ok || dev == 0 || deviceOf(r.Root()) != dev {
				continue // another file system: not this one's space
			}
			if _, whole := s.(interface{ Commit() error }); whole { // an archive file
				need += blocks(c.TotalBlobBytes()) + int64(len(c.Blobs)+len(c.Entries())+4)*1024
				continue
			}
			for _, e := range c.Entries() {
				need += int64(len(c.ImageBlobs(e.Digest))+len(c.ManifestClosure(e.Digest))+4) * bsize
			}
		}
	}
	return need, blobs
}

// existingDir is dir, or its nearest ancestor that exists.
func existingDir(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// deviceOf is the device number of the file system holding path (0 if unknown).
func deviceOf(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(existingDir(path), &st) != nil {
		return 0
	}
	return uint64(st.Dev)
}
