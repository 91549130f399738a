// Package helmchart writes Helm charts into registry storage as Helm OCI artifacts, exactly as
// `helm push` writes them (charts/<name>:<version>, '+' as '_'), from a chart directory, a
// .tgz, a classic chart repository (index.yaml) or an OCI registry, and finds the images a
// chart uses by rendering it with Helm's own engine.
package helmchart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/bale-project/bale/layout"
)

// Media types of a Helm chart artifact, as helm.sh/helm/v4/pkg/registry names them (written
// here: that package brings an OCI client bale does not need).
const (
	ConfigMediaType     = "application/vnd.cncf.helm.config.v1+json"
	ChartLayerMediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	ProvLayerMediaType  = "application/vnd.cncf.helm.chart.provenance.v1.prov"
)

// RepoPrefix is the repository directory charts are stored under.
const RepoPrefix = "charts/"

// Artifact is a chart as helm push writes it: the manifest, its config (the chart's metadata)
// and its layers (the .tgz, and the provenance file when there is one).
type Artifact struct {
	// Metadata is the chart's Chart.yaml, as helm read it from the .tgz.
	Metadata *chart.Metadata
	// Manifest, Config, Chart and Prov are the bytes of each blob; Prov is nil without a
	// provenance file.
	Manifest, Config, Chart, Prov []byte
}

// Ref is where the artifact is stored: charts/<name>:<version>, with '+' written '_' as
// helm push does (a tag cannot hold '+').
func (a *Artifact) Ref() layout.Ref {
	return layout.Ref{Repo: RepoPrefix + a.Metadata.Name, Tag: TagOf(a.Metadata.Version)}
}

// TagOf is the tag helm push gives version: '+' written '_'.
func TagOf(version string) string { return strings.ReplaceAll(version, "+", "_") }

// VersionOf is the chart version a tag written by helm push stands for: '_' read as '+'.
func VersionOf(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// Build makes the artifact of the chart archive tgz (and its provenance file prov, nil when
// none) as helm push does (registry.Client.Push): config the JSON of the chart's metadata,
// layers sorted by digest, the annotations of the chart (title, version, description, url,
// source, authors, and Chart.yaml's own annotations), created the time given (RFC 3339).
func Build(tgz, prov []byte, created string) (*Artifact, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("reading the chart archive: %v: %w", err, layout.ErrInvalid)
	}
	meta := ch.Metadata
	if err := meta.Validate(); err != nil {
		return nil, fmt.Errorf("chart %s: %v: %w", meta.Name, err, layout.ErrInvalid)
	}
	if err := layout.ValidateRepo(RepoPrefix + meta.Name); err != nil {
		return nil, fmt.Errorf("chart name %q: %w", meta.Name, err)
	}
	if err := layout.ValidateTag(TagOf(meta.Version)); err != nil {
		return nil, fmt.Errorf("chart %s version %q: %w", meta.Name, meta.Version, err)
	}
	config, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	layers := []ocispec.Descriptor{descriptor(ChartLayerMediaType, tgz)}
	if prov != nil {
		layers = append(layers, descriptor(ProvLayerMediaType, prov))
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].Digest < layers[j].Digest })
	m, err := json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		Config:      descriptor(ConfigMediaType, config),
		Layers:      layers,
		Annotations: annotations(meta, created),
	})
	if err != nil {
		return nil, err
	}
	return &Artifact{Metadata: meta, Manifest: m, Config: config, Chart: tgz, Prov: prov}, nil
}

// descriptor is what oras.PushBytes gives b: media type, digest and size.
func descriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// annotations are helm's (pkg/registry generateOCIAnnotations, unexported): the chart's
// fields as OCI annotations, then Chart.yaml's annotations but for title and version.
func annotations(meta *chart.Metadata, created string) map[string]string {
	a := map[string]string{}
	add := func(k, v string) {
		if strings.TrimSpace(v) != "" {
			a[k] = v
		}
	}
	add(ocispec.AnnotationDescription, meta.Description)
	add(ocispec.AnnotationTitle, meta.Name)
	add(ocispec.AnnotationVersion, meta.Version)
	add(ocispec.AnnotationURL, meta.Home)
	if created == "" {
		created = time.Now().UTC().Format(time.RFC3339)
	}
	add(ocispec.AnnotationCreated, created)
	if len(meta.Sources) > 0 {
		add(ocispec.AnnotationSource, meta.Sources[0])
	}
	if len(meta.Maintainers) > 0 {
		var b strings.Builder
		for i, m := range meta.Maintainers {
			if m.Name != "" {
				b.WriteString(m.Name)
			}
			if m.Email != "" {
				b.WriteString(" (" + m.Email + ")")
			}
			if i < len(meta.Maintainers)-1 {
				b.WriteString(", ")
			}
		}
		add(ocispec.AnnotationAuthors, b.String())
	}
	for k, v := range meta.Annotations {
		if k != ocispec.AnnotationVersion && k != ocispec.AnnotationTitle {
			add(k, v)
		}
	}
	return a
}

// Put stores the artifact in dst (registry storage, or any sink) at Ref: blobs first, then
// the manifest's links, the tag last.
func (a *Artifact) Put(dst layout.Sink) (layout.Ref, error) {
	ref := a.Ref()
	src := a.source()
	m, err := layout.ParseManifest(a.Manifest)
	if err != nil {
		return ref, err
	}
	if err := dst.PutImage(ref, &layout.Image{Manifest: m}, src); err != nil {
		return ref, fmt.Errorf("%s: %w", ref, err)
	}
	return ref, nil
}

// memSource serves the blobs of one artifact.
type memSource struct {
	ref   layout.Ref
	top   digest.Digest
	blobs map[digest.Digest][]byte
}

func (a *Artifact) source() *memSource {
	s := &memSource{ref: a.Ref(), top: digest.FromBytes(a.Manifest), blobs: map[digest.Digest][]byte{}}
	for _, b := range [][]byte{a.Manifest, a.Config, a.Chart, a.Prov} {
		if b != nil {
			s.blobs[digest.FromBytes(b)] = b
		}
	}
	return s
}

func (s *memSource) Refs() ([]layout.Ref, error) { return []layout.Ref{s.ref}, nil }

func (s *memSource) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref != s.ref {
		return "", fmt.Errorf("%s: %w", ref, layout.ErrNotFound)
	}
	return s.top, nil
}

func (s *memSource) ReadManifest(_ string, d digest.Digest) (*layout.Manifest, error) {
	b, ok := s.blobs[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", d, layout.ErrNotFound)
	}
	return layout.ParseManifest(b)
}

func (s *memSource) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	b, ok := s.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
