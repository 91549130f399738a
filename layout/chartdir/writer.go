// Package chartdir writes the Helm charts a source holds as a classic Helm chart repository
// (the charts:DIR location): DIR/<name>-<version>.tgz, each the chart's content layer byte for
// byte, its provenance file beside as .tgz.prov, and an index.yaml made as Helm's own
// repository index code (helm.sh/helm/v4/pkg/repo/v1) makes it (index.go), which helm repo add reads from any
// static web server.
package chartdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"
	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/written"
	"github.com/bale-project/bale/layout"
)

// Media types of a Helm chart in an OCI registry, as helm push writes it
// (helm.sh/helm/v4/pkg/registry).
const (
	ConfigMediaType       = layout.MediaTypeHelmConfig
	ChartLayerMediaType   = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	ProvLayerMediaType    = "application/vnd.cncf.helm.chart.provenance.v1.prov"
	legacyChartLayerMedia = "application/tar+gzip"
	// IndexFile is the repository index written in DIR.
	IndexFile = "index.yaml"
	// maxConfig bounds the chart metadata read from a config blob.
	maxConfig = 1 << 20
)

// ErrConflict is two charts of one name and version whose content differs.
var ErrConflict = errors.New("two charts of one name and version differ")

// Chart is the chart an image manifest holds: its config and content layer, and its
// provenance layer when it has one. ok is false for anything that is not a Helm chart.
func Chart(m *layout.Manifest) (config, content layout.Descriptor, prov *layout.Descriptor, ok bool) {
	if m.IsIndex() || m.Config == nil || m.Config.MediaType != ConfigMediaType {
		return config, content, nil, false
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case ChartLayerMediaType, legacyChartLayerMedia:
			if !ok {
				content, ok = l, true
			}
		case ProvLayerMediaType:
			if prov == nil {
				p := l
				prov = &p
			}
		}
	}
	return *m.Config, content, prov, ok
}

// Writer is a charts:DIR destination. PutImage places each chart's .tgz (and .prov) under a
// temporary name in DIR, verified; Commit renames them into place and writes index.yaml
// (the charts written, and those of the index already there whose files are still there);
// Abort removes the temporary files, so a failed command leaves DIR as it was.
type Writer struct {
	root    string
	mu      sync.Mutex
	charts  map[string]*entry // by file name
	skipped []layout.Ref
	// removals are the tags patches removed (repo:tag), with their manifests, for Commit.
	removals []layout.Ref
	linked   int
	copied   int
	done     bool
}

// entry is one chart waiting for Commit.
type entry struct {
	ref      layout.Ref
	meta     *chart.Metadata
	file     string        // <name>-<version>.tgz
	digest   digest.Digest // of the .tgz
	content  layout.Descriptor
	prov     *layout.Descriptor
	owners   map[string]digest.Digest // the tags that write it, with their manifests
	tmp      string
	provTmp  string
	hasProvs bool
}

// NewWriter names a charts: directory at root, creating nothing yet.
func NewWriter(root string) *Writer { return &Writer{root: root, charts: map[string]*entry{}} }

// Root is the charts: directory.
func (w *Writer) Root() string { return w.root }

// Skipped lists the images PutImage was given that are not Helm charts.
func (w *Writer) Skipped() []layout.Ref {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]layout.Ref(nil), w.skipped...)
}

// Written is how many charts Commit places (or placed).
func (w *Writer) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.charts)
}

// Counts says how many files were hard links to their blob and how many were copied.
func (w *Writer) Counts() (linked, copied int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.linked, w.copied
}

// ConcurrentPut reports that PutImage calls may overlap: each file has its own temporary name.
func (w *Writer) ConcurrentPut() bool { return true }

