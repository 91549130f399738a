package ocidir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// MaxIndexSize bounds index.json.
const MaxIndexSize = layout.MaxManifestSize * 4

// Options tune OpenFS.
type Options struct {
	// Ref names the image a descriptor of index.json stands for; ok is false for a descriptor
	// that names none (it is then listed by no tag, and counts as untagged for Referrers).
	// nil means the rules of the package doc (the org.opencontainers.image.ref.name
	// annotation).
	Ref func(d layout.Descriptor) (ref layout.Ref, ok bool, err error)
}

// BlobName is the name of blob d inside a layout, blobs/<alg>/<encoded>: the one place it is
// built (an oci-archive's members are named the same).
func BlobName(d digest.Digest) (string, error) {
	if err := layout.ValidateDigest(d); err != nil {
		return "", err
	}
	return BlobsDir + "/" + d.Algorithm().String() + "/" + d.Encoded(), nil
}

// OpenFS reads the OCI layout at the root of fsys (the members of an oci-archive, say); name
// is what errors call it. Blobs are read through fsys: the layout is a layout.Source, but its
// BlobPath fails, since its blobs are not files.
func OpenFS(fsys fs.FS, name string, opt Options) (*Layout, error) {
	l := &Layout{root: name, fsys: fsys, opt: opt}
	b, err := readMember(fsys, LayoutFile, 4096)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", name, err)
	}
	var hdr struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil || hdr.Version == "" {
		return nil, fmt.Errorf("OCI layout %s: oci-layout is not {\"imageLayoutVersion\": ...}: %w", name, layout.ErrInvalid)
	}
	if b, err = readMember(fsys, IndexFile, MaxIndexSize); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", name, err)
	}
	if l.index, err = ParseIndex(b); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", name, err)
	}
	return l, nil
}

// ParseIndex parses index.json: an image index of schemaVersion 2. Descriptors are kept as
// they are (Refs and Resolve skip those of other media types).
func ParseIndex(b []byte) (Index, error) {
	var idx Index
	if len(b) > MaxIndexSize {
		return idx, fmt.Errorf("index.json of %d bytes exceeds %d: %w", len(b), MaxIndexSize, layout.ErrInvalid)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("index.json: %v: %w", err, layout.ErrInvalid)
	}
	if idx.SchemaVersion != 2 {
		return idx, fmt.Errorf("index.json schemaVersion %d: %w", idx.SchemaVersion, layout.ErrInvalid)
	}
	return idx, nil
}

// readMember reads member name of fsys whole, refusing one over max bytes.
func readMember(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s: %w", name, layout.ErrNotFound)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s of %d bytes exceeds %d: %w", name, fi.Size(), max, layout.ErrInvalid)
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// refOf is the image descriptor d of index.json names (see Options.Ref).
func (l *Layout) refOf(d layout.Descriptor) (layout.Ref, bool, error) {
	if l.opt.Ref != nil {
		return l.opt.Ref(d)
	}
	name := d.Annotations[RefNameKey]
	if name == "" {
		return layout.Ref{}, false, nil
	}
	r, err := l.parseRefName(name)
	if err != nil {
		return r, true, fmt.Errorf("index.json ref name %q: %w", name, err)
	}
	return r, true, nil
}

// hasBlob reports whether the layout holds blob d.
func (l *Layout) hasBlob(d digest.Digest) bool {
	name, err := BlobName(d)
	if err != nil {
		return false
	}
	if l.fsys != nil {
		_, err = fs.Stat(l.fsys, name)
		return err == nil
	}
	p, err := l.blobPath(d)
	if err == nil {
		_, err = os.Stat(p)
	}
	return err == nil
}

// readManifestFS is ReadManifest through fsys.
func (l *Layout) readManifestFS(repo string, d digest.Digest) (*layout.Manifest, error) {
	name, err := BlobName(d)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("manifest %s of %s (%s of %s)", d, repo, name, l.root)
	b, err := readMember(l.fsys, name, layout.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := layout.VerifyBytes(b, layout.Descriptor{Digest: d, Size: int64(len(b))}); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	m, err := layout.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// openBlobFS is OpenBlob through fsys.
func (l *Layout) openBlobFS(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	name, err := BlobName(d.Digest)
	if err != nil {
		return nil, err
	}
	f, err := l.fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s of %s (%s of %s): %w", d.Digest, repo, name, l.root, layout.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	return f, nil
}
