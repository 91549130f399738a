package ocidir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
)

// Files of an OCI image layout.
const (
	LayoutFile   = "oci-layout"
	IndexFile    = "index.json"
	BlobsDir     = "blobs"
	RefNameKey   = "org.opencontainers.image.ref.name"
	LayoutHeader = `{"imageLayoutVersion":"1.0.0"}`
)

// Layout is an OCI image layout directory (or, opened with OpenFS, the members of an
// oci-archive).
type Layout struct {
	root  string
	index Index
	fsys  fs.FS   // nil: the directory root
	opt   Options // OpenFS's
	// Copied counts blobs PutImage had to copy because linking was impossible.
	Copied int
}

var (
	_ layout.FileSource = (*Layout)(nil)
	_ layout.Sink       = (*Layout)(nil)
	_ layout.Remover    = (*Layout)(nil)
)

// Index is index.json; unknown fields of the file are not kept.
type Index struct {
	SchemaVersion int                 `json:"schemaVersion"`
	MediaType     string              `json:"mediaType,omitempty"`
	Manifests     []layout.Descriptor `json:"manifests"`
	Annotations   map[string]string   `json:"annotations,omitempty"`
}

// Is reports whether root holds an oci-layout file.
func Is(root string) bool {
	fi, err := os.Stat(filepath.Join(root, LayoutFile))
	return err == nil && fi.Mode().IsRegular()
}

// Open reads the OCI layout at root.
func Open(root string) (*Layout, error) {
	b, err := os.ReadFile(filepath.Join(root, LayoutFile))
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", root, err)
	}
	var hdr struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil || hdr.Version == "" {
		return nil, fmt.Errorf("OCI layout %s: oci-layout is not {\"imageLayoutVersion\": ...}: %w", root, layout.ErrInvalid)
	}
	l := &Layout{root: root}
	b, err = os.ReadFile(filepath.Join(root, IndexFile))
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", root, err)
	}
	if l.index, err = ParseIndex(b); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", root, err)
	}
	return l, nil
}

// New names an OCI layout at root to write, existing or not, without touching the file system.
func New(root string) (*Layout, error) {
	if Is(root) {
		return Open(root)
	}
	return &Layout{root: root, index: Index{SchemaVersion: 2, Manifests: []layout.Descriptor{}}}, nil
}

// Root is the layout's directory.
func (l *Layout) Root() string { return l.root }

// defaultRepoRE keeps what a repository name may hold of the layout directory's name.
var defaultRepoRE = regexp.MustCompile(`[^a-z0-9._-]+`)

// defaultRepo is the repository of ref names that are only a tag: the layout directory's name.
func (l *Layout) defaultRepo() string {
	abs, _ := filepath.Abs(l.root)
	return RepoNamed(filepath.Base(abs))
}

// RepoNamed is the repository of ref names that are only a tag in a layout called name (its
// directory, or an archive's file name without its extensions): name lower-cased, other
// characters than [a-z0-9._-] made '-'; "oci" when that is no repository name.
func RepoNamed(name string) string {
	name = strings.Trim(defaultRepoRE.ReplaceAllString(strings.ToLower(name), "-"), "-._")
	if layout.ValidateRepo(name) != nil {
		return "oci"
	}
	return name
}

// RefName is the ref name bale writes for ref: "<repo>:<tag>" or "<repo>@<digest>".
func RefName(ref layout.Ref) string {
	if ref.Tag != "" {
		return ref.Repo + ":" + ref.Tag
	}
	return ref.Repo + "@" + string(ref.Digest)
}

// parseRefName maps a ref name of index.json to a reference (see the package doc).
func (l *Layout) parseRefName(name string) (layout.Ref, error) {
	if !strings.ContainsAny(name, ":@") {
		if err := layout.ValidateTag(name); err != nil {
			return layout.Ref{}, err
		}
		return layout.Ref{Repo: l.defaultRepo(), Tag: name}, nil
	}
	return layout.ParseLocalRef(name)
}