// PutImage places the chart img holds; any other image is skipped.
func (w *Writer) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	cfg, content, prov, ok := Chart(img.Manifest)
	if !ok {
		w.mu.Lock()
		w.skipped = append(w.skipped, ref)
		w.mu.Unlock()
		return nil
	}
	meta, err := readMetadata(src, ref.Repo, cfg)
	if err != nil {
		return fmt.Errorf("chart %s: %w", ref, err)
	}
	e := &entry{ref: ref, meta: meta, file: meta.Name + "-" + meta.Version + ".tgz", digest: content.Digest, hasProvs: prov != nil,
		content: content, prov: prov, owners: map[string]digest.Digest{ref.String(): img.Digest()}}
	if ok, err := w.claim(e); !ok || err != nil {
		return err
	}
	if err := os.MkdirAll(w.root, 0o755); err != nil {
		return w.drop(e, err)
	}
	if e.tmp, err = w.place(src, ref.Repo, content); err != nil {
		return w.drop(e, fmt.Errorf("chart %s: %w", ref, err))
	}
	if prov != nil {
		if e.provTmp, err = w.place(src, ref.Repo, *prov); err != nil {
			return w.drop(e, fmt.Errorf("provenance of chart %s: %w", ref, err))
		}
	}
	return nil
}

