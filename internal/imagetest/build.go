package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Media types used by the generated images.
const (
	// MediaTypeDockerManifest is the Docker schema2 image manifest type.
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	// MediaTypeDockerManifestList is the Docker schema2 manifest list type.
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	// MediaTypeDockerConfig is the Docker image config type.
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	// MediaTypeDockerLayerGzip is the Docker gzip-compressed layer type.
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeOCIManifest is the OCI image manifest type.
	MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	// MediaTypeOCIIndex is the OCI image index type.
	MediaTypeOCIIndex = "application/vnd.oci.image.index.v1+json"
	// MediaTypeOCIConfig is the OCI image config type.
	MediaTypeOCIConfig = "application/vnd.oci.image.config.v1+json"
	// MediaTypeOCILayerGzip is the OCI gzip-compressed layer type.
	MediaTypeOCILayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	// MediaTypeOCILayer is the OCI uncompressed layer type.
	MediaTypeOCILayer = "application/vnd.oci.image.layer.v1.tar"
)

// epoch is the fixed creation time stamped into every config, history entry and tar header.
var epoch = time.Date(2021, time.April, 14, 12, 0, 0, 0, time.UTC)

// Descriptor is the JSON form of a content descriptor as used in the generated manifests.
type Descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	Platform  *Platform     `json:"platform,omitempty"`
	// The OCI 1.1 fields below are only set by the OCI11 corpus.
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Platform is the JSON form of an index/list entry's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// ManifestJSON is the JSON form of a Docker schema2 or OCI image manifest.
type ManifestJSON struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// IndexJSON is the JSON form of a Docker manifest list or OCI index.
type IndexJSON struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

// ConfigJSON is the JSON form of an image config (Docker and OCI share the fields used here).
type ConfigJSON struct {
	Created      string          `json:"created"`
	Architecture string          `json:"architecture"`
	Variant      string          `json:"variant,omitempty"`
	OS           string          `json:"os"`
	Config       ContainerConfig `json:"config"`
	RootFS       RootFS          `json:"rootfs"`
	History      []History       `json:"history"`
}