// Refs lists the tagged images of index.json whose media type is a manifest or index;
// descriptors of other media types (which the spec says must not cause errors) and untagged
// ones are skipped.
func (l *Layout) Refs() ([]layout.Ref, error) {
	var refs []layout.Ref
	var errs []error
	seen := map[string]bool{}
	for _, d := range l.index.Manifests {
		r, ok, err := l.refOf(d)
		if !ok || !layout.IsManifestType(d.MediaType) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[r.String()] {
			seen[r.String()] = true
			refs = append(refs, r)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	return refs, errors.Join(errs...)
}

// Resolve finds the descriptor of ref in index.json (the first one with its ref name, as
// skopeo does), or a blob of the layout for a digest reference.
func (l *Layout) Resolve(ref layout.Ref) (digest.Digest, error) {
	for _, d := range l.index.Manifests {
		r, ok, err := l.refOf(d)
		if !ok || !layout.IsManifestType(d.MediaType) {
			continue
		}
		if err == nil && r.Repo == ref.Repo &&
			((ref.Tag != "" && r.Tag == ref.Tag) || (ref.Tag == "" && d.Digest == ref.Digest)) {
			if ref.Digest != "" && ref.Digest != d.Digest {
				continue
			}
			return d.Digest, nil
		}
	}
	if ref.Tag == "" && ref.Digest != "" && l.hasBlob(ref.Digest) {
		return ref.Digest, nil
	}
	return "", fmt.Errorf("%s in OCI layout %s: %w", ref, l.root, layout.ErrNotFound)
}

func (l *Layout) blobPath(d digest.Digest) (string, error) {
	name, err := BlobName(d)
	if err != nil {
		return "", err
	}
	if l.fsys != nil {
		return "", fmt.Errorf("blob %s of %s is an archive member, not a file: %w", d, l.root, layout.ErrUnsupported)
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

// ReadManifest reads manifest d and verifies it.
func (l *Layout) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	if l.fsys != nil {
		return l.readManifestFS(repo, d)
	}
	p, err := l.blobPath(d)
	if err != nil {
		return nil, err
	}
	return layout.ReadManifest(p, d, fmt.Sprintf("manifest %s of %s", d, repo))
}

// BlobPath returns the file of blob d.
func (l *Layout) BlobPath(_ string, d layout.Descriptor) (string, error) { return l.blobPath(d.Digest) }

// OpenBlob opens blob d.
func (l *Layout) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	if l.fsys != nil {
		return l.openBlobFS(repo, d)
	}
	p, err := l.blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	f, _, err := layout.OpenRegular(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, layout.ErrNotFound)
	}
	return f, err
}

// PutImage stores every manifest and blob of img not yet present (hard links from a file
// source where possible), then points ref's descriptor in index.json at it: an existing
// descriptor with the same ref name is replaced, not left behind untagged. index.json is
// rewritten through a temporary file and a rename, after the blobs.
func (l *Layout) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	for _, d := range img.Descriptors() {
		if layout.SkipAbsent(src, ref.Repo, d) {
			continue // a non-distributable layer the source lacks (not carried)
		}
		p, err := l.blobPath(d.Digest)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size {
			continue
		}
		copied, err := layout.Place(p, src, ref.Repo, d)
		if copied {
			l.Copied++
		}
		if err != nil {
			return err
		}
	}
	name := RefName(ref)
	desc := img.Manifest.Descriptor()
	desc.Annotations = map[string]string{RefNameKey: name}
	out := l.index.Manifests[:0:0]
	for _, d := range l.index.Manifests {
		if d.Annotations[RefNameKey] != name {
			out = append(out, d)
		}
	}
	l.index.Manifests = append(out, desc)
	return l.writeIndex()
}

// Sweep removes the temporary files an interrupted bale left in the layout.
func (l *Layout) Sweep() error { return fsutil.Sweep(l.root) }

// RemoveImage drops ref's descriptor from index.json if it still names d.
func (l *Layout) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	name := RefName(ref)
	out := l.index.Manifests[:0:0]
	removed := false
	for _, x := range l.index.Manifests {
		if x.Annotations[RefNameKey] == name && x.Digest == d {
			removed = true
			continue
		}
		out = append(out, x)
	}
	if !removed {
		return false, nil
	}
	l.index.Manifests = out
	return true, l.writeIndex()
}

func (l *Layout) writeIndex() error {
	if !Is(l.root) {
		if err := fsutil.WriteFile(filepath.Join(l.root, LayoutFile), []byte(LayoutHeader), fsutil.FileMode); err != nil {
			return err
		}
	}
	b, err := json.Marshal(l.index)
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(l.root, IndexFile), b, fsutil.FileMode)
}
