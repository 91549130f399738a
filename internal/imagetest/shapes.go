package imagetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
)

// BuildKit's attestation storage (moby/buildkit docs/attestations/attestation-storage.md): what
// `docker buildx build --push` writes beside each platform image, provenance being on by
// default.
const (
	// AnnotationReferenceType is the index descriptor annotation that marks an attestation
	// manifest.
	AnnotationReferenceType = "vnd.docker.reference.type"
	// ReferenceTypeAttestation is AnnotationReferenceType's value for an attestation manifest.
	ReferenceTypeAttestation = "attestation-manifest"
	// AnnotationReferenceDigest is the index descriptor annotation naming the image (a sibling
	// in the same index) the attestation manifest is about.
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	// MediaTypeInToto is the media type of an attestation manifest's layers.
	MediaTypeInToto = "application/vnd.in-toto+json"
	// AnnotationPredicateType is the layer annotation giving the in-toto predicate type.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// PredicateSLSAProvenance02 is the predicate type of BuildKit's provenance attestation.
	PredicateSLSAProvenance02 = "https://slsa.dev/provenance/v0.2"
	// InTotoStatement01 is the _type of the in-toto statements BuildKit writes.
	InTotoStatement01 = "https://in-toto.io/Statement/v0.1"
)

// UnknownPlatform is the platform BuildKit gives attestation manifests, so that runtimes never
// pick one to run.
var UnknownPlatform = Platform{Architecture: "unknown", OS: "unknown"}

// attestationConfig is the image config of an attestation manifest, as BuildKit writes it:
// unknown/unknown, an empty config, the in-toto layers as diff_ids; no created, no history.
type attestationConfig struct {
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Config       map[string]any `json:"config"`
	RootFS       RootFS         `json:"rootfs"`
}

// inTotoSubject is one subject of an in-toto statement.
type inTotoSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// inTotoStatement is an in-toto statement with a SLSA provenance v0.2 predicate, trimmed to the
// fields BuildKit's min mode fills.
type inTotoStatement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []inTotoSubject `json:"subject"`
	Predicate     map[string]any  `json:"predicate"`
}

// attestation builds the attestation manifest BuildKit writes for image (a platform image
// named ref) and returns its index descriptor: platform unknown/unknown and the two
// vnd.docker.reference annotations.
func (b *builder) attestation(ref string, image Descriptor) Descriptor {
	st := inTotoStatement{
		Type:          InTotoStatement01,
		PredicateType: PredicateSLSAProvenance02,
		Subject: []inTotoSubject{{
			Name:   "pkg:docker/" + ref + "?platform=" + image.Platform.OS + "%2F" + image.Platform.Architecture,
			Digest: map[string]string{"sha256": image.Digest.Encoded()},
		}},
		Predicate: map[string]any{
			"builder":   map[string]string{"id": ""},
			"buildType": "https://mobyproject.org/buildkit@v1",
			"materials": []any{},
			"invocation": map[string]any{
				"configSource": map[string]string{"entryPoint": "Dockerfile"},
				"parameters":   map[string]any{"frontend": "dockerfile.v0"},
			},
			"metadata": map[string]any{
				"buildStartedOn":  epoch.Format(time.RFC3339Nano),
				"buildFinishedOn": epoch.Add(time.Minute).Format(time.RFC3339Nano),
				"completeness":    map[string]bool{"parameters": false, "environment": true, "materials": false},
				"reproducible":    false,
			},
		},
	}
	layer := b.blob(MediaTypeInToto, mustJSON(st))
	layer.Annotations = map[string]string{AnnotationPredicateType: PredicateSLSAProvenance02}
	cfg := attestationConfig{Architecture: UnknownPlatform.Architecture, OS: UnknownPlatform.OS, Config: map[string]any{},
		RootFS: RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}}
	m := b.ociManifest(manifest11{Config: b.blob(MediaTypeOCIConfig, mustJSON(cfg)), Layers: []Descriptor{layer}})
	p := UnknownPlatform
	m.Platform = &p
	m.Annotations = map[string]string{AnnotationReferenceDigest: image.Digest.String(), AnnotationReferenceType: ReferenceTypeAttestation}
	return m
}

// buildkit builds the OCI index BuildKit pushes for ref: the platform images, then one
// attestation manifest for each, in that order. It returns the index and its children.
func (b *builder) buildkit(ref string, images ...Descriptor) (Descriptor, []Descriptor) {
	children := append([]Descriptor(nil), images...)
	for _, img := range images {
		children = append(children, b.attestation(ref, img))
	}
	return b.ociIndex(index11{Manifests: children}), children
}