// readMetadata reads the chart's metadata from its config blob (verified), as helm push wrote
// it, and checks that it names a chart file safely.
func readMetadata(src layout.Source, repoName string, cfg layout.Descriptor) (*chart.Metadata, error) {
	if cfg.Size > maxConfig {
		return nil, fmt.Errorf("config %s: %d bytes: %w", cfg.Digest, cfg.Size, layout.ErrInvalid)
	}
	rc, err := src.OpenBlob(repoName, cfg)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(layout.NewVerifier(rc, cfg))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Digest, err)
	}
	var md chart.Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", cfg.Digest, err, layout.ErrInvalid)
	}
	if md.APIVersion == "" {
		md.APIVersion = chart.APIVersionV1
	}
	if err := md.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", cfg.Digest, err, layout.ErrInvalid)
	}
	if strings.HasPrefix(md.Name, ".") || strings.ContainsAny(md.Name+md.Version, `/\`) {
		return nil, fmt.Errorf("config %s: chart %q version %q cannot name a file: %w", cfg.Digest, md.Name, md.Version, layout.ErrInvalid)
	}
	return &md, nil
}

// claim reserves e's file name, or reports that the same chart is already placed by another
// ref; a different chart of that name and version is an ErrConflict.
func (w *Writer) claim(e *entry) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.charts[e.file]; ok {
		if prev.digest == e.digest {
			for k, v := range e.owners {
				prev.owners[k] = v
			}
			return false, nil
		}
		return false, fmt.Errorf("%s and %s are both %s (content %s and %s): copy one of them (--images): %w",
			prev.ref, e.ref, e.file, prev.digest, e.digest, ErrConflict)
	}
	w.charts[e.file] = e
	return true, nil
}

// drop forgets e and removes its temporary files; it returns err.
func (w *Writer) drop(e *entry, err error) error {
	for _, p := range []string{e.tmp, e.provTmp} {
		if p != "" {
			os.Remove(p)
		}
	}
	w.mu.Lock()
	delete(w.charts, e.file)
	w.mu.Unlock()
	return err
}

// place puts blob d at a new temporary name in the directory: a hard link to the blob file
// where src keeps blobs as files on this file system, else a copy; verified either way.
func (w *Writer) place(src layout.Source, repoName string, d layout.Descriptor) (string, error) {
	tmp, err := fsutil.TempName(w.root)
	if err != nil {
		return "", err
	}
	if fsrc, ok := src.(layout.FileSource); ok {
		p, err := fsrc.BlobPath(repoName, d)
		if err != nil {
			return "", err
		}
		err = os.Link(p, tmp)
		if err == nil {
			if err := layout.VerifyFile(tmp, d); err != nil {
				os.Remove(tmp)
				return "", err
			}
			w.count(&w.linked)
			return tmp, nil
		}
		if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EMLINK) {
			return "", fmt.Errorf("linking blob %s: %w", d.Digest, err)
		}
	}
	rc, err := src.OpenBlob(repoName, d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := fsutil.WriteNew(tmp, layout.NewVerifier(rc, d), 0o644); err != nil {
		os.Remove(tmp)
		return "", err
	}
	w.count(&w.copied)
	return tmp, nil
}

func (w *Writer) count(n *int) {
	w.mu.Lock()
	*n++
	w.mu.Unlock()
}

// Commit renames every chart into place, then writes index.yaml.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	files := make([]string, 0, len(w.charts))
	for f := range w.charts {
		files = append(files, f)
	}
	sort.Strings(files)
	index := newIndex()
	for _, f := range files {
		e := w.charts[f]
		target := filepath.Join(w.root, f)
		if e.provTmp != "" {
			if err := os.Rename(e.provTmp, target+".prov"); err != nil {
				w.removeTemps()
				return err
			}
			e.provTmp = ""
		}
		if err := os.Rename(e.tmp, target); err != nil {
			w.removeTemps()
			return err
		}
		e.tmp = ""
		if err := index.add(e.meta, f, e.digest.Encoded()); err != nil {
			return fmt.Errorf("chart %s: %w", e.ref, err)
		}
	}
	if len(files) == 0 {
		if _, err := os.Stat(w.root); errors.Is(err, fs.ErrNotExist) {
			return nil // no chart, no repository
		}
	}
	if err := w.record(); err != nil {
		return err
	}
	idx := filepath.Join(w.root, IndexFile)
	if old, err := loadIndex(idx); err == nil {
		// Keep the versions of the index already there whose .tgz is still there, unless
		// this run wrote the same version.
		for name, versions := range old.Entries {
			for _, v := range versions {
				if v == nil || v.Metadata == nil || index.has(name, v.Version) {
					continue
				}
				if len(v.URLs) == 1 && !strings.Contains(v.URLs[0], "/") {
					if _, err := os.Stat(filepath.Join(w.root, v.URLs[0])); err == nil {
						index.Entries[name] = append(index.Entries[name], v)
					}
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", idx, err)
	}
	index.sortEntries()
	if err := index.write(idx); err != nil {
		return fmt.Errorf("writing %s: %w", idx, err)
	}
	return nil
}

// removeTemps removes every temporary file not renamed yet.
func (w *Writer) removeTemps() {
	for _, e := range w.charts {
		for _, p := range []string{e.tmp, e.provTmp} {
			if p != "" {
				os.Remove(p)
			}
		}
	}
}

// Abort removes every temporary file; Abort after Commit does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.removeTemps()
}

// Sweep removes the temporary files an interrupted run left in the directory.
func (w *Writer) Sweep() error {
	ents, err := os.ReadDir(w.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".bale-tmp-") {
			if err := os.RemoveAll(filepath.Join(w.root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveImage marks the tag ref (of manifest d), which a patch removed, for Commit: the .tgz
// and .prov the directory's record (written.RecordName) says bale wrote for it and for no
// other tag are removed then, if they still hold what bale wrote, and index.yaml no longer
// lists that version; anything else is left. It reports whether the record names ref with d.
func (w *Writer) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	rec, err := written.Load(w.root)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	w.removals = append(w.removals, layout.Ref{Repo: ref.Repo, Tag: ref.Tag, Digest: d})
	w.mu.Unlock()
	for rel := range rec.Outputs {
		if rec.Owns(rel, ref, d) {
			return true, nil
		}
	}
	return false, nil
}

// record removes the files only removed tags owned (before index.yaml is made from the files
// there) and records the charts this run wrote.
func (w *Writer) record() error {
	if len(w.charts) == 0 && len(w.removals) == 0 {
		return nil
	}
	rec, err := written.Load(w.root)
	if err != nil {
		return err
	}
	for _, rm := range w.removals {
		free := rec.Release(layout.Ref{Repo: rm.Repo, Tag: rm.Tag}, rm.Digest)
		names := make([]string, 0, len(free))
		for rel := range free {
			names = append(names, rel)
		}
		sort.Strings(names)
		for _, rel := range names {
			if w.charts[strings.TrimSuffix(rel, ".prov")] != nil {
				continue // written again by this run, for a tag still there
			}
			if _, err := written.Remove(w.root, rel, free[rel]); err != nil {
				return err
			}
		}
	}
	for f, e := range w.charts {
		rec.Put(f, e.owners, written.Output{Digest: e.content.Digest, Size: e.content.Size})
		if e.prov != nil {
			rec.Put(f+".prov", e.owners, written.Output{Digest: e.prov.Digest, Size: e.prov.Size})
		}
	}
	return rec.Save(w.root)
}

var _ layout.Sink = (*Writer)(nil)
