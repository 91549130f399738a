package dockerarchive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/tarfile"
	"github.com/bale-project/bale/layout"
)

// Reader is a docker-archive opened for reading: a layout.Source of its tagged images, each
// with the manifest the package doc describes. Manifests are made at Open; blobs are read in
// place and verified by the caller, as from any layout (an uncompressed layer's digest is its
// diff id, so that check is the config's).
type Reader struct {
	fsys      *tarfile.FS
	path      string
	tags      map[layout.Ref]digest.Digest // repo:tag -> manifest
	refs      []layout.Ref
	manifests map[digest.Digest]*layout.Manifest
	blobs     map[digest.Digest]string // config or layer -> member
	// Untagged counts the images manifest.json lists without RepoTags, which no reference
	// reaches.
	Untagged int
}

var _ layout.Source = (*Reader)(nil)

// OpenOptions tune Open.
type OpenOptions struct {
	// TempDir is where a compressed archive is decompressed ("" means os.TempDir()).
	TempDir string
}

// Open opens the docker-archive at path (a plain, gzip- or zstd-compressed tar), reads
// manifest.json and every config, and makes each image's manifest. Close it.
func Open(path string, opt OpenOptions) (*Reader, error) {
	fsys, err := tarfile.Open(path, tarfile.Options{TempDir: opt.TempDir})
	if err != nil {
		return nil, fmt.Errorf("docker-archive %w", err)
	}
	r := &Reader{fsys: fsys, path: path, tags: map[layout.Ref]digest.Digest{},
		manifests: map[digest.Digest]*layout.Manifest{}, blobs: map[digest.Digest]string{}}
	if err := r.load(); err != nil {
		fsys.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", path, err)
	}
	return r, nil
}

// load reads manifest.json and makes the manifest of every image.
func (r *Reader) load() error {
	b, err := r.readMember(ManifestFile, MaxManifestJSON)
	if err != nil {
		return err
	}
	entries, err := ParseManifestJSON(b)
	if err != nil {
		return err
	}
	for i, e := range entries {
		m, err := r.image(e)
		if err != nil {
			return fmt.Errorf("image %d (%s): %w", i+1, strings.Join(e.RepoTags, ", "), err)
		}
		r.manifests[m.Digest] = m
		for _, t := range e.Tags {
			r.tags[t] = m.Digest
			r.refs = append(r.refs, t)
		}
		if len(e.Tags) == 0 {
			r.Untagged++
		}
	}
	slices.SortFunc(r.refs, func(a, b layout.Ref) int { return strings.Compare(a.String(), b.String()) })
	return nil
}

// readMember reads member name whole, refusing one over max bytes.
func (r *Reader) readMember(name string, max int64) ([]byte, error) {
	fi, err := r.fsys.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no member %s: %w", name, layout.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("member %s of %d bytes exceeds %d: %w", name, fi.Size(), max, layout.ErrInvalid)
	}
	return r.fsys.ReadFile(name)
}

// image reads the config of e, looks at each layer and makes the image's manifest.
func (r *Reader) image(e Entry) (*layout.Manifest, error) {
	b, err := r.readMember(e.Config, MaxConfigSize)
	if err != nil {
		return nil, err
	}
	cfg := layout.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", e.Config, err, layout.ErrInvalid)
	}
	if len(cf.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("config %s lists %d diff_ids for %d layers: %w", e.Config, len(cf.RootFS.DiffIDs), len(e.Layers), layout.ErrInvalid)
	}
	r.blobs[cfg.Digest] = e.Config
	layers := make([]layout.Descriptor, len(e.Layers))
	for i, name := range e.Layers {
		diffID := digest.Digest(cf.RootFS.DiffIDs[i].String())
		if layers[i], err = r.layer(name, diffID); err != nil {
			return nil, err
		}
		r.blobs[layers[i].Digest] = name
	}
	return makeManifest(cfg, layers)
}

