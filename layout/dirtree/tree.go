package dirtree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
)

// Files of one image directory (containers/image directory transport, version 1.1).
const (
	VersionFile      = "version"
	VersionContent   = "Directory Transport Version: 1.1\n"
	ManifestFile     = "manifest.json"
	childManifestExt = ".manifest.json"
)

// Tree is a directory of skopeo dir: images.
type Tree struct {
	root string
	// Filled by scan: image dirs by ref, and where each digest's file lives.
	images map[string]*imageDir // key: Ref.String()
	files  map[digest.Digest]string
	mu     sync.Mutex // guards Copied while PutImage calls overlap
	// Copied counts blobs PutImage had to copy because linking was impossible.
	Copied int
}

type imageDir struct {
	ref    layout.Ref
	path   string
	digest digest.Digest // of manifest.json
}

var _ layout.FileSource = (*Tree)(nil)

// Is reports whether root is a directory holding at least one image directory.
func Is(root string) bool {
	found := false
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipAll
		}
		if d.Type().IsRegular() && d.Name() == ManifestFile {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// Open scans the tree at root: every directory holding a regular manifest.json is an image
// named by its path relative to root (repo:tag or repo@digest; a leading host:port folder, as
// `skopeo sync --scoped` writes, is dropped). Directories whose names are not valid references
// are reported together.
func Open(root string) (*Tree, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("dir tree: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("dir tree %s: not a directory: %w", root, layout.ErrInvalid)
	}
	t := &Tree{root: root, images: map[string]*imageDir{}, files: map[digest.Digest]string{}}
	var errs []error
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".bale-") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		mf := filepath.Join(p, ManifestFile)
		if fi, err := os.Lstat(mf); err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if err := t.scanImage(p); err != nil {
			errs = append(errs, err)
		}
		return filepath.SkipDir // like skopeo sync: an image dir is not searched further
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	return t, errors.Join(errs...)
}

func (t *Tree) scanImage(dir string) error {
	rel, err := filepath.Rel(t.root, dir)
	if err != nil || rel == "." {
		return fmt.Errorf("%s: the tree root itself is an image; give its parent: %w", dir, layout.ErrInvalid)
	}
	ref, err := layout.ParseLocalRef(filepath.ToSlash(rel))
	if err != nil {
		return fmt.Errorf("image dir %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return err
	}
	id := &imageDir{ref: ref, path: dir, digest: digest.FromBytes(b)}
	if ref.Digest != "" && ref.Digest != id.digest {
		return fmt.Errorf("image dir %s: manifest.json hashes to %s: %w", dir, id.digest, layout.ErrDigestMismatch)
	}
	t.images[ref.String()] = id
	t.note(id.digest, filepath.Join(dir, ManifestFile))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := strings.TrimSuffix(e.Name(), childManifestExt)
		if d := digest.NewDigestFromEncoded(digest.SHA256, name); layout.ValidateDigest(d) == nil {
			t.note(d, filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

func (t *Tree) note(d digest.Digest, p string) {
	if _, ok := t.files[d]; !ok {
		t.files[d] = p
	}
}

// New names a destination tree at root without touching the file system; PutImage creates
// what it needs.
func New(root string) *Tree {
	return &Tree{root: root, images: map[string]*imageDir{}, files: map[digest.Digest]string{}}
}

// Create opens root as a destination tree, creating it if needed.
func Create(root string) (*Tree, error) {
	if err := os.MkdirAll(root, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("creating dir tree: %w", err)
	}
	return &Tree{root: root, images: map[string]*imageDir{}, files: map[digest.Digest]string{}}, nil
}

// Root is the tree's root directory.
func (t *Tree) Root() string { return t.root }

// ImageDir is the directory of ref under root: <repo>:<tag>, or <repo>@sha256:<hex>.
func ImageDir(root string, ref layout.Ref) (string, error) {
	if err := layout.ValidateRepo(ref.Repo); err != nil {
		return "", err
	}
	name := ref.Repo
	switch {
	case ref.Tag != "":
		if err := layout.ValidateTag(ref.Tag); err != nil {
			return "", err
		}
		name += ":" + ref.Tag
	case ref.Digest != "":
		if err := layout.ValidateDigest(ref.Digest); err != nil {
			return "", err
		}
		name += "@" + string(ref.Digest)
	default:
		return "", fmt.Errorf("reference %q has neither tag nor digest: %w", ref, layout.ErrInvalid)
	}
	return filepath.Join(root, filepath.FromSlash(name)), nil
}

// Refs lists every image of the tree, sorted.
func (t *Tree) Refs() ([]layout.Ref, error) {
	refs := make([]layout.Ref, 0, len(t.images))
	for _, id := range t.images {
		refs = append(refs, id.ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].Repo != refs[j].Repo {
			return refs[i].Repo < refs[j].Repo
		}
		return refs[i].String() < refs[j].String()
	})
	return refs, nil
}

// Resolve returns the digest of ref's manifest.json; a digest reference resolves if any image
// of its repository holds that manifest.
func (t *Tree) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref.Tag != "" {
		id := t.images[layout.Ref{Repo: ref.Repo, Tag: ref.Tag}.String()]
		if id == nil {
			return "", fmt.Errorf("%s: %w", ref, layout.ErrNotFound)
		}
		if ref.Digest != "" && ref.Digest != id.digest {
			return "", fmt.Errorf("%s: tag holds %s: %w", ref, id.digest, layout.ErrNotFound)
		}
		return id.digest, nil
	}
	for _, id := range t.images {
		if id.ref.Repo == ref.Repo && id.digest == ref.Digest {
			return id.digest, nil
		}
	}
	return "", fmt.Errorf("%s: %w", ref, layout.ErrNotFound)
}

// ReadManifest reads manifest d (a manifest.json or <hex>.manifest.json) and verifies it.
func (t *Tree) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	if err := layout.ValidateDigest(d); err != nil {
		return nil, err
	}
	p, ok := t.files[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s of %s: %w", d, repo, layout.ErrNotFound)
	}
	return layout.ReadManifest(p, d, "manifest "+p)
}

// BlobPath returns a file holding blob d.
func (t *Tree) BlobPath(repo string, d layout.Descriptor) (string, error) {
	p, ok := t.files[d.Digest]
	if !ok {
		return "", fmt.Errorf("blob %s of %s: %w", d.Digest, repo, layout.ErrNotFound)
	}
	return p, nil
}

// OpenBlob opens a file holding blob d.
func (t *Tree) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	p, err := t.BlobPath(repo, d)
	if err != nil {
		return nil, err
	}
	f, _, err := layout.OpenRegular(p)
	return f, err
}

