package dockerarchive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/tarfile"
	"github.com/bale-project/bale/layout"
)

// Options tune Create.
type Options struct {
	// NamePrefix is HOST[:PORT][/PATH] before every repository in RepoTags (bale's
	// --name-prefix); empty means names normalized as Docker does (layout.RuntimeName).
	NamePrefix string
	// Platform picks the image of a multi-arch index; nil means linux and the host's
	// architecture.
	Platform *layout.Platform
}

// Skipped is an image PutImage left out, and why.
type Skipped struct {
	Ref    layout.Ref
	Reason string
}

// Writer writes a docker-archive: configs and layers stream into the tar as PutImage receives
// them, each verified (see the package doc); manifest.json is written at Commit, which then
// renames the finished file into place. Until then, and after Abort or any error, nothing is
// at the path. PutImage calls must not overlap.
type Writer struct {
	tw       *tarfile.Writer
	opt      Options
	platform layout.Platform
	entries  []*tarball.Descriptor
	byConfig map[digest.Digest]*tarball.Descriptor
	names    map[string]named // RepoTag -> the image it names
	// refs are the refs each RepoTag was given for, in the order they came: more than one
	// when names merge (busybox and library/busybox are both docker.io/library/busybox).
	refs    layout.NameRefs
	skipped []Skipped
}

// named is the image a RepoTag names: its config, and the manifest PutImage was given.
type named struct {
	config, manifest digest.Digest
}

var (
	_ layout.Sink    = (*Writer)(nil)
	_ layout.Remover = (*Writer)(nil)
)

// Create starts writing the docker-archive path (.tar, or .tar.gz/.tgz or .tar.zst compressed).
func Create(path string, opt Options) (*Writer, error) {
	if err := layout.ValidateNamePrefix(opt.NamePrefix); err != nil {
		return nil, err
	}
	tw, err := tarfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", path, err)
	}
	w := &Writer{tw: tw, opt: opt, byConfig: map[digest.Digest]*tarball.Descriptor{}, names: map[string]named{},
		refs: layout.NameRefs{}}
	w.platform = layout.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opt.Platform != nil {
		w.platform = *opt.Platform
	}
	return w, nil
}

// Path is the archive being written.
func (w *Writer) Path() string { return w.tw.Path() }

// Root is the directory the archive is written in.
func (w *Writer) Root() string { return filepath.Dir(w.tw.Path()) }

// Skipped lists the images PutImage left out: referrers and artifacts, which the format cannot
// hold, in the order they came.
func (w *Writer) Skipped() []Skipped { return slices.Clone(w.skipped) }

// PutImage adds img under ref: for an index, the image of the writer's platform. A referrer
// or an artifact (whose config is not an image config) is left out and listed by Skipped.
// Two refs that get one name must be the same image.
func (w *Writer) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	top := img.Digest()
	if layout.IsReferrer(ref, img) {
		w.skipped = append(w.skipped, Skipped{ref, "a referrer (signature, attestation, SBOM): a docker-archive cannot hold one"})
		return nil
	}
	if img.Manifest.IsIndex() {
		sel, err := img.SelectPlatform(w.platform)
		if err != nil {
			return fmt.Errorf("a docker-archive holds one platform of each image (--platform): %w", err)
		}
		img = sel
	}
	m := img.Manifest
	if !layout.IsRunnable(img) {
		w.skipped = append(w.skipped, Skipped{ref, fmt.Sprintf("an artifact (config %s), not an image to run", m.Config.MediaType)})
		return nil
	}
	name, err := layout.RuntimeName(w.opt.NamePrefix, ref)
	if err != nil {
		return err
	}
	if ref.Tag == "" {
		w.skipped = append(w.skipped, Skipped{ref, "named by digest only: the format keeps no manifest digest to name it by"})
		return nil
	}
	if prev, ok := w.names[name]; ok && prev.config != m.Config.Digest {
		return fmt.Errorf("two different images would both be named %s in %s (pick one with --images): %w", name, w.Path(), layout.ErrInvalid)
	}
	e := w.byConfig[m.Config.Digest]
	if e == nil {
		if e, err = w.putImage(ref.Repo, m, src); err != nil {
			return err
		}
	}
	if !slices.Contains(e.RepoTags, name) {
		e.RepoTags = append(e.RepoTags, name)
	}
	w.names[name] = named{m.Config.Digest, top}
	w.refs.Add(name, ref)
	return nil
}

// Merged returns each RepoTag given for more than one ref (alpine:3.14 and
// library/alpine:3.14 are both docker.io/library/alpine:3.14), with those refs sorted: one
// name in manifest.json for all of them.
func (w *Writer) Merged() map[string][]layout.Ref {
	return w.refs.Merged()
}

