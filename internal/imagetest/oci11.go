package imagetest

import (
	"crypto/sha512"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// OCI 1.1 media types and values used by the OCI11 corpus.
const (
	// MediaTypeEmptyJSON is the OCI 1.1 empty descriptor's media type (image-spec
	// manifest.md, "Guidance for an Empty Descriptor").
	MediaTypeEmptyJSON = "application/vnd.oci.empty.v1+json"
	// EmptyJSONDigest is the digest of the two bytes "{}" of the empty descriptor.
	EmptyJSONDigest = digest.Digest("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
	// MediaTypeOCILayerZstd is the OCI zstd-compressed layer type.
	MediaTypeOCILayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
	// MediaTypeOCILayerNondistributableGzip is the OCI non-distributable gzip layer type
	// (deprecated by image-spec 1.1, still valid and still met).
	MediaTypeOCILayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	// MediaTypeHelmConfig is the config media type of a Helm chart pushed by helm push.
	MediaTypeHelmConfig = "application/vnd.cncf.helm.config.v1+json"
	// MediaTypeHelmChart is the layer media type of a Helm chart pushed by helm push.
	MediaTypeHelmChart = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// ArtifactTypeThing is the artifactType of the corpus's artifact manifest.
	ArtifactTypeThing = "application/vnd.example.thing.v1"
	// MediaTypeThingLayer is the custom media type of the artifact's one layer.
	MediaTypeThingLayer = "application/vnd.example.thing.layer.v1+txt"
	// ArtifactTypeBundle is the artifactType of the corpus's index that is a referrer.
	ArtifactTypeBundle = "application/vnd.example.bundle.v1"
	// ArtifactTypeSBOM is the artifactType of the artifact listed by that index.
	ArtifactTypeSBOM = "application/spdx+json"
	// CustomField is the top-level field no spec defines that some corpus manifests carry.
	CustomField = "x-bale-test"
	// ForeignLayerURL is the urls entry of the corpus's non-distributable layer.
	ForeignLayerURL = "https://example.invalid/bale/foreign-layer.tar.gz"
	// OCIRefName is the index.json annotation naming an image of an OCI layout.
	OCIRefName = "org.opencontainers.image.ref.name"
)

// emptyJSON is the content of the empty descriptor.
var emptyJSON = []byte("{}")

// custom is the value of CustomField.
type custom struct {
	N int `json:"n"`
}

// manifest11 is an OCI image manifest with every OCI 1.1 field and one custom field.
type manifest11 struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Custom        *custom           `json:"x-bale-test,omitempty"`
}

// index11 is an OCI image index with every OCI 1.1 field and one custom field.
type index11 struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Custom        *custom           `json:"x-bale-test,omitempty"`
}

