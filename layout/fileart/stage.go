package fileart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// What an artifact holds, as oras-go v2 (content/file, pack.go) writes it.
const (
	// RepoPrefix starts the repository of every file artifact: files/<name>.
	RepoPrefix = "files/"
	// ArtifactType is the manifest's artifactType: oras push's default
	// (oras.MediaTypeUnknownArtifact).
	ArtifactType = "application/vnd.unknown.artifact.v1"
	// MediaTypeFile is a file's layer, its bytes as they are (oras-go's defaultBlobMediaType).
	MediaTypeFile = ocispec.MediaTypeImageLayer
	// MediaTypeDir is a directory's layer, a tar+gzip (oras-go's defaultBlobDirMediaType).
	MediaTypeDir = ocispec.MediaTypeImageLayerGzip
	// AnnotationTitle names a layer's file (or directory) in the artifact.
	AnnotationTitle = ocispec.AnnotationTitle
	// AnnotationDigest is the sha256 of a directory's uncompressed tar (oras-go's
	// file.AnnotationDigest).
	AnnotationDigest = "io.deis.oras.content.digest"
	// AnnotationUnpack "true" marks a layer to extract (oras-go's file.AnnotationUnpack).
	AnnotationUnpack = "io.deis.oras.content.unpack"
	// AnnotationMode is bale's: the permission bits of the file or directory a layer holds,
	// four octal digits ("0755"). oras ignores it; files: output applies it.
	AnnotationMode = "com.github.bale-project.file.mode"
	// DefaultTag is the tag of an artifact whose Spec names none.
	DefaultTag = "latest"
	// defaultURLMode is the mode recorded for a file fetched from a URL.
	defaultURLMode = 0o644
)

// Spec names one file artifact to stage (a release file's files: entry).
type Spec struct {
	// Path is an absolute path to a file or a directory; URL an http(s) address of a file,
	// whose SHA256 (hex) must then be given. Exactly one of Path and URL is set.
	Path, URL, SHA256 string
	// Name is the repository under files/ (default: the base name of Path or URL), Tag its
	// tag (default DefaultTag).
	Name, Tag string
}

// Options tune Stage.
type Options struct {
	// Client fetches URLs (TLS settings, proxies, timeouts); nil means http.DefaultClient.
	Client *http.Client
	// Username and Password, when set, are sent as basic auth with the request of a URL.
	Username, Password string
}

// ErrSpec is a Spec that cannot be staged as written (no path or URL, both, a relative
// path, a URL without its sha256, a bad name or tag).
var ErrSpec = errors.New("invalid file spec")

// Ref returns the ref spec is staged under: files/<name>:<tag>, with the defaults applied.
func (spec Spec) Ref() (layout.Ref, error) {
	name := spec.Name
	if name == "" {
		switch {
		case spec.Path != "":
			name = filepath.Base(spec.Path)
		case spec.URL != "":
			if u, err := url.Parse(spec.URL); err == nil {
				name = path.Base(u.Path)
			}
		}
		name = strings.ToLower(name)
	}
	tag := spec.Tag
	if tag == "" {
		tag = DefaultTag
	}
	ref := layout.Ref{Repo: RepoPrefix + name, Tag: tag}
	if err := layout.ValidateRepo(ref.Repo); err != nil {
		return ref, fmt.Errorf("%w: name %q (give name: a lower-case repository path): %w", ErrSpec, name, err)
	}
	if err := layout.ValidateTag(tag); err != nil {
		return ref, fmt.Errorf("%w: tag %q: %w", ErrSpec, tag, err)
	}
	return ref, nil
}

// Stage writes the file, directory or URL of spec into the registry storage at root as the
// artifact files/<name>:<tag> and returns that ref: the layer, the empty config and the
// manifest blobs first (each verified), then the repository links, the tag last. A path that
// is missing, a URL that fails or whose sha256 differs writes nothing but a temporary file it
// removes. The caller holds root's lock if other writers may run.
func Stage(ctx context.Context, root string, spec Spec, opt Options) (layout.Ref, error) {
	ref, err := spec.Ref()
	if err != nil {
		return ref, err
	}
	if (spec.Path == "") == (spec.URL == "") {
		return ref, fmt.Errorf("%w %s: give one of path and url", ErrSpec, ref)
	}
	if spec.Path != "" && !filepath.IsAbs(spec.Path) {
		return ref, fmt.Errorf("%w %s: path %s is not absolute", ErrSpec, ref, spec.Path)
	}
	st, err := registry.Create(root)
	if err != nil {
		return ref, err
	}
	tmp, err := os.MkdirTemp(root, ".bale-tmp-")
	if err != nil {
		return ref, err
	}
	defer os.RemoveAll(tmp)
	var layer layout.Descriptor
	var data string // the file holding the layer's bytes
	if spec.URL != "" {
		layer, data, err = fetch(ctx, spec, opt, tmp)
	} else {
		layer, data, err = ingestPath(ctx, spec.Path, tmp)
	}
	if err != nil {
		return ref, err
	}
	if err := storeFile(st, layer, data); err != nil {
		return ref, err
	}
	m, err := writeManifest(st, layer)
	if err != nil {
		return ref, err
	}
	img := &layout.Image{Manifest: m}
	if err := st.LinkImage(ref.Repo, img); err != nil {
		return ref, err
	}
	return ref, st.Tag(ref.Repo, ref.Tag, m.Digest)
}

