// Package imagetest generates small but real container images for tests.
//
// Every layer is a genuine tar archive (gzip-compressed unless its media type
// says otherwise), every config carries matching diff_ids and history, and every
// manifest references its blobs with correct digests and sizes, so the images are
// accepted byte for byte by skopeo and docker-registry. The output is fully
// deterministic for a given Go toolchain; digests are not promised stable across
// Go releases (compress/flate output may change), so do not hard-code them.
package imagetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// Image is one tagged top-level image of the corpus.
type Image struct {
	Repo, Tag string          // e.g. "kubesphere/kube-apiserver", "v1.20.6"
	Digest    digest.Digest   // digest of the top-level manifest (index/list or manifest)
	MediaType string          // top-level manifest media type
	Children  []digest.Digest // child manifest digests for an index/list, nil otherwise
}

// Name returns "repo:tag".
func (img Image) Name() string { return img.Repo + ":" + img.Tag }

// IsIndex reports whether img is an OCI index or a Docker manifest list.
func (img Image) IsIndex() bool { return IsIndexType(img.MediaType) }

// IsIndexType reports whether mt is an OCI index or Docker manifest list media type.
func IsIndexType(mt string) bool { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerManifestList }

// Corpus is a set of generated images with every blob they need.
type Corpus struct {
	Images []Image                  // one entry per repo:tag to push
	Blobs  map[digest.Digest][]byte // every manifest, config and layer by digest
}

// Standard returns the standard corpus; every call returns identical bytes.
//
// It holds Docker schema2 and OCI images sharing two base layers, an OCI image
// with an uncompressed layer, a multi-arch OCI index (linux/amd64, linux/arm64/v8)
// and a Docker manifest list (linux/amd64, linux/arm/v7), repos of depth 1 to 3
// including a repo that is the parent of another, one digest under two tags, one
// digest under two repos, and tags containing '.', '-' and '_'.
func Standard() *Corpus {
	b := newBuilder()
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	arm64 := Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}
	armv7 := Platform{Architecture: "arm", OS: "linux", Variant: "v7"}

	base := b.layer("/bin/sh -c #(nop) ADD file:base-os in / ", false, baseFiles("bale-base", "amd64")...)
	tools := b.layer("/bin/sh -c apk add --no-cache ca-certificates tzdata", false,
		file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: "# generated test bundle, no real certificates\n"},
		file{name: "usr/share/zoneinfo/UTC", mode: 0o644, body: "TZif2 placeholder UTC\n"},
	)
	app := func(name, version string) layer {
		return b.layer("/bin/sh -c #(nop) COPY file:"+name+" in /usr/local/bin/ ", false, appFiles(name, version)...)
	}
	single := func(f format, layers []layer, name string) Descriptor {
		return b.image(imageSpec{format: f, platform: amd64, layers: layers, cmd: []string{"/usr/local/bin/" + name}})
	}

	busybox := single(docker, []layer{base, app("busybox", "1.36.1")}, "busybox")
	apiserver := single(docker, []layer{base, tools, app("kube-apiserver", "v1.20.6")}, "kube-apiserver")
	controller := single(docker, []layer{base, tools, app("kube-controller-manager", "v1.20.6")}, "kube-controller-manager")
	proxy := single(oci, []layer{base, tools, app("kube-proxy", "v1.20.6")}, "kube-proxy")
	ab := single(oci, []layer{base, app("ab", "rc_1")}, "ab")
	abc := single(docker, []layer{base, tools, app("abc", "0.1.0-alpha.1")}, "abc")
	rawLayer := b.layer("/bin/sh -c #(nop) ADD file:raw-data in /data/ ", true,
		file{name: "data/raw.txt", mode: 0o644, body: "this layer is stored as an uncompressed tar\n"},
		file{name: "data/numbers.csv", mode: 0o644, body: "n,square\n1,1\n2,4\n3,9\n"},
	)
	raw := single(oci, []layer{base, rawLayer}, "raw")

	pauseAMD := b.image(imageSpec{format: oci, platform: amd64, cmd: []string{"/pause"},
		layers: []layer{base, app("pause-amd64", "3.2")}})
	pauseARM := b.image(imageSpec{format: oci, platform: arm64, cmd: []string{"/pause"},
		layers: []layer{b.layer("/bin/sh -c #(nop) ADD file:base-os-arm64 in / ", false, baseFiles("bale-base", "arm64")...),
			app("pause-arm64", "3.2")}})
	pause := b.index(oci, pauseAMD, pauseARM)

	corednsAMD := b.image(imageSpec{format: docker, platform: amd64, cmd: []string{"/coredns"},
		layers: []layer{base, tools, app("coredns-amd64", "1.6.9")}})
	corednsARM := b.image(imageSpec{format: docker, platform: armv7, cmd: []string{"/coredns"},
		layers: []layer{b.layer("/bin/sh -c #(nop) ADD file:base-os-armv7 in / ", false, baseFiles("bale-base", "armv7")...),
			app("coredns-arm", "1.6.9")}})
	coredns := b.index(docker, corednsAMD, corednsARM)

	return &Corpus{
		Images: []Image{
			tagged("busybox", "1.36.1", busybox),
			tagged("busybox", "latest", busybox),
			tagged("library/busybox", "1.36.1", busybox),
			tagged("kubesphere/kube-apiserver", "v1.20.6", apiserver),
			tagged("kubesphere/kube-controller-manager", "v1.20.6", controller),
			tagged("kubesphere/kube-proxy", "v1.20.6", proxy),
			tagged("a/b", "rc_1", ab),
			tagged("a/b/c", "v0.1.0-alpha.1_build", abc),
			tagged("tools/raw-layer", "1.0", raw),
			tagged("multiarch/pause", "3.2", pause, pauseAMD, pauseARM),
			tagged("multiarch/coredns", "1.6.9", coredns, corednsAMD, corednsARM),
		},
		Blobs: b.blobs,
	}
}