// zstdBytes compresses data with one encoder goroutine, so the output is deterministic.
func zstdBytes(data []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic(fmt.Sprintf("imagetest: zstd: %v", err))
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// blob stores data and returns its descriptor of media type mt.
func (b *builder) blob(mt string, data []byte) Descriptor {
	return Descriptor{MediaType: mt, Digest: b.put(data), Size: int64(len(data))}
}

// ociManifest stores m and returns its descriptor.
func (b *builder) ociManifest(m manifest11) Descriptor {
	m.SchemaVersion, m.MediaType = 2, MediaTypeOCIManifest
	return b.blob(MediaTypeOCIManifest, mustJSON(m))
}

// ociIndex stores x and returns its descriptor.
func (b *builder) ociIndex(x index11) Descriptor {
	x.SchemaVersion, x.MediaType = 2, MediaTypeOCIIndex
	return b.blob(MediaTypeOCIIndex, mustJSON(x))
}

// empty returns the empty descriptor, with its content inline.
func (b *builder) empty() Descriptor {
	d := b.blob(MediaTypeEmptyJSON, emptyJSON)
	d.Data = emptyJSON
	return d
}

// rawLayer is an OCI layer of media type mt holding the tar of files, compressed by
// compress (nil: uncompressed); it returns the descriptor and the diff_id.
func (b *builder) rawLayer(mt string, compress func([]byte) []byte, files ...file) (Descriptor, digest.Digest) {
	t := tarball(files)
	data := t
	if compress != nil {
		data = compress(t)
	}
	return b.blob(mt, data), digest.FromBytes(t)
}

// ociConfig stores the OCI image config of layers (diff_ids, one history entry each).
func (b *builder) ociConfig(p Platform, cmd string, diffIDs ...digest.Digest) Descriptor {
	created := epoch.Format(time.RFC3339)
	cfg := ConfigJSON{
		Created: created, Architecture: p.Architecture, Variant: p.Variant, OS: p.OS,
		Config: ContainerConfig{Cmd: []string{cmd}, WorkingDir: "/"},
		RootFS: RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	for i := range diffIDs {
		cfg.History = append(cfg.History, History{Created: created, CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) oci11 layer %d", i)})
	}
	return b.blob(MediaTypeOCIConfig, mustJSON(cfg))
}

// OCI11 returns a small corpus of every OCI 1.1 shape bale must carry byte for byte; every
// call returns identical bytes. Its images, each under a tag no other image uses:
//
//   - oci11/artifact:thing-1: an artifact (artifactType ArtifactTypeThing, the empty
//     descriptor as config with its "data", one layer of a custom media type with "data"
//     and annotations);
//   - oci11/charts/mychart:0.1.0: a Helm chart as helm push lays it out (config
//     MediaTypeHelmConfig, one MediaTypeHelmChart layer, a real .tgz of Chart.yaml);
//   - oci11/app:v1: an OCI image with a zstd and an uncompressed layer, manifest
//     annotations and the custom top-level field CustomField;
//   - oci11/app:bundle: an index with artifactType ArtifactTypeBundle and a subject
//     (oci11/app:v1), listing an SBOM artifact through a descriptor with artifactType,
//     annotations and "data";
//   - oci11/nondist:foreign-1: an image with a non-distributable layer with urls, whose
//     blob is present;
//   - oci11/nested:multi-3: an index whose child is an index whose child is an index of
//     linux/amd64 and linux/arm64/v8 images (what regctl index create --digest makes of
//     indexes), with annotations and CustomField on the top.
//
// Image.Children lists every manifest below an index, depth first (an index before its own
// children), as layout.Image does.
func OCI11() *Corpus {
	b := newBuilder()
	created := map[string]string{"org.opencontainers.image.created": epoch.Format(time.RFC3339)}
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	arm64 := Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}

	// The artifact: empty config, one custom layer, both with data.
	thing := []byte("a thing that is not a container image\n")
	thingLayer := b.blob(MediaTypeThingLayer, thing)
	thingLayer.Data = thing
	thingLayer.Annotations = map[string]string{"org.opencontainers.image.title": "thing.txt"}
	artifact := b.ociManifest(manifest11{
		ArtifactType: ArtifactTypeThing,
		Config:       b.empty(),
		Layers:       []Descriptor{thingLayer},
		Annotations:  map[string]string{"org.opencontainers.image.created": created["org.opencontainers.image.created"], "com.example.kind": "thing"},
	})

	// The Helm chart.
	chartYAML := "apiVersion: v2\nname: mychart\ndescription: A Helm chart made by bale's tests\ntype: application\nversion: 0.1.0\nappVersion: \"1.0.0\"\n"
	chartTgz := b.gzipBytes(tarball([]file{
		{name: "mychart/Chart.yaml", mode: 0o644, body: chartYAML},
		{name: "mychart/values.yaml", mode: 0o644, body: "replicaCount: 1\n"},
		{name: "mychart/templates/NOTES.txt", mode: 0o644, body: "mychart {{ .Chart.Version }}\n"},
	}))
	chartCfg := mustJSON(map[string]string{
		"name": "mychart", "version": "0.1.0", "description": "A Helm chart made by bale's tests",
		"apiVersion": "v2", "appVersion": "1.0.0", "type": "application",
	})
	chart := b.ociManifest(manifest11{
		Config:      b.blob(MediaTypeHelmConfig, chartCfg),
		Layers:      []Descriptor{b.blob(MediaTypeHelmChart, chartTgz)},
		Annotations: created,
	})

	// The image of zstd and uncompressed layers.
	zl, zdiff := b.rawLayer(MediaTypeOCILayerZstd, zstdBytes, baseFiles("bale-oci11", "amd64")...)
	ul, udiff := b.rawLayer(MediaTypeOCILayer, nil, appFiles("oci11-app", "1.1")...)
	app := b.ociManifest(manifest11{
		Config:      b.ociConfig(amd64, "/usr/local/bin/oci11-app", zdiff, udiff),
		Layers:      []Descriptor{zl, ul},
		Annotations: map[string]string{"org.opencontainers.image.created": created["org.opencontainers.image.created"], "org.opencontainers.image.title": "oci11 app"},
		Custom:      &custom{N: 1},
	})

	// The index that is a referrer of the image: it lists an SBOM artifact.
	spdx := mustJSON(map[string]any{"spdxVersion": "SPDX-2.3", "name": "oci11-app", "packages": []any{}})
	sbom := b.ociManifest(manifest11{
		ArtifactType: ArtifactTypeSBOM,
		Config:       b.empty(),
		Layers:       []Descriptor{b.blob(ArtifactTypeSBOM, spdx)},
		Annotations:  created,
	})
	sbomDesc := sbom
	sbomDesc.ArtifactType = ArtifactTypeSBOM
	sbomDesc.Annotations = map[string]string{"com.example.role": "sbom"}
	sbomDesc.Data = b.blobs[sbom.Digest]
	subject := app
	bundle := b.ociIndex(index11{
		ArtifactType: ArtifactTypeBundle,
		Manifests:    []Descriptor{sbomDesc},
		Subject:      &subject,
		Annotations:  created,
	})

	// The non-distributable layer with urls, its blob present.
	fl, fdiff := b.rawLayer(MediaTypeOCILayerNondistributableGzip, b.gzipBytes,
		file{name: "opt/foreign/licensed.bin", mode: 0o644, body: "content whose license restricts its distribution\n"})
	fl.URLs = []string{ForeignLayerURL}
	nl, ndiff := b.rawLayer(MediaTypeOCILayerGzip, b.gzipBytes, appFiles("oci11-nondist", "1.0")...)
	nondist := b.ociManifest(manifest11{
		Config: b.ociConfig(amd64, "/usr/local/bin/oci11-nondist", fdiff, ndiff),
		Layers: []Descriptor{fl, nl},
	})

	// The index of depth 3.
	base := b.layer("/bin/sh -c #(nop) ADD file:oci11-base in / ", false, baseFiles("bale-oci11", "any")...)
	leafAMD := b.image(imageSpec{format: oci, platform: amd64, cmd: []string{"/nested"},
		layers: []layer{base, b.layer("/bin/sh -c #(nop) COPY nested-amd64", false, appFiles("nested-amd64", "3")...)}})
	leafARM := b.image(imageSpec{format: oci, platform: arm64, cmd: []string{"/nested"},
		layers: []layer{base, b.layer("/bin/sh -c #(nop) COPY nested-arm64", false, appFiles("nested-arm64", "3")...)}})
	l3 := b.ociIndex(index11{Manifests: []Descriptor{leafAMD, leafARM}})
	l2 := b.ociIndex(index11{Manifests: []Descriptor{l3}})
	l1 := b.ociIndex(index11{Manifests: []Descriptor{l2}, Annotations: created, Custom: &custom{N: 3}})

	return &Corpus{
		Images: []Image{
			tagged("oci11/artifact", "thing-1", artifact),
			tagged("oci11/charts/mychart", "0.1.0", chart),
			tagged("oci11/app", "v1", app),
			tagged("oci11/app", "bundle", bundle, sbom),
			tagged("oci11/nondist", "foreign-1", nondist),
			tagged("oci11/nested", "multi-3", l1, l2, l3, leafAMD, leafARM),
		},
		Blobs: b.blobs,
	}
}

// WriteOCILayout writes every image of c into one OCI image layout at root: oci-layout,
// blobs/sha256/<hex> for every manifest and blob, and index.json listing each image with the
// ref name "<repo>:<tag>" (bale's convention; regctl's ocidir://ROOT:TAG finds it by the
// ":TAG" suffix, so the corpus's tags are unique).
func (c *Corpus) WriteOCILayout(root string) error {
	dir := filepath.Join(root, "blobs", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("imagetest: %w", err)
	}
	ds := make([]digest.Digest, 0, len(c.Blobs))
	for d := range c.Blobs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	for _, d := range ds {
		if d.Algorithm() != digest.SHA256 {
			return fmt.Errorf("imagetest: blob %s: only sha256 blobs are written", d)
		}
		if err := os.WriteFile(filepath.Join(dir, d.Encoded()), c.Blobs[d], 0o644); err != nil {
			return fmt.Errorf("imagetest: blob %s: %w", d, err)
		}
	}
	idx := IndexJSON{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []Descriptor{}}
	for _, img := range c.Images {
		data := c.Manifest(img.Digest)
		if data == nil {
			return fmt.Errorf("imagetest: %s: manifest %s not in corpus", img.Name(), img.Digest)
		}
		idx.Manifests = append(idx.Manifests, Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: int64(len(data)),
			Annotations: map[string]string{OCIRefName: img.Name()}})
	}
	return writeLayoutFiles(root, mustJSON(idx))
}

// writeLayoutFiles writes oci-layout and index.json into root.
func writeLayoutFiles(root string, index []byte) error {
	if err := os.WriteFile(filepath.Join(root, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return fmt.Errorf("imagetest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "index.json"), index, 0o644); err != nil {
		return fmt.Errorf("imagetest: %w", err)
	}
	return nil
}

// SHA512Image is what WriteSHA512Layout wrote: an OCI image, tagged Name, whose second layer
// is addressed by sha512.
type SHA512Image struct {
	Name     string        // "<repo>:<tag>", the ref name in index.json
	Manifest digest.Digest // sha256 of the manifest
	Layer    digest.Digest // the sha512 digest the manifest names
}

// WriteSHA512Layout writes an OCI image layout at root holding one image, oci11/sha512:v1,
// whose manifest (sha256) names a config and a first layer by sha256 and a second layer by
// sha512, stored at blobs/sha512/<hex> as the image-spec lays it out.
func WriteSHA512Layout(root string) (SHA512Image, error) {
	b := newBuilder()
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	first, fdiff := b.rawLayer(MediaTypeOCILayerGzip, b.gzipBytes, baseFiles("bale-sha512", "amd64")...)
	t := tarball(appFiles("sha512", "1"))
	data := b.gzipBytes(t)
	sum := sha512.Sum512(data)
	second := Descriptor{MediaType: MediaTypeOCILayerGzip, Digest: digest.NewDigestFromBytes(digest.SHA512, sum[:]), Size: int64(len(data))}
	m := b.ociManifest(manifest11{
		Config: b.ociConfig(amd64, "/usr/local/bin/sha512", fdiff, digest.FromBytes(t)),
		Layers: []Descriptor{first, second},
	})
	c := &Corpus{Images: []Image{tagged("oci11/sha512", "v1", m)}, Blobs: b.blobs}
	if err := c.WriteOCILayout(root); err != nil {
		return SHA512Image{}, err
	}
	dir := filepath.Join(root, "blobs", "sha512")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SHA512Image{}, fmt.Errorf("imagetest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, second.Digest.Encoded()), data, 0o644); err != nil {
		return SHA512Image{}, fmt.Errorf("imagetest: blob %s: %w", second.Digest, err)
	}
	return SHA512Image{Name: c.Images[0].Name(), Manifest: m.Digest, Layer: second.Digest}, nil
}