// layer describes the layer held in member name, whose diff id the config says is diffID: an
// uncompressed tar is that digest (checked when read); a gzip-compressed one is hashed and
// its diff id checked now.
func (r *Reader) layer(name string, diffID digest.Digest) (layout.Descriptor, error) {
	if err := layout.ValidateDigest(diffID); err != nil {
		return layout.Descriptor{}, fmt.Errorf("layer %s: diff_id: %w", name, err)
	}
	f, err := r.fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return layout.Descriptor{}, fmt.Errorf("layer %s: no such member: %w", name, layout.ErrNotFound)
	}
	if err != nil {
		return layout.Descriptor{}, fmt.Errorf("layer %s: %w", name, err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(6)
	c, err := tarfile.Detect(head)
	if err != nil {
		return layout.Descriptor{}, fmt.Errorf("layer %s: %w", name, err)
	}
	switch c {
	case tarfile.None:
		return layout.Descriptor{MediaType: MediaTypeLayer, Digest: diffID, Size: fi.Size()}, nil
	case tarfile.Gzip:
	default:
		return layout.Descriptor{}, fmt.Errorf("layer %s is %s-compressed, which the docker save format does not hold: %w", name, c, layout.ErrUnsupported)
	}
	blob := sha256.New()
	zr, release, err := tarfile.Decompress(io.TeeReader(br, blob), c)
	if err != nil {
		return layout.Descriptor{}, fmt.Errorf("layer %s: %w", name, err)
	}
	defer release()
	diff := sha256.New()
	if _, err := io.Copy(diff, zr); err != nil {
		return layout.Descriptor{}, fmt.Errorf("layer %s: %v: %w", name, err, layout.ErrInvalid)
	}
	io.Copy(blob, br) // anything after the gzip stream is part of the blob
	if got := digest.NewDigest(digest.SHA256, diff); got != diffID {
		return layout.Descriptor{}, fmt.Errorf("layer %s decompresses to %s, the config's diff_id is %s: %w", name, got, diffID, layout.ErrDigestMismatch)
	}
	return layout.Descriptor{MediaType: MediaTypeLayerGzip, Digest: digest.NewDigest(digest.SHA256, blob), Size: fi.Size()}, nil
}

// Path is the archive's path.
func (r *Reader) Path() string { return r.path }

// Refs lists the tagged images, sorted.
func (r *Reader) Refs() ([]layout.Ref, error) { return slices.Clone(r.refs), nil }

// Resolve returns the manifest made for ref (a tag, or a digest of one of the manifests).
func (r *Reader) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref.Tag != "" {
		d, ok := r.tags[layout.Ref{Repo: ref.Repo, Tag: ref.Tag}]
		if ok && (ref.Digest == "" || ref.Digest == d) {
			return d, nil
		}
	} else if r.manifests[ref.Digest] != nil {
		for t, d := range r.tags {
			if t.Repo == ref.Repo && d == ref.Digest {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("%s in docker-archive %s: %w", ref, r.path, layout.ErrNotFound)
}

// ReadManifest returns manifest d made at Open.
func (r *Reader) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	m := r.manifests[d]
	if m == nil {
		return nil, fmt.Errorf("manifest %s of %s in docker-archive %s: %w", d, repo, r.path, layout.ErrNotFound)
	}
	return m, nil
}

// OpenBlob opens the member holding blob d (a config or a layer), or the bytes of a manifest
// made at Open. A member is verified as it is
// read (a damaged member fails at its end naming the member, since a docker save member name
// such as <id>/layer.tar does not say which blob it is); the caller may verify it again.
func (r *Reader) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	if m := r.manifests[d.Digest]; m != nil {
		return io.NopCloser(bytes.NewReader(m.Raw)), nil // made at Open, not a member
	}
	name, ok := r.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s of %s in docker-archive %s: %w", d.Digest, repo, r.path, layout.ErrNotFound)
	}
	f, err := r.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("blob %s (member %s of %s): %w", d.Digest, name, r.path, err)
	}
	return &memberReader{f: f, v: layout.NewVerifier(f, d), what: fmt.Sprintf("docker-archive %s, member %s", r.path, name)}, nil
}

// memberReader verifies a member as it is read and names it in its errors.
type memberReader struct {
	f    fs.File
	v    *layout.Verifier
	what string
}

// Read reads the member, verifying it.
func (m *memberReader) Read(p []byte) (int, error) {
	n, err := m.v.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", m.what, err)
	}
	return n, err
}

// Close closes the member.
func (m *memberReader) Close() error { return m.f.Close() }

// Close releases the archive.
func (r *Reader) Close() error { return r.fsys.Close() }