// ContainerConfig is the execution part of an image config.
type ContainerConfig struct {
	Env        []string          `json:"Env,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the uncompressed layer digests of an image config.
type RootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// History is one entry of an image config's history.
type History struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

// format selects the manifest family of a generated image.
type format int

const (
	docker format = iota
	oci
)

// file is one regular file of a layer; directories are derived from the paths.
type file struct {
	name string
	mode int64
	body string
}

// layer is a generated layer blob.
type layer struct {
	digest    digest.Digest
	size      int64
	diffID    digest.Digest
	gzipped   bool
	createdBy string
}

// builder accumulates blobs while images are generated.
type builder struct {
	blobs map[digest.Digest][]byte
	zw    *gzip.Writer
}

func newBuilder() *builder {
	return &builder{blobs: map[digest.Digest][]byte{}}
}

// put stores data and returns its digest.
func (b *builder) put(data []byte) digest.Digest {
	d := digest.FromBytes(data)
	b.blobs[d] = data
	return d
}

// tarball returns a deterministic tar archive holding files and their parent directories.
func tarball(files []file) []byte {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.name); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	type entry struct {
		name string
		f    *file
	}
	var entries []entry
	for d := range dirs {
		entries = append(entries, entry{name: d + "/"})
	}
	for i := range files {
		entries = append(entries, entry{name: files[i].name, f: &files[i]})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			ModTime: epoch,
			Uname:   "root",
			Gname:   "root",
			Format:  tar.FormatUSTAR,
		}
		if e.f == nil {
			hdr.Typeflag = tar.TypeDir
			hdr.Mode = 0o755
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Mode = e.f.mode
			hdr.Size = int64(len(e.f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(fmt.Sprintf("imagetest: tar header %s: %v", e.name, err))
		}
		if e.f != nil {
			if _, err := tw.Write([]byte(e.f.body)); err != nil {
				panic(fmt.Sprintf("imagetest: tar body %s: %v", e.name, err))
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("imagetest: tar close: %v", err))
	}
	return buf.Bytes()
}

// gzipBytes compresses data with a zero header ModTime and no name, so the output is
// deterministic; the compressor is reused across layers of one builder.
func (b *builder) gzipBytes(data []byte) []byte {
	var buf bytes.Buffer
	if b.zw == nil {
		b.zw = gzip.NewWriter(&buf)
	} else {
		b.zw.Reset(&buf)
	}
	if _, err := b.zw.Write(data); err != nil {
		panic(fmt.Sprintf("imagetest: gzip write: %v", err))
	}
	if err := b.zw.Close(); err != nil {
		panic(fmt.Sprintf("imagetest: gzip close: %v", err))
	}
	return buf.Bytes()
}

// layer builds a layer from files, gzip-compressed unless raw is set.
func (b *builder) layer(createdBy string, raw bool, files ...file) layer {
	t := tarball(files)
	l := layer{diffID: digest.FromBytes(t), gzipped: !raw, createdBy: createdBy}
	data := t
	if !raw {
		data = b.gzipBytes(t)
	}
	l.digest = b.put(data)
	l.size = int64(len(data))
	return l
}

// mustJSON marshals v; the generator's types always marshal.
func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("imagetest: marshal: %v", err))
	}
	return data
}

// imageSpec describes one single-platform image to generate.
type imageSpec struct {
	format   format
	platform Platform
	layers   []layer
	cmd      []string
	labels   map[string]string
}

// image builds the config and manifest of spec and returns the manifest descriptor (with platform).
func (b *builder) image(spec imageSpec) Descriptor {
	created := epoch.Format(time.RFC3339)
	cfg := ConfigJSON{
		Created:      created,
		Architecture: spec.platform.Architecture,
		Variant:      spec.platform.Variant,
		OS:           spec.platform.OS,
		Config: ContainerConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:        spec.cmd,
			WorkingDir: "/",
			Labels:     spec.labels,
		},
		RootFS: RootFS{Type: "layers"},
	}
	configType, layerGzip, manifestType := MediaTypeDockerConfig, MediaTypeDockerLayerGzip, MediaTypeDockerManifest
	if spec.format == oci {
		configType, layerGzip, manifestType = MediaTypeOCIConfig, MediaTypeOCILayerGzip, MediaTypeOCIManifest
	}
	m := ManifestJSON{SchemaVersion: 2, MediaType: manifestType}
	for _, l := range spec.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, History{Created: created, CreatedBy: l.createdBy})
		mt := layerGzip
		if !l.gzipped {
			if spec.format != oci {
				panic("imagetest: uncompressed layers are only generated for OCI images")
			}
			mt = MediaTypeOCILayer
		}
		m.Layers = append(m.Layers, Descriptor{MediaType: mt, Digest: l.digest, Size: l.size})
	}
	cfgBytes := mustJSON(cfg)
	m.Config = Descriptor{MediaType: configType, Digest: b.put(cfgBytes), Size: int64(len(cfgBytes))}
	mBytes := mustJSON(m)
	p := spec.platform
	return Descriptor{MediaType: manifestType, Digest: b.put(mBytes), Size: int64(len(mBytes)), Platform: &p}
}

// index builds an OCI index or Docker manifest list over children.
func (b *builder) index(f format, children ...Descriptor) Descriptor {
	mt := MediaTypeDockerManifestList
	if f == oci {
		mt = MediaTypeOCIIndex
	}
	data := mustJSON(IndexJSON{SchemaVersion: 2, MediaType: mt, Manifests: children})
	return Descriptor{MediaType: mt, Digest: b.put(data), Size: int64(len(data))}
}

// tagged turns a manifest or index descriptor into an Image under repo:tag.
func tagged(repo, tag string, d Descriptor, children ...Descriptor) Image {
	img := Image{Repo: repo, Tag: tag, Digest: d.Digest, MediaType: d.MediaType}
	for _, c := range children {
		img.Children = append(img.Children, c.Digest)
	}
	return img
}

// appFiles returns the files of a small application layer named name.
func appFiles(name, version string) []file {
	return []file{
		{name: "usr/local/bin/" + name, mode: 0o755, body: "#!/bin/sh\necho " + name + " " + version + "\n"},
		{name: "etc/" + name + "/version", mode: 0o644, body: version + "\n"},
		{name: "usr/share/doc/" + name + "/README", mode: 0o644, body: strings.Repeat(name+" is a generated test image.\n", 4)},
	}
}

// baseFiles returns the files of a small OS base layer.
func baseFiles(id, arch string) []file {
	return []file{
		{name: "etc/os-release", mode: 0o644, body: "NAME=\"Bale Test OS\"\nID=" + id + "\nVERSION_ID=1.0\nARCH=" + arch + "\n"},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nnogroup:x:65534:\n"},
		{name: "bin/sh", mode: 0o755, body: "#!placeholder shell for " + id + "/" + arch + "\n"},
	}
}