// Scaled returns n tagged single-arch amd64 images, Docker and OCI mixed, each made of
// one or two of three shared base layers plus one unique layer; the same (n, seed)
// always yields the same bytes. Images are spread over repos "scaled/app-NNN",
// three tags per repo.
func Scaled(n int, seed int64) *Corpus {
	b := newBuilder()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x62616c65))
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	var bases []layer
	for i := range 3 {
		id := fmt.Sprintf("scaled-base-%d", i)
		bases = append(bases, b.layer("/bin/sh -c #(nop) ADD file:"+id+" in / ", false, baseFiles(id, "amd64")...))
	}
	c := &Corpus{Blobs: b.blobs}
	for i := range n {
		name := fmt.Sprintf("app-%05d", i)
		noise := make([]byte, 256+rng.IntN(1792))
		for j := range noise {
			noise[j] = byte(rng.Uint32())
		}
		files := append(appFiles(name, fmt.Sprintf("%d", i)),
			file{name: "var/lib/" + name + "/data.bin", mode: 0o644, body: string(noise)})
		first := rng.IntN(len(bases))
		layers := []layer{bases[first]}
		if rng.IntN(2) == 0 {
			layers = append(layers, bases[(first+1)%len(bases)])
		}
		layers = append(layers, b.layer("/bin/sh -c #(nop) COPY dir:"+name+" in / ", false, files...))
		f := docker
		if rng.IntN(2) == 0 {
			f = oci
		}
		d := b.image(imageSpec{format: f, platform: amd64, layers: layers, cmd: []string{"/usr/local/bin/" + name}})
		c.Images = append(c.Images, tagged(fmt.Sprintf("scaled/app-%03d", i/3), fmt.Sprintf("v1.%d", i%3), d))
	}
	return c
}

// Manifest returns the bytes of the manifest d, or nil if the corpus has no such blob.
func (c *Corpus) Manifest(d digest.Digest) []byte {
	return c.Blobs[d]
}

// References returns the digests a manifest refers to: the children of an index or
// list, or the config followed by the layers of an image manifest.
func (c *Corpus) References(d digest.Digest) ([]digest.Digest, error) {
	data, ok := c.Blobs[d]
	if !ok {
		return nil, fmt.Errorf("imagetest: manifest %s not in corpus", d)
	}
	var m struct {
		Manifests []Descriptor `json:"manifests"`
		Config    *Descriptor  `json:"config"`
		Layers    []Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("imagetest: parse manifest %s: %w", d, err)
	}
	var refs []digest.Digest
	for _, x := range m.Manifests {
		refs = append(refs, x.Digest)
	}
	if m.Config != nil {
		refs = append(refs, m.Config.Digest)
	}
	for _, x := range m.Layers {
		refs = append(refs, x.Digest)
	}
	return refs, nil
}

// mediaType returns the top-level mediaType of manifest d, "" when it has none or is absent.
func (c *Corpus) mediaType(d digest.Digest) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(c.Blobs[d], &m)
	return m.MediaType
}

// BlobDigests returns every config and layer digest of img (all instances of an
// index/list, at any depth), without duplicates, in first-reference order.
func (c *Corpus) BlobDigests(img Image) ([]digest.Digest, error) {
	manifests := []digest.Digest{img.Digest}
	if img.IsIndex() {
		manifests = img.Children
	}
	seen := map[digest.Digest]bool{}
	var out []digest.Digest
	for _, m := range manifests {
		if IsIndexType(c.mediaType(m)) {
			continue // an index below an index: its own children are in img.Children too
		}
		refs, err := c.References(m)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// DirVersion is the exact content of the `version` file of a skopeo dir: image.
const DirVersion = "Directory Transport Version: 1.1\n"

// WriteDir writes img as a skopeo dir: image at root/<repo>:<tag> (nested repo
// components become folders) and returns that directory.
func (c *Corpus) WriteDir(root string, img Image) (string, error) {
	dir := filepath.Join(root, filepath.FromSlash(img.Repo)+":"+img.Tag)
	top := c.Manifest(img.Digest)
	if top == nil {
		return "", fmt.Errorf("imagetest: %s: manifest %s not in corpus", img.Name(), img.Digest)
	}
	blobs, err := c.BlobDigests(img)
	if err != nil {
		return "", fmt.Errorf("imagetest: %s: %w", img.Name(), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("imagetest: %w", err)
	}
	files := map[string][]byte{
		"version":       []byte(DirVersion),
		"manifest.json": top,
	}
	for _, ch := range img.Children {
		data := c.Manifest(ch)
		if data == nil {
			return "", fmt.Errorf("imagetest: %s: child manifest %s not in corpus", img.Name(), ch)
		}
		files[ch.Encoded()+".manifest.json"] = data
	}
	for _, d := range blobs {
		data, ok := c.Blobs[d]
		if !ok {
			return "", fmt.Errorf("imagetest: %s: blob %s not in corpus", img.Name(), d)
		}
		files[d.Encoded()] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", fmt.Errorf("imagetest: %w", err)
		}
	}
	return dir, nil
}
