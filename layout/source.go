package layout

import (
	"io"

	"github.com/opencontainers/go-digest"
)

// Source is a layout images are read from.
type Source interface {
	// Refs lists every tag the layout holds (repo:tag, Digest unset), sorted by repo then tag.
	Refs() ([]Ref, error)
	// Resolve returns the top-level manifest digest that ref names in the layout, or ErrNotFound.
	Resolve(ref Ref) (digest.Digest, error)
	// ReadManifest reads and parses manifest d of repo, verifying its digest.
	ReadManifest(repo string, d digest.Digest) (*Manifest, error)
	// OpenBlob opens blob d of repo. The caller verifies what it reads (see NewVerifier).
	OpenBlob(repo string, d Descriptor) (io.ReadCloser, error)
}

// FileSource is a Source whose blobs are plain files, so that a sink on the same filesystem
// can hard-link them instead of copying.
type FileSource interface {
	Source
	// BlobPath returns the path of the file holding blob d of repo.
	BlobPath(repo string, d Descriptor) (string, error)
}

// AheadReader is a Source that reads fastest in its own order: a bundle, whose blobs lie by
// digest in compressed frames, so that reading image after image decodes a frame for most
// small blobs. ReadAhead reads, in that order and verified, the small manifests and blobs
// among ds (a manifest with those below it) and keeps them, in memory or in a temporary file
// when they are more than it keeps in memory; ReadManifest and OpenBlob answer them from there
// until done is called. What it does not keep is read as usual.
type AheadReader interface {
	ReadAhead(ds []digest.Digest) (done func())
}