// Names counts the names (RepoTags) manifest.json gives images.
func (w *Writer) Names() int { return len(w.names) }

// putImage writes the config and the layers of image manifest m.
func (w *Writer) putImage(repo string, m *layout.Manifest, src layout.Source) (*tarball.Descriptor, error) {
	cfg, err := readBlob(src, repo, *m.Config, MaxConfigSize)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfg))
	if err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", m.Config.Digest, err, layout.ErrInvalid)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers, its config %s lists %d diff_ids: %w", m.Digest, len(m.Layers), m.Config.Digest, len(cf.RootFS.DiffIDs), layout.ErrInvalid)
	}
	e := &tarball.Descriptor{RepoTags: []string{}}
	if e.Config, err = MemberName(Config, m.Config.Digest); err != nil {
		return nil, err
	}
	if !w.tw.Has(e.Config) {
		if err := w.tw.AddBytes(e.Config, cfg); err != nil {
			return nil, err
		}
	}
	for i, l := range m.Layers {
		diffID := digest.Digest(cf.RootFS.DiffIDs[i].String())
		name, err := MemberName(Layer, diffID)
		if err != nil {
			return nil, fmt.Errorf("config %s, diff_id %d: %w", m.Config.Digest, i, err)
		}
		if !w.tw.Has(name) {
			if err := w.putLayer(name, repo, l, diffID, src); err != nil {
				return nil, err
			}
		}
		e.Layers = append(e.Layers, name)
	}
	w.byConfig[m.Config.Digest] = e
	w.entries = append(w.entries, e)
	return e, nil
}

// readBlob reads blob d of repo whole (at most max bytes) and verifies it.
func readBlob(src layout.Source, repo string, d layout.Descriptor, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fmt.Errorf("blob %s of %d bytes exceeds %d: %w", d.Digest, d.Size, max, layout.ErrInvalid)
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(layout.NewVerifier(rc, d))
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	return b, nil
}

// putLayer writes layer d of repo as member name, uncompressed: an uncompressed blob as it
// streams; a compressed one decompressed into a spool file first, for its size, with the
// blob's digest and the diff id both checked before it goes in.
func (w *Writer) putLayer(name, repo string, d layout.Descriptor, diffID digest.Digest, src layout.Source) error {
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(layout.NewVerifier(rc, d), 1<<20)
	head, _ := br.Peek(6)
	c, err := tarfile.Detect(head)
	if err != nil {
		return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
	}
	if c == tarfile.None {
		if d.Digest != diffID {
			return fmt.Errorf("layer %s of %s is not compressed, yet its config's diff_id is %s: %w", d.Digest, repo, diffID, layout.ErrDigestMismatch)
		}
		if err := w.tw.Add(name, d.Size, br); err != nil {
			return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
		}
		return nil
	}
	spool, err := w.tw.Spool()
	if err != nil {
		return err
	}
	defer spool.Close()
	zr, release, err := tarfile.Decompress(br, c)
	if err != nil {
		return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
	}
	defer release()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(spool, h), zr)
	if err == nil {
		_, err = io.Copy(io.Discard, br) // to the end of the blob: its digest is checked there
	}
	if err != nil {
		return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != diffID {
		return fmt.Errorf("layer %s of %s decompresses to %s, its config's diff_id is %s: %w", d.Digest, repo, got, diffID, layout.ErrDigestMismatch)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := w.tw.Add(name, n, spool); err != nil {
		return fmt.Errorf("layer %s of %s: %w", d.Digest, repo, err)
	}
	return nil
}

// RemoveImage drops ref's name from manifest.json if it names the image of manifest d (its
// members stay).
func (w *Writer) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	name, err := layout.RuntimeName(w.opt.NamePrefix, ref)
	if err != nil {
		return false, err
	}
	n, ok := w.names[name]
	if !ok || n.manifest != d {
		return false, nil
	}
	e := w.byConfig[n.config]
	e.RepoTags = slices.DeleteFunc(e.RepoTags, func(t string) bool { return t == name })
	delete(w.names, name)
	delete(w.refs, name)
	return true, nil
}

// Images counts the images (configs) written so far.
func (w *Writer) Images() int { return len(w.entries) }

// Commit writes manifest.json, ends the archive and renames it into place.
func (w *Writer) Commit() error {
	m := make(tarball.Manifest, len(w.entries))
	for i, e := range w.entries {
		m[i] = *e
	}
	b, err := json.Marshal(m)
	if err == nil {
		err = w.tw.AddBytes(ManifestFile, b)
	}
	if err != nil {
		w.tw.Abort()
		return err
	}
	return w.tw.Commit()
}

// Abort drops the archive: nothing appears at its path.
func (w *Writer) Abort() { w.tw.Abort() }
