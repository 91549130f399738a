package archive

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

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

// memberError wraps the error of storing a blob member; when the file system of a
// directory target is full, it says what to do about it.
func memberError(dst Target, name string, d layout.Descriptor, err error) error {
	if st, ok := dst.(*registry.Store); ok && fsutil.IsNoSpace(err) {
		return fmt.Errorf("bundle member %s: %w\n(the file system of %s is full: free %s or more there and run this again; what was written is kept and reused)",
			name, err, st.Root(), units.Bytes(d.Size))
	}
	return fmt.Errorf("bundle member %s: %w", name, err)
}
