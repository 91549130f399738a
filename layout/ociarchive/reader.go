package ociarchive

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/tarfile"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/ocidir"
)

// Annotations of index.json descriptors that name an image.
const (
	// ImageNameKey is containerd's, the image's full name (images.AnnotationImageName).
	ImageNameKey = "io.containerd.image.name"
	// ReferrerNameKey is bale's, the name of a referrer or an artifact (an SBOM, a Helm chart:
	// no image to run), which runtimes must not see (they would make an image of it, and fail
	// to unpack it).
	ReferrerNameKey = "com.github.bale-project.ref.name"
)

// Reader is an oci-archive opened for reading: a layout.Source and layout.ReferrerLister
// whose members are read in place (a compressed archive is decompressed to a temporary file
// first). Every manifest and blob is verified by its digest as it is read, as from any layout.
type Reader struct {
	fsys *tarfile.FS
	l    *ocidir.Layout
	repo string // the repository of bare-tag names
}

var (
	_ layout.Source         = (*Reader)(nil)
	_ layout.ReferrerLister = (*Reader)(nil)
)

// OpenOptions tune Open.
type OpenOptions struct {
	// TempDir is where a compressed archive is decompressed ("" means os.TempDir()).
	TempDir string
}

// Open opens the oci-archive at path (a plain, gzip- or zstd-compressed tar). Close it.
func Open(path string, opt OpenOptions) (*Reader, error) {
	fsys, err := tarfile.Open(path, tarfile.Options{TempDir: opt.TempDir})
	if err != nil {
		return nil, fmt.Errorf("oci-archive %w", err)
	}
	r := &Reader{fsys: fsys, repo: ocidir.RepoNamed(baseName(path))}
	r.l, err = ocidir.OpenFS(fsys, path, ocidir.Options{Ref: r.ref})
	if err != nil {
		fsys.Close()
		return nil, fmt.Errorf("oci-archive: %w", err)
	}
	return r, nil
}

// baseName is the archive's file name without its directory and its extensions.
func baseName(path string) string {
	name := filepath.Base(path)
	for _, ext := range []string{".gz", ".tgz", ".zst", ".tzst", ".tar"} {
		name = strings.TrimSuffix(name, ext)
	}
	return name
}

// ref is the image descriptor d of index.json names (see the package doc).
func (r *Reader) ref(d layout.Descriptor) (layout.Ref, bool, error) {
	name := d.Annotations[ImageNameKey]
	for _, k := range []string{ocidir.RefNameKey, ReferrerNameKey} {
		if name == "" {
			name = d.Annotations[k]
		}
	}
	if name == "" {
		return layout.Ref{}, false, nil
	}
	ref, err := ParseName(name, r.repo)
	if err != nil {
		return ref, true, fmt.Errorf("index.json names %s %q: %w", d.Digest, name, err)
	}
	return ref, true, nil
}

// ParseName maps an image name of index.json to the image it names in bale: a full name
// ([HOST/]REPO:TAG or REPO@DIGEST) loses its registry host, as in image lists; a bare tag is
// that tag of repository repo.
func ParseName(name, repo string) (layout.Ref, error) {
	if !strings.ContainsAny(name, ":@/") {
		if err := layout.ValidateTag(name); err != nil {
			return layout.Ref{}, err
		}
		return layout.Ref{Repo: repo, Tag: name}, nil
	}
	return layout.ParseRef(name)
}

// Refs lists the images index.json names, sorted.
func (r *Reader) Refs() ([]layout.Ref, error) { return r.l.Refs() }

// Resolve returns the manifest ref names.
func (r *Reader) Resolve(ref layout.Ref) (digest.Digest, error) { return r.l.Resolve(ref) }

// ReadManifest reads manifest d and verifies it.
func (r *Reader) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	return r.l.ReadManifest(repo, d)
}

// OpenBlob opens blob d; the caller verifies what it reads.
func (r *Reader) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	return r.l.OpenBlob(repo, d)
}

// Referrers lists the manifests of index.json whose subject is d, in repo or unnamed.
func (r *Reader) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	return r.l.Referrers(repo, d)
}

// Close releases the archive.
func (r *Reader) Close() error { return r.fsys.Close() }
