package fileart

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/written"
	"github.com/bale-project/bale/layout"
)

// ErrConflict is two file artifacts (two tags of one name) that would write different
// content at one path of a files: directory.
var ErrConflict = errors.New("two artifacts write one path")

// Layers returns the layers of m that are files of a file artifact in repo: m is an image
// manifest in a repository under files/, and each layer returned has a title. None means that
// the image is not a file artifact.
func Layers(repo string, m *layout.Manifest) []layout.Descriptor {
	if !strings.HasPrefix(repo, RepoPrefix) || m.IsIndex() {
		return nil
	}
	var out []layout.Descriptor
	for _, l := range m.Layers {
		if l.Annotations[AnnotationTitle] != "" {
			out = append(out, l)
		}
	}
	return out
}

// Writer is a files:DIR destination: every file artifact written as DIR/<name>/<title>, a
// directory layer extracted there. Each output is made under a temporary name in its final
// directory while PutImage runs, verified whole, and renamed into place by Commit, so a
// failed copy or unpack (Abort) leaves what DIR held before. Images that are not file
// artifacts are skipped and counted.
type Writer struct {
	root string
	mu   sync.Mutex
	outs map[string]*output // by final path
	// skipped are the images that are not file artifacts.
	skipped []layout.Ref
	// removals are the tags patches removed, for Commit.
	removals []removal
	linked   int
	copied   int
	done     bool
}

// removal is a tag a patch removed, with the manifest it pointed at.
type removal struct {
	ref layout.Ref
	d   digest.Digest
}

// output is one file or directory waiting in its temporary name for Commit.
type output struct {
	ref    layout.Ref
	layer  digest.Digest
	size   int64
	owners map[string]digest.Digest // the tags that write it, with their manifests
	tmp    string                   // the file, or the directory holding the extracted tree at tmp/<title>
	isDir  bool
	title  string
	target string
}

// NewWriter names a files: directory at root, creating nothing yet.
func NewWriter(root string) *Writer { return &Writer{root: root, outs: map[string]*output{}} }

// Root is the files: directory.
func (w *Writer) Root() string { return w.root }

// Skipped lists the images PutImage was given that are not file artifacts.
func (w *Writer) Skipped() []layout.Ref {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]layout.Ref(nil), w.skipped...)
}

// Counts says how many files were hard links to their blob and how many were copied.
func (w *Writer) Counts() (linked, copied int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.linked, w.copied
}

// Written is how many files and directories Commit placed (or will place).
func (w *Writer) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.outs)
}

// ConcurrentPut reports that PutImage calls may overlap: each output has its own temporary
// name.
func (w *Writer) ConcurrentPut() bool { return true }

// Sweep removes the temporary files an interrupted run left in the directory.
func (w *Writer) Sweep() error { return fsutil.Sweep(w.root) }

// PutImage writes the files of the file artifact img (tag ref of a files/ repository) under
// temporary names; any other image is skipped.
func (w *Writer) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	layers := Layers(ref.Repo, img.Manifest)
	if ref.Tag == "" || len(layers) == 0 {
		w.mu.Lock()
		w.skipped = append(w.skipped, ref)
		w.mu.Unlock()
		return nil
	}
	name := strings.TrimPrefix(ref.Repo, RepoPrefix)
	for _, l := range layers {
		if err := w.putLayer(ref, img.Digest(), name, l, src); err != nil {
			return fmt.Errorf("file %s of %s: %w", l.Annotations[AnnotationTitle], ref, err)
		}
	}
	return nil
}

// claim reserves the final path of a layer, or reports that the same content is already
// placed there by another tag; content that differs is an ErrConflict.
func (w *Writer) claim(o *output) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.outs[o.target]; ok {
		if prev.layer == o.layer {
			maps.Copy(prev.owners, o.owners)
			return false, nil
		}
		return false, fmt.Errorf("%s and %s both write %s (layers %s and %s): copy one of them (--images), or remove the other tag: %w",
			prev.ref, o.ref, o.target, prev.layer, o.layer, ErrConflict)
	}
	w.outs[o.target] = o
	return true, nil
}