// ingestPath copies the file at p, or a tar+gzip of the directory at p, into a file under
// tmp and describes it as the artifact's layer.
func ingestPath(ctx context.Context, p, tmp string) (layout.Descriptor, string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return layout.Descriptor{}, "", fmt.Errorf("file %s: %w", p, err)
	}
	title := filepath.Base(p)
	ann := map[string]string{AnnotationTitle: title, AnnotationMode: FormatMode(fi.Mode())}
	switch {
	case fi.IsDir():
		d, out, tarDigest, err := tarGzipDir(ctx, p, title, tmp)
		if err != nil {
			return d, "", err
		}
		ann[AnnotationDigest] = tarDigest.String()
		ann[AnnotationUnpack] = "true"
		d.MediaType, d.Annotations = MediaTypeDir, ann
		return d, out, nil
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return layout.Descriptor{}, "", fmt.Errorf("file %s: %w", p, err)
		}
		defer f.Close()
		d, out, err := copyHashed(f, tmp)
		if err != nil {
			return d, "", fmt.Errorf("file %s: %w", p, err)
		}
		d.MediaType, d.Annotations = MediaTypeFile, ann
		return d, out, nil
	}
	return layout.Descriptor{}, "", fmt.Errorf("file %s is a %s, not a file or a directory: %w", p, fi.Mode().Type(), layout.ErrInvalid)
}

// fetch downloads spec.URL into a file under tmp and checks its sha256 against spec.SHA256.
func fetch(ctx context.Context, spec Spec, opt Options, tmp string) (layout.Descriptor, string, error) {
	want := strings.ToLower(strings.TrimPrefix(spec.SHA256, "sha256:"))
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return layout.Descriptor{}, "", fmt.Errorf("%w: %s: sha256 %q is not 64 hex digits (a URL needs its sha256)", ErrSpec, spec.URL, spec.SHA256)
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return layout.Descriptor{}, "", fmt.Errorf("%w: %q is not an http(s) URL", ErrSpec, spec.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL, nil)
	if err != nil {
		return layout.Descriptor{}, "", fmt.Errorf("%s: %w", spec.URL, err)
	}
	if opt.Username != "" || opt.Password != "" {
		req.SetBasicAuth(opt.Username, opt.Password)
	}
	client := opt.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return layout.Descriptor{}, "", fmt.Errorf("fetching %s: %w", spec.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return layout.Descriptor{}, "", fmt.Errorf("fetching %s: %s: %w", spec.URL, resp.Status, layout.ErrNotFound)
	}
	d, out, err := copyHashed(resp.Body, tmp)
	if err != nil {
		return d, "", fmt.Errorf("fetching %s: %w", spec.URL, err)
	}
	if d.Digest.Encoded() != want {
		return d, "", fmt.Errorf("%s: got sha256:%s, the release file says sha256:%s (nothing was written): %w",
			spec.URL, d.Digest.Encoded(), want, layout.ErrDigestMismatch)
	}
	d.MediaType = MediaTypeFile
	d.Annotations = map[string]string{AnnotationTitle: path.Base(u.Path), AnnotationMode: FormatMode(defaultURLMode)}
	if t := d.Annotations[AnnotationTitle]; t == "/" || t == "." || t == "" {
		return d, "", fmt.Errorf("%w: %s names no file", ErrSpec, spec.URL)
	}
	return d, out, nil
}

// copyHashed copies r into a new file under dir and returns its digest and size.
func copyHashed(r io.Reader, dir string) (layout.Descriptor, string, error) {
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return layout.Descriptor{}, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return layout.Descriptor{}, "", err
	}
	return layout.Descriptor{Digest: digest.NewDigest(digest.SHA256, h), Size: n}, f.Name(), nil
}

// storeFile places the verified file p as blob d: a hard link where the blob is absent (p is
// in the storage's own temporary directory), else a verified copy; a valid blob is kept.
func storeFile(st *registry.Store, d layout.Descriptor, p string) error {
	if st.HasBlob(d) {
		return nil
	}
	if err := os.Chmod(p, fsutil.BlobMode); err != nil {
		return err
	}
	if err := st.LinkBlob(d, p); err == nil {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return st.WriteBlob(d, f)
}

// writeManifest stores the empty config and the manifest of an artifact of one layer, as
// oras-go's PackManifest (image-spec 1.1) marshals it, and returns it parsed.
func writeManifest(st *registry.Store, layer layout.Descriptor) (*layout.Manifest, error) {
	cfg := ocispec.DescriptorEmptyJSON
	if err := st.WriteBlob(layout.Descriptor{Digest: cfg.Digest, Size: cfg.Size}, strings.NewReader(string(cfg.Data))); err != nil {
		return nil, fmt.Errorf("writing the empty config: %w", err)
	}
	raw, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       cfg,
		Layers: []ocispec.Descriptor{{
			MediaType:   layer.MediaType,
			Digest:      layer.Digest,
			Size:        layer.Size,
			Annotations: layer.Annotations,
		}},
	})
	if err != nil {
		return nil, err
	}
	m, err := layout.ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	if err := st.WriteBlob(m.Descriptor(), strings.NewReader(string(raw))); err != nil {
		return nil, fmt.Errorf("writing manifest %s: %w", m.Digest, err)
	}
	return m, nil
}

// FormatMode writes the permission bits of mode as AnnotationMode holds them ("0755").
func FormatMode(mode fs.FileMode) string { return fmt.Sprintf("%04o", mode.Perm()) }

// ParseMode reads an AnnotationMode value: permission bits only (setuid, setgid and sticky
// are refused).
func ParseMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o777 != 0 {
		return 0, fmt.Errorf("%s %q: want permission bits in octal, as 0755: %w", AnnotationMode, s, layout.ErrInvalid)
	}
	return fs.FileMode(v), nil
}
