package dockerarchive

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/tarfile"
	"github.com/bale-project/bale/layout"
)

// Files and limits of a docker-archive.
const (
	ManifestFile = "manifest.json"
	// MaxManifestJSON bounds manifest.json, as containerd's importer does (20 MiB).
	MaxManifestJSON = 20 << 20
	// MaxConfigSize bounds an image config.
	MaxConfigSize = 16 << 20
)

// Kind is a kind of member bale writes.
type Kind int

// Kinds of member.
const (
	Config Kind = iota // <hex>.json, hex of the config's sha256 (the image id)
	Layer              // <hex>.tar, hex of the uncompressed layer's sha256 (the diff id)
)

// MemberName is the name of a member of kind k for digest d: the one place bale builds it.
func MemberName(k Kind, d digest.Digest) (string, error) {
	if err := layout.ValidateDigest(d); err != nil {
		return "", err
	}
	switch k {
	case Config:
		return d.Encoded() + ".json", nil
	case Layer:
		return d.Encoded() + ".tar", nil
	}
	return "", fmt.Errorf("member kind %d: %w", k, layout.ErrInvalid)
}

// Entry is one image of manifest.json, its member names cleaned and its tags parsed.
type Entry struct {
	Config string
	// Tags are RepoTags as references (registry host dropped), in file order.
	Tags []layout.Ref
	// RepoTags are the names as the file gives them.
	RepoTags []string
	Layers   []string
}

// ParseManifestJSON parses manifest.json (go-containerregistry's tarball.Manifest, the
// `docker save` schema): at least one image, each with a config and clean member names, and
// RepoTags that are image names with a tag. A tag given to two images is refused, as are
// foreign layers (LayerSources), which the archive does not hold.
func ParseManifestJSON(b []byte) ([]Entry, error) {
	if len(b) > MaxManifestJSON {
		return nil, fmt.Errorf("%s of %d bytes exceeds %d: %w", ManifestFile, len(b), MaxManifestJSON, layout.ErrInvalid)
	}
	var m tarball.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", ManifestFile, err, layout.ErrInvalid)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s lists no image: %w", ManifestFile, layout.ErrInvalid)
	}
	out := make([]Entry, len(m))
	tagged := map[layout.Ref]int{}
	var errs []error
	for i, d := range m {
		e := &out[i]
		var err error
		if e.Config, err = member(d.Config); err != nil {
			errs = append(errs, fmt.Errorf("%s image %d: Config: %w", ManifestFile, i+1, err))
		}
		for _, l := range d.Layers {
			name, err := member(l)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s image %d: Layers: %w", ManifestFile, i+1, err))
			}
			e.Layers = append(e.Layers, name)
		}
		if len(d.LayerSources) > 0 {
			errs = append(errs, fmt.Errorf("%s image %d: foreign layers (LayerSources) are not in the archive: %w", ManifestFile, i+1, layout.ErrUnsupported))
		}
		for _, t := range d.RepoTags {
			ref, err := layout.ParseRef(t)
			if err == nil && (ref.Digest != "" || ref.Tag == "") {
				err = fmt.Errorf("not a NAME:TAG: %w", layout.ErrInvalid)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s image %d: RepoTags %q: %w", ManifestFile, i+1, t, err))
				continue
			}
			if j, dup := tagged[ref]; dup && j != i {
				errs = append(errs, fmt.Errorf("%s: %s names images %d and %d: %w", ManifestFile, t, j+1, i+1, layout.ErrInvalid))
				continue
			}
			tagged[ref] = i
			e.Tags = append(e.Tags, ref)
			e.RepoTags = append(e.RepoTags, t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// member cleans a member name of manifest.json.
func member(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("an empty member name: %w", layout.ErrInvalid)
	}
	n, err := tarfile.CleanName(name)
	if err != nil || n == "." {
		return "", fmt.Errorf("member name %q: %w", name, layout.ErrInvalid)
	}
	return n, nil
}

// dockerManifest is a Docker schema2 manifest as containerd's importer writes one for each
// image of a docker-archive, field for field (images/archive/importer.go, ImportIndex).
type dockerManifest struct {
	SchemaVersion int                 `json:"schemaVersion"`
	MediaType     string              `json:"mediaType"`
	Config        layout.Descriptor   `json:"config"`
	Layers        []layout.Descriptor `json:"layers"`
}

// Media types of the layers of the manifests made for an archive's images.
const (
	MediaTypeLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// makeManifest builds and parses the manifest of an image of config cfg and layers.
func makeManifest(cfg layout.Descriptor, layers []layout.Descriptor) (*layout.Manifest, error) {
	if layers == nil {
		layers = []layout.Descriptor{}
	}
	cfg.MediaType = layout.MediaTypeDockerConfig
	b, err := json.Marshal(dockerManifest{SchemaVersion: 2, MediaType: layout.MediaTypeDockerManifest, Config: cfg, Layers: layers})
	if err != nil {
		return nil, err
	}
	return layout.ParseManifest(b)
}