// ConcurrentPut reports that PutImage calls for different refs may overlap: each builds its
// own image directory under a temporary name.
func (t *Tree) ConcurrentPut() bool { return true }

// PutImage writes img as the image directory of ref, taking every file from src (hard links
// where src is file-backed on the same file system). The directory is built under a temporary
// name and renamed into place, replacing an older image of the same ref; manifest.json is
// written last.
func (t *Tree) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) (err error) {
	dst, err := ImageDir(t.root, ref)
	if err != nil {
		return err
	}
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, fsutil.DirMode); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".bale-tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, fsutil.DirMode); err != nil {
		return err
	}
	place := func(name string, d layout.Descriptor) error {
		// From a file source, one link(2) into the fresh directory, which is ours alone.
		copied, err := layout.Place(filepath.Join(tmp, name), src, ref.Repo, d)
		if copied {
			t.mu.Lock()
			t.Copied++
			t.mu.Unlock()
		}
		return err
	}
	for _, b := range img.Blobs() {
		if layout.SkipAbsent(src, ref.Repo, b) {
			continue // a non-distributable layer the source lacks (not carried)
		}
		if err := place(b.Digest.Encoded(), b); err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
	}
	for _, c := range img.Children {
		if err := place(c.Digest.Encoded()+childManifestExt, c.Descriptor()); err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
	}
	if err := writeNew(filepath.Join(tmp, VersionFile), []byte(VersionContent)); err != nil {
		return err
	}
	if err := place(ManifestFile, img.Manifest.Descriptor()); err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	return swapDir(tmp, dst)
}

// writeNew writes data to the new file path in a directory being built under a temporary name
// (which is what makes it appear whole): no temporary name of its own is needed.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fsutil.FileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(fsutil.FileMode)
	}
	return errors.Join(err, f.Close())
}

// Sweep removes the temporary files and directories an interrupted bale left in the tree.
func (t *Tree) Sweep() error { return fsutil.Sweep(t.root) }

// RemoveImage removes the image directory of ref if its manifest.json still hashes to d, and
// reports whether it did.
func (t *Tree) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	dir, err := ImageDir(t.root, ref)
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && digest.FromBytes(b) != d) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, fsutil.RemoveDir(dir)
}

// swapDir renames the finished directory tmp to dst, moving an existing dst aside first.
func swapDir(tmp, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		old, err := os.MkdirTemp(filepath.Dir(dst), ".bale-old-")
		if err != nil {
			return err
		}
		if err := os.Rename(dst, filepath.Join(old, "img")); err != nil {
			os.Remove(old)
			return err
		}
		defer os.RemoveAll(old)
	}
	return os.Rename(tmp, dst)
}

var _ layout.Sink = (*Tree)(nil)
