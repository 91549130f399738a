package layout

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// MaxManifestSize bounds the manifests bale reads, as the registry does (4 MiB).
const MaxManifestSize = 4 << 20

// Manifest is a parsed image manifest or index. Raw keeps the exact bytes, which are what the
// digest is computed over and what every layout stores.
type Manifest struct {
	MediaType string
	Digest    digest.Digest // sha256 of Raw
	Raw       []byte
	// Config and Layers are set for image manifests.
	Config *Descriptor
	Layers []Descriptor
	// Manifests lists the children of an index or manifest list.
	Manifests []Descriptor
	// Subject is the manifest this one refers to (an OCI 1.1 referrer: a signature, an SBOM,
	// an attestation), nil for most manifests.
	Subject *Descriptor
	// ArtifactType and Annotations are the manifest's own (OCI 1.1), as a referrers index
	// lists them.
	ArtifactType string
	Annotations  map[string]string
}

// ReferrerDescriptor describes m as an entry of a referrers index (OCI distribution-spec
// 1.1, "Listing Referrers"): media type, digest, size, annotations and the artifact type,
// which for an image manifest without one is its config's media type.
func (m *Manifest) ReferrerDescriptor() Descriptor {
	d := m.Descriptor()
	d.ArtifactType = m.ArtifactType
	if d.ArtifactType == "" && m.Config != nil {
		d.ArtifactType = m.Config.MediaType
	}
	d.Annotations = m.Annotations
	return d
}

// Descriptor describes m itself.
func (m *Manifest) Descriptor() Descriptor {
	return Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Raw))}
}

// IsIndex reports whether m is an index or manifest list.
func (m *Manifest) IsIndex() bool { return IsIndexType(m.MediaType) }

// Blobs returns the config and layer descriptors of an image manifest (nil for an index).
func (m *Manifest) Blobs() []Descriptor {
	if m.Config == nil {
		return nil
	}
	return append([]Descriptor{*m.Config}, m.Layers...)
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Signatures    json.RawMessage   `json:"signatures"`
	FSLayers      json.RawMessage   `json:"fsLayers"`
	Subject       *Descriptor       `json:"subject"`
	ArtifactType  string            `json:"artifactType"`
	Annotations   map[string]string `json:"annotations"`
}

// ParseManifest parses manifest bytes the way the registry does: by schemaVersion and the
// top-level mediaType (an absent mediaType means an OCI index if "manifests" is present, an OCI
// manifest otherwise). Schema1 and unknown media types are refused with ErrUnsupported; every
// descriptor is validated.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest of %d bytes exceeds %d: %w", len(b), MaxManifestSize, ErrInvalid)
	}
	var r rawManifest
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parsing manifest JSON: %v: %w", err, ErrInvalid)
	}
	if r.SchemaVersion == nil {
		return nil, fmt.Errorf("manifest has no schemaVersion: %w", ErrInvalid)
	}
	switch *r.SchemaVersion {
	case 1:
		return nil, fmt.Errorf("docker schema1 manifest: convert it first (skopeo copy --format v2s2): %w", ErrUnsupported)
	case 2:
	default:
		return nil, fmt.Errorf("manifest schemaVersion %d: %w", *r.SchemaVersion, ErrUnsupported)
	}
	m := &Manifest{MediaType: r.MediaType, Digest: digest.FromBytes(b), Raw: b,
		Subject: r.Subject, ArtifactType: r.ArtifactType, Annotations: r.Annotations}
	if m.Subject != nil {
		if err := validateDescriptor(*m.Subject); err != nil {
			return nil, fmt.Errorf("subject: %w", err)
		}
	}
	if m.MediaType == "" {
		if r.Manifests != nil {
			m.MediaType = MediaTypeOCIIndex
		} else {
			m.MediaType = MediaTypeOCIManifest
		}
	}
	switch m.MediaType {
	case MediaTypeDockerManifest, MediaTypeOCIManifest:
		if r.Config == nil {
			return nil, fmt.Errorf("%s without a config: %w", m.MediaType, ErrInvalid)
		}
		if r.Manifests != nil {
			return nil, fmt.Errorf("%s with a manifests list: %w", m.MediaType, ErrInvalid)
		}
		m.Config, m.Layers = r.Config, r.Layers
		for _, d := range m.Blobs() {
			if err := validateDescriptor(d); err != nil {
				return nil, err
			}
		}
	case MediaTypeDockerManifestList, MediaTypeOCIIndex:
		if r.Config != nil || r.Layers != nil {
			return nil, fmt.Errorf("%s with config or layers: %w", m.MediaType, ErrInvalid)
		}
		m.Manifests = r.Manifests
		for _, d := range m.Manifests {
			if err := validateDescriptor(d); err != nil {
				return nil, err
			}
			if !IsManifestType(d.MediaType) {
				return nil, fmt.Errorf("index child %s has media type %q: %w", d.Digest, d.MediaType, ErrUnsupported)
			}
		}
	case MediaTypeDockerSchema1, MediaTypeDockerSchema1Signed:
		return nil, fmt.Errorf("docker schema1 manifest: convert it first (skopeo copy --format v2s2): %w", ErrUnsupported)
	default:
		return nil, fmt.Errorf("manifest media type %q: %w", m.MediaType, ErrUnsupported)
	}
	return m, nil
}

func validateDescriptor(d Descriptor) error {
	if err := ValidateDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size %d: %w", d.Digest, d.Size, ErrInvalid)
	}
	return nil
}
