package ociarchive

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/tarfile"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/ocidir"
)

// Options tune Create.
type Options struct {
	// NamePrefix is HOST[:PORT][/PATH] before every repository in the names (bale's
	// --name-prefix); empty means names normalized as Docker does (layout.RuntimeName).
	NamePrefix string
}

// Writer writes an oci-archive: each blob streams into the tar as PutImage receives it,
// verified against its digest on the way; index.json is written at Commit, which then renames
// the finished file into place. Until then, and after Abort or any error, nothing is at the
// path. PutImage calls must not overlap.
type Writer struct {
	tw    *tarfile.Writer
	opt   Options
	index ocidir.Index
	names map[string]taken // runtime name -> the image that has it
	// refs are the refs each image name was given for, in the order they came: more than one
	// when names merge (busybox and library/busybox are both docker.io/library/busybox).
	refs layout.NameRefs
}

// taken is the image a name was given to.
type taken struct {
	ref      layout.Ref
	d        digest.Digest
	referrer bool // named in bale's referrer annotation, not as an image
}

var (
	_ layout.Sink    = (*Writer)(nil)
	_ layout.Remover = (*Writer)(nil)
)

// Create starts writing the oci-archive path (.tar, or .tar.gz/.tgz or .tar.zst compressed).
func Create(path string, opt Options) (*Writer, error) {
	if err := layout.ValidateNamePrefix(opt.NamePrefix); err != nil {
		return nil, err
	}
	tw, err := tarfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("oci-archive %s: %w", path, err)
	}
	w := &Writer{tw: tw, opt: opt, index: ocidir.Index{SchemaVersion: 2, Manifests: []layout.Descriptor{}},
		names: map[string]taken{}, refs: layout.NameRefs{}}
	if err := tw.AddBytes(ocidir.LayoutFile, []byte(ocidir.LayoutHeader)); err != nil {
		tw.Abort()
		return nil, err
	}
	return w, nil
}

// Path is the archive being written.
func (w *Writer) Path() string { return w.tw.Path() }

// Root is the directory the archive is written in.
func (w *Writer) Root() string { return filepath.Dir(w.tw.Path()) }

// PutImage adds every blob and manifest of img not yet in the archive, each verified while it
// is written, and names img in index.json (see the package doc); an image already named
// NAME is replaced. Two refs that get one name (busybox and library/busybox are both
// docker.io/library/busybox) must be the same image.
func (w *Writer) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	name, err := layout.RuntimeName(w.opt.NamePrefix, ref)
	if err != nil {
		return err
	}
	if prev, ok := w.names[name]; ok && prev.ref != ref && prev.d != img.Digest() {
		return fmt.Errorf("%s and %s are different images that would both be named %s in %s (pick one with --images): %w",
			prev.ref, ref, name, w.Path(), layout.ErrInvalid)
	}
	for _, d := range img.Blobs() {
		if err := w.putBlob(ref.Repo, d, src); err != nil {
			return err
		}
	}
	for _, m := range img.Manifests() {
		member, err := ocidir.BlobName(m.Digest)
		if err != nil {
			return err
		}
		if !w.tw.Has(member) {
			if err := w.tw.AddBytes(member, m.Raw); err != nil {
				return err
			}
		}
	}
	desc := img.Manifest.Descriptor()
	desc.Annotations = map[string]string{ImageNameKey: name, ocidir.RefNameKey: name}
	referrer := layout.IsReferrer(ref, img)
	if referrer || !layout.IsRunnable(img) {
		desc.Annotations = map[string]string{ReferrerNameKey: name}
	}
	w.drop(name)
	w.index.Manifests = append(w.index.Manifests, desc)
	w.names[name] = taken{ref, img.Digest(), referrer}
	if !referrer {
		w.refs.Add(name, ref)
	}
	return nil
}

// Merged returns each image name given for more than one ref (alpine:3.14 and
// library/alpine:3.14 are both docker.io/library/alpine:3.14), with those refs sorted: one
// image in index.json for all of them.
func (w *Writer) Merged() map[string][]layout.Ref {
	return w.refs.Merged()
}

// Names counts the names index.json gives images, referrers not counted.
func (w *Writer) Names() int {
	n := 0
	for _, t := range w.names {
		if !t.referrer {
			n++
		}
	}
	return n
}

// putBlob streams blob d of repo from src into the archive, verified, unless it is there.
func (w *Writer) putBlob(repo string, d layout.Descriptor, src layout.Source) error {
	member, err := ocidir.BlobName(d.Digest)
	if err != nil {
		return err
	}
	if w.tw.Has(member) || layout.SkipAbsent(src, repo, d) {
		return nil
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	if err := w.tw.Add(member, d.Size, layout.NewVerifier(rc, d)); err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	return nil
}

// nameOf is the name descriptor d of index.json was given.
func nameOf(d layout.Descriptor) string {
	if n := d.Annotations[ocidir.RefNameKey]; n != "" {
		return n
	}
	return d.Annotations[ReferrerNameKey]
}

// drop removes the descriptor named name from index.json.
func (w *Writer) drop(name string) bool {
	out := w.index.Manifests[:0]
	dropped := false
	for _, d := range w.index.Manifests {
		if nameOf(d) == name {
			dropped = true
			continue
		}
		out = append(out, d)
	}
	w.index.Manifests = out
	return dropped
}

// RemoveImage drops ref from index.json if it names d (its blobs stay in the archive).
func (w *Writer) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	name, err := layout.RuntimeName(w.opt.NamePrefix, ref)
	if err != nil {
		return false, err
	}
	for _, x := range w.index.Manifests {
		if nameOf(x) == name && x.Digest == d {
			delete(w.names, name)
			delete(w.refs, name)
			return w.drop(name), nil
		}
	}
	return false, nil
}

// Images counts the descriptors of index.json so far.
func (w *Writer) Images() int { return len(w.index.Manifests) }

// Commit writes index.json, ends the archive and renames it into place.
func (w *Writer) Commit() error {
	b, err := json.Marshal(w.index)
	if err == nil {
		err = w.tw.AddBytes(ocidir.IndexFile, b)
	}
	if err != nil {
		w.tw.Abort()
		return err
	}
	return w.tw.Commit()
}

// Abort drops the archive: nothing appears at its path.
func (w *Writer) Abort() { w.tw.Abort() }