func (w *Writer) putLayer(ref layout.Ref, manifest digest.Digest, name string, l layout.Descriptor, src layout.Source) error {
	title := l.Annotations[AnnotationTitle]
	if err := checkTitle(title); err != nil {
		return err
	}
	mode, hasMode := fs.FileMode(0o644), false
	if s, ok := l.Annotations[AnnotationMode]; ok {
		m, err := ParseMode(s)
		if err != nil {
			return err
		}
		mode, hasMode = m, true
	}
	target := filepath.Join(w.root, filepath.FromSlash(name), filepath.FromSlash(title))
	o := &output{ref: ref, layer: l.Digest, size: l.Size, owners: map[string]digest.Digest{ref.String(): manifest},
		title: title, target: target, isDir: l.Annotations[AnnotationUnpack] == "true"}
	if ok, err := w.claim(o); !ok || err != nil {
		return err
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, fsutil.DirMode); err != nil {
		return w.drop(o, err)
	}
	var err error
	if o.isDir {
		err = w.extract(o, l, src, mode, hasMode)
	} else {
		err = w.placeFile(o, ref.Repo, l, src, mode)
	}
	return w.drop(o, err)
}

// drop forgets o and removes its temporary file when err is set; it returns err.
func (w *Writer) drop(o *output, err error) error {
	if err == nil {
		return nil
	}
	if o.tmp != "" {
		os.RemoveAll(o.tmp)
	}
	w.mu.Lock()
	delete(w.outs, o.target)
	w.mu.Unlock()
	return err
}