// RealWorld returns the shapes real registries hold that the other corpora lack; every call
// returns identical bytes. Its images, in the order they must be pushed:
//
//   - shapes/buildkit:multi: what `docker buildx build --platform linux/amd64,linux/arm64
//     --push` writes: an OCI index of a linux/amd64 and a linux/arm64/v8 image (real gzip tar
//     layers, a shared base) followed by one attestation manifest for each (platform
//     UnknownPlatform, annotations AnnotationReferenceType = ReferenceTypeAttestation and
//     AnnotationReferenceDigest = the image's digest; an OCI manifest whose config is an OCI
//     image config of unknown/unknown and whose one layer is an in-toto SLSA provenance v0.2
//     statement, MediaTypeInToto, annotated AnnotationPredicateType);
//   - shapes/buildkit:single: a one-platform buildx build: an index of a linux/amd64 image and
//     its attestation manifest;
//   - shapes/nested:inner: a plain OCI index of linux/amd64 and linux/arm64/v8 images;
//   - shapes/nested:outer: an OCI index whose one child is shapes/nested:inner (what regctl
//     index create --digest makes), so the inner index is both a child and tagged on its own.
//     skopeo 1.9.3 cannot copy an index of indexes: push the inner index first, then PUT the
//     outer manifest (PutManifest); NestsIndex tells which images need that;
//   - alpine:3.14, library/alpine:3.14 and shapes/mirror/alpine:3.14: one BuildKit-shaped
//     index (linux/amd64, linux/arm64/v8, an attestation each, as Docker's official images
//     are) under three names; the first two are one runtime name, docker.io/library/alpine:3.14.
//
// Image.Children lists every manifest below an index, depth first (an index before its own
// children), in index order, as layout.Image does.
func RealWorld() *Corpus {
	b := newBuilder()
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	arm64 := Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}
	base := map[string]layer{}
	for _, arch := range []string{"amd64", "arm64"} {
		base[arch] = b.layer("/bin/sh -c #(nop) ADD file:shapes-base-"+arch+" in / ", false, baseFiles("bale-shapes", arch)...)
	}
	image := func(name, version string, p Platform) Descriptor {
		app := b.layer("/bin/sh -c #(nop) COPY dir:"+name+"-"+p.Architecture+" in / ", false, appFiles(name+"-"+p.Architecture, version)...)
		return b.image(imageSpec{format: oci, platform: p, layers: []layer{base[p.Architecture], app}, cmd: []string{"/usr/local/bin/" + name}})
	}

	multi, multiChildren := b.buildkit("shapes/buildkit:multi", image("buildkit-multi", "1.0", amd64), image("buildkit-multi", "1.0", arm64))
	single, singleChildren := b.buildkit("shapes/buildkit:single", image("buildkit-single", "1.0", amd64))
	innerAMD, innerARM := image("nested", "2.0", amd64), image("nested", "2.0", arm64)
	inner := b.index(oci, innerAMD, innerARM)
	outer := b.ociIndex(index11{Manifests: []Descriptor{inner}})
	alpine, alpineChildren := b.buildkit("alpine:3.14", image("alpine", "3.14.10", amd64), image("alpine", "3.14.10", arm64))

	return &Corpus{
		Images: []Image{
			tagged("shapes/buildkit", "multi", multi, multiChildren...),
			tagged("shapes/buildkit", "single", single, singleChildren...),
			tagged("shapes/nested", "inner", inner, innerAMD, innerARM),
			tagged("shapes/nested", "outer", outer, inner, innerAMD, innerARM),
			tagged("alpine", "3.14", alpine, alpineChildren...),
			tagged("library/alpine", "3.14", alpine, alpineChildren...),
			tagged("shapes/mirror/alpine", "3.14", alpine, alpineChildren...),
		},
		Blobs: b.blobs,
	}
}

// NestsIndex reports whether img is an index with an index among its children, which skopeo
// 1.9.3 cannot copy ("Unexpectedly received a manifest list instead of a manifest for a single
// image"): push its child indexes first, then PutManifest it.
func (c *Corpus) NestsIndex(img Image) bool {
	if !img.IsIndex() {
		return false
	}
	var idx IndexJSON
	if err := json.Unmarshal(c.Blobs[img.Digest], &idx); err != nil {
		return false
	}
	for _, d := range idx.Manifests {
		if IsIndexType(d.MediaType) {
			return true
		}
	}
	return false
}

// PutManifest puts the top manifest of img, as it is, under img.Repo:img.Tag of the plain-HTTP
// registry at addr (HOST:PORT), without credentials: every manifest and blob it names must be
// in that repository already (docker-registry 2.8 refuses the manifest otherwise).
func (c *Corpus) PutManifest(addr string, img Image) error {
	data := c.Manifest(img.Digest)
	if data == nil {
		return fmt.Errorf("imagetest: %s: manifest %s not in corpus", img.Name(), img.Digest)
	}
	url := "http://" + addr + "/v2/" + img.Repo + "/manifests/" + img.Tag
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("imagetest: %w", err)
	}
	req.Header.Set("Content-Type", img.MediaType)
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("imagetest: PUT %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("imagetest: PUT %s: %s: %s", url, resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != img.Digest.String() {
		return fmt.Errorf("imagetest: PUT %s: the registry stored %s, want %s", url, got, img.Digest)
	}
	return nil
}

// ByName returns the image named "repo:tag"; it panics when the corpus has none, as a test
// asking for an image the corpus does not define is wrong.
func (c *Corpus) ByName(name string) Image {
	for _, img := range c.Images {
		if img.Name() == name {
			return img
		}
	}
	panic("imagetest: no image " + name + " in the corpus")
}