// extract writes the directory layer l into a new temporary directory beside its target.
func (w *Writer) extract(o *output, l layout.Descriptor, src layout.Source, mode fs.FileMode, hasMode bool) error {
	tmp, err := os.MkdirTemp(filepath.Dir(o.target), ".bale-tmp-")
	if err != nil {
		return err
	}
	o.tmp = tmp
	rc, err := src.OpenBlob(o.ref.Repo, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := Extract(rc, l, tmp); err != nil {
		return err
	}
	if hasMode { // bale's annotation: the directory's own mode, as packed
		if err := os.Chmod(filepath.Join(tmp, filepath.FromSlash(o.title)), mode); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.copied++
	w.mu.Unlock()
	return nil
}

// placeFile puts the file layer l at a temporary name beside its target: a hard link to the
// blob when src keeps blobs as files on this file system, else a copy, verified either way,
// with mode (a hard link shares the blob's inode, which stays read-only: mode without its
// write bits).
func (w *Writer) placeFile(o *output, repo string, l layout.Descriptor, src layout.Source, mode fs.FileMode) error {
	tmp, err := fsutil.TempName(filepath.Dir(o.target))
	if err != nil {
		return err
	}
	o.tmp = tmp
	if fsrc, ok := src.(layout.FileSource); ok {
		linked, err := w.link(fsrc, repo, l, tmp, mode&^0o222)
		if err != nil {
			return err
		}
		if linked {
			w.mu.Lock()
			w.linked++
			w.mu.Unlock()
			return nil
		}
	}
	rc, err := src.OpenBlob(repo, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := fsutil.WriteNew(tmp, layout.NewVerifier(rc, l), mode); err != nil {
		return err
	}
	w.mu.Lock()
	w.copied++
	w.mu.Unlock()
	return nil
}

// link hard-links blob l of fsrc at tmp and verifies it, giving the inode mode when it is
// still the blob's own read-only mode (or already mode); it reports false, having linked
// nothing, when the blob is on another file system or already carries another file's mode.
func (w *Writer) link(fsrc layout.FileSource, repo string, l layout.Descriptor, tmp string, mode fs.FileMode) (bool, error) {
	p, err := fsrc.BlobPath(repo, l)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("blob %s: %s is not a regular file: %w", l.Digest, p, layout.ErrInvalid)
	}
	if err := os.Link(p, tmp); err != nil {
		if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK) {
			return false, nil
		}
		return false, fmt.Errorf("linking blob %s: %w", l.Digest, err)
	}
	if err := layout.VerifyFile(tmp, l); err != nil {
		return false, err
	}
	// One inode, one mode: the check and the chmod are made one at a time.
	w.mu.Lock()
	defer w.mu.Unlock()
	li, err := os.Lstat(tmp)
	if err != nil {
		return false, err
	}
	switch perm := li.Mode().Perm(); {
	case perm == mode:
	case perm == fsutil.BlobMode && os.Chmod(tmp, mode) == nil:
	default: // another file's mode, or not ours to change: copy
		return false, os.Remove(tmp)
	}
	return true, nil
}

// Commit renames every output into place (a directory replaces the one there, moved aside
// first), in path order, then removes what the tags patches removed alone had written
// (see RemoveImage) and records what it wrote in the directory's record (written.RecordName).
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	targets := make([]string, 0, len(w.outs))
	for t := range w.outs {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	var errs []error
	for _, t := range targets {
		o := w.outs[t]
		if o.isDir {
			errs = append(errs, swapDir(filepath.Join(o.tmp, filepath.FromSlash(o.title)), t))
			os.RemoveAll(o.tmp)
			continue
		}
		if err := os.Rename(o.tmp, t); err != nil {
			os.Remove(o.tmp)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return w.record()
}

// record updates the directory's record: the outputs of the removed tags that no other tag
// owns are removed (when they still hold what bale wrote), then this run's outputs recorded.
func (w *Writer) record() error {
	if len(w.outs) == 0 && len(w.removals) == 0 {
		return nil
	}
	if _, err := os.Stat(w.root); errors.Is(err, fs.ErrNotExist) {
		return nil // nothing written, nothing to remove
	}
	rec, err := written.Load(w.root)
	if err != nil {
		return err
	}
	for _, rm := range w.removals {
		free := rec.Release(rm.ref, rm.d)
		for _, rel := range slices.Sorted(maps.Keys(free)) {
			if w.outs[filepath.Join(w.root, filepath.FromSlash(rel))] != nil {
				continue // written again by this run, for a tag still there
			}
			if _, err := written.Remove(w.root, rel, free[rel]); err != nil {
				return err
			}
		}
	}
	for t, o := range w.outs {
		rel, err := filepath.Rel(w.root, t)
		if err != nil {
			return err
		}
		out := written.Output{Digest: o.layer, Size: o.size}
		if o.isDir {
			if out.Tree, err = written.Tree(t); err != nil {
				return err
			}
			out.Digest, out.Size = "", 0
		}
		rec.Put(filepath.ToSlash(rel), o.owners, out)
	}
	return rec.Save(w.root)
}

// Abort removes every temporary output; Abort after Commit does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	for _, o := range w.outs {
		if o.tmp != "" {
			os.RemoveAll(o.tmp)
		}
	}
}

// RemoveImage marks the tag ref (of manifest d), which a patch removed, for Commit: the files
// and directories the directory's record says bale wrote for it and for no other tag are
// removed then, if they still hold what bale wrote; anything else is left. It reports
// whether the record names ref with d.
func (w *Writer) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	rec, err := written.Load(w.root)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	w.removals = append(w.removals, removal{ref, d})
	w.mu.Unlock()
	for rel := range rec.Outputs {
		if rec.Owns(rel, ref, d) {
			return true, nil
		}
	}
	return false, nil
}

// swapDir renames the directory tmp to dst, moving an existing dst aside first.
func swapDir(tmp, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		old, err := os.MkdirTemp(filepath.Dir(dst), ".bale-old-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(dst, filepath.Join(old, "x")); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dst)
}

var _ layout.Sink = (*Writer)(nil)
