package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

func TestOCI11Deterministic(t *testing.T) {
	a, b := OCI11(), OCI11()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two calls to OCI11() differ")
	}
	a.Blobs[a.Images[0].Digest][0] = 'X' // mutating one corpus must not affect another
	if c := OCI11(); !reflect.DeepEqual(b, c) {
		t.Fatal("OCI11() shares state between calls")
	}
}

// anyManifest is every field of an OCI 1.1 manifest or index the checks read.
type anyManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// oci11Checker walks the corpus, recording what it covers.
type oci11Checker struct {
	t          *testing.T
	c          *Corpus
	referenced map[digest.Digest]bool
	seen       map[string]bool // shapes covered
	depth      map[digest.Digest]int
}

func TestOCI11Valid(t *testing.T) {
	c := OCI11()
	k := &oci11Checker{t: t, c: c, referenced: map[digest.Digest]bool{}, seen: map[string]bool{}, depth: map[digest.Digest]int{}}
	total := 0
	for d, data := range c.Blobs {
		total += len(data)
		if got := digest.FromBytes(data); got != d {
			t.Errorf("blob stored as %s hashes to %s", d, got)
		}
	}
	if total >= 1<<20 {
		t.Errorf("corpus is %d bytes, want < 1 MiB", total)
	}
	tags := map[string]bool{}
	names := map[string]bool{}
	for _, img := range c.Images {
		if !repoRE.MatchString(img.Repo) || !tagRE.MatchString(img.Tag) {
			t.Errorf("invalid name %s", img.Name())
		}
		if tags[img.Tag] {
			t.Errorf("tag %s used twice (regctl's ocidir://DIR:TAG needs unique tags)", img.Tag)
		}
		tags[img.Tag], names[img.Name()] = true, true
		k.referenced[img.Digest] = true
		var below []digest.Digest
		m := k.manifest(img.Name(), img.Digest, img.MediaType, 1, &below)
		if m == nil {
			continue
		}
		if !reflect.DeepEqual(below, img.Children) {
			t.Errorf("%s: Children %v, the index lists %v depth first", img.Name(), img.Children, below)
		}
		if m.Subject != nil {
			found := false
			for _, o := range c.Images {
				found = found || (o.Repo == img.Repo && o.Digest == m.Subject.Digest)
			}
			if !found {
				t.Errorf("%s: subject %s is not an image of %s", img.Name(), m.Subject.Digest, img.Repo)
			}
		}
	}
	for d := range c.Blobs {
		if !k.referenced[d] {
			t.Errorf("blob %s is not referenced by any image", d)
		}
	}
	for _, shape := range []string{
		"artifact with the empty config", "data", "custom layer type", "helm chart", "zstd layer", "uncompressed layer",
		"urls", "non-distributable layer", "custom field", "annotations", "index artifactType", "index subject",
		"descriptor artifactType", "index depth 3",
	} {
		if !k.seen[shape] {
			t.Errorf("the corpus has no %s", shape)
		}
	}
	t.Logf("%d images, %d blobs, %d bytes", len(c.Images), len(c.Blobs), total)
}

// manifest checks manifest d (of media type mt, at index depth depth) and what it names,
// appending the manifests below it to below, depth first.
func (k *oci11Checker) manifest(where string, d digest.Digest, mt string, depth int, below *[]digest.Digest) *anyManifest {
	t := k.t
	t.Helper()
	data := k.c.Blobs[d]
	if data == nil {
		t.Errorf("%s: manifest %s missing", where, d)
		return nil
	}
	if !json.Valid(data) {
		t.Errorf("%s: manifest %s is not valid JSON", where, d)
		return nil
	}
	var m anyManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	if m.SchemaVersion != 2 || m.MediaType != mt {
		t.Errorf("%s: manifest %s: schemaVersion %d mediaType %q, want 2 %q", where, d, m.SchemaVersion, m.MediaType, mt)
	}
	var top map[string]json.RawMessage
	_ = json.Unmarshal(data, &top)
	if _, ok := top[CustomField]; ok {
		k.seen["custom field"] = true
	}
	if len(m.Annotations) > 0 {
		k.seen["annotations"] = true
	}
	if m.Subject != nil {
		k.descriptor(where, *m.Subject)
	}
	switch mt {
	case MediaTypeOCIIndex:
		if m.Config != nil || m.Layers != nil || m.Manifests == nil {
			t.Errorf("%s: index %s with config or layers, or without manifests", where, d)
		}
		if m.ArtifactType != "" {
			k.seen["index artifactType"] = true
		}
		if m.Subject != nil {
			k.seen["index subject"] = true
		}
		if depth == 3 {
			k.seen["index depth 3"] = true
		}
		for _, c := range m.Manifests {
			k.descriptor(where, c)
			if c.ArtifactType != "" {
				k.seen["descriptor artifactType"] = true
			}
			if IsIndexType(c.MediaType) && c.Platform != nil {
				t.Errorf("%s: index child %s is an index with a platform", where, c.Digest)
			}
			if !IsIndexType(c.MediaType) && len(m.Manifests) > 1 && c.Platform == nil {
				t.Errorf("%s: multi-platform index child %s without a platform", where, c.Digest)
			}
			*below = append(*below, c.Digest)
			k.manifest(where+"@"+string(c.Digest), c.Digest, c.MediaType, depth+1, below)
		}
	case MediaTypeOCIManifest:
		if m.Config == nil || len(m.Layers) == 0 || m.Manifests != nil {
			t.Errorf("%s: image manifest %s without config or layers, or with manifests", where, d)
			return &m
		}
		k.image(where, &m)
	default:
		t.Errorf("%s: manifest %s of media type %s", where, d, mt)
	}
	return &m
}

// descriptor checks that desc names a blob of its size, and its data, if any, is that blob.
func (k *oci11Checker) descriptor(where string, desc Descriptor) []byte {
	t := k.t
	t.Helper()
	k.referenced[desc.Digest] = true
	data, ok := k.c.Blobs[desc.Digest]
	if !ok {
		t.Errorf("%s: blob %s missing", where, desc.Digest)
		return nil
	}
	if int64(len(data)) != desc.Size {
		t.Errorf("%s: blob %s has %d bytes, descriptor says %d", where, desc.Digest, len(data), desc.Size)
	}
	if desc.Data != nil {
		k.seen["data"] = true
		if !bytes.Equal(desc.Data, data) {
			t.Errorf("%s: data of %s is not its content", where, desc.Digest)
		}
	}
	if len(desc.URLs) > 0 {
		k.seen["urls"] = true
	}
	return data
}

// image checks an image manifest's config and layers.
func (k *oci11Checker) image(where string, m *anyManifest) {
	t := k.t
	t.Helper()
	cfg := k.descriptor(where, *m.Config)
	var layers [][]byte
	for _, l := range m.Layers {
		layers = append(layers, k.descriptor(where, l))
	}
	if cfg == nil {
		return
	}
	switch m.Config.MediaType {
	case MediaTypeEmptyJSON:
		if m.Config.Digest != EmptyJSONDigest || string(cfg) != "{}" || string(m.Config.Data) != "{}" {
			t.Errorf("%s: empty config %s of %q (data %q)", where, m.Config.Digest, cfg, m.Config.Data)
		}
		if m.ArtifactType == "" {
			t.Errorf("%s: the empty config without an artifactType", where)
		}
		if m.ArtifactType == ArtifactTypeThing {
			k.seen["artifact with the empty config"] = true
		}
		for _, l := range m.Layers {
			if l.MediaType == MediaTypeThingLayer {
				k.seen["custom layer type"] = true
			}
		}
	case MediaTypeHelmConfig:
		var chart struct{ Name, Version string }
		if err := json.Unmarshal(cfg, &chart); err != nil || chart.Name != "mychart" || chart.Version != "0.1.0" {
			t.Errorf("%s: helm config %s: %v", where, cfg, err)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeHelmChart || layers[0] == nil {
			t.Errorf("%s: helm chart layers %+v", where, m.Layers)
			return
		}
		tarBytes, err := uncompressed(layers[0], true)
		if err == nil {
			err = checkTar(tarBytes)
		}
		if err != nil || !tarHas(tarBytes, "mychart/Chart.yaml", "name: mychart\n") {
			t.Errorf("%s: chart .tgz has no mychart/Chart.yaml naming mychart (%v)", where, err)
		}
		k.seen["helm chart"] = true
	case MediaTypeOCIConfig:
		var c ConfigJSON
		if err := json.Unmarshal(cfg, &c); err != nil {
			t.Errorf("%s: config: %v", where, err)
			return
		}
		if len(c.RootFS.DiffIDs) != len(m.Layers) || len(c.History) != len(m.Layers) {
			t.Errorf("%s: %d layers, %d diff_ids, %d history entries", where, len(m.Layers), len(c.RootFS.DiffIDs), len(c.History))
			return
		}
		for i, l := range m.Layers {
			if layers[i] == nil {
				continue
			}
			var tarBytes []byte
			var err error
			switch l.MediaType {
			case MediaTypeOCILayerGzip, MediaTypeOCILayerNondistributableGzip:
				tarBytes, err = uncompressed(layers[i], true)
			case MediaTypeOCILayerZstd:
				k.seen["zstd layer"] = true
				tarBytes, err = unzstd(layers[i])
			case MediaTypeOCILayer:
				k.seen["uncompressed layer"] = true
				tarBytes = layers[i]
			default:
				t.Errorf("%s: image layer %s of media type %s", where, l.Digest, l.MediaType)
				continue
			}
			if l.MediaType == MediaTypeOCILayerNondistributableGzip {
				k.seen["non-distributable layer"] = true
				if !reflect.DeepEqual(l.URLs, []string{ForeignLayerURL}) {
					t.Errorf("%s: non-distributable layer urls %v", where, l.URLs)
				}
			}
			if err == nil {
				err = checkTar(tarBytes)
			}
			if err != nil {
				t.Errorf("%s: layer %s: %v", where, l.Digest, err)
				continue
			}
			if got := digest.FromBytes(tarBytes); got != c.RootFS.DiffIDs[i] {
				t.Errorf("%s: layer %d diff_id %s, its tar hashes to %s", where, i, c.RootFS.DiffIDs[i], got)
			}
		}
	default:
		if m.ArtifactType == "" {
			t.Errorf("%s: config of media type %s", where, m.Config.MediaType)
		}
	}
}

// unzstd decompresses one zstd blob.
func unzstd(b []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(b, nil)
}

// tarHas reports whether the tar archive data holds a file name whose body contains want.
func tarHas(data []byte, name, want string) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if hdr.Name == name {
			b, err := io.ReadAll(tr)
			return err == nil && strings.Contains(string(b), want)
		}
	}
}

// TestOCI11Bytes pins the bytes the OCI 1.1 shapes must keep: the empty config inline as
// "e30=", and the custom field, in the raw manifests.
func TestOCI11Bytes(t *testing.T) {
	c := OCI11()
	raw := map[string]string{}
	for _, img := range c.Images {
		raw[img.Name()] = string(c.Manifest(img.Digest))
	}
	for name, want := range map[string][]string{
		"oci11/artifact:thing-1": {`"artifactType":"` + ArtifactTypeThing + `"`,
			`{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + string(EmptyJSONDigest) + `","size":2,"data":"e30="}`},
		"oci11/app:v1":         {`"x-bale-test":{"n":1}`, `"mediaType":"` + MediaTypeOCILayerZstd + `"`},
		"oci11/nested:multi-3": {`"x-bale-test":{"n":3}`},
		"oci11/app:bundle":     {`"artifactType":"` + ArtifactTypeBundle + `"`, `"subject":{`},
	} {
		for _, w := range want {
			if !strings.Contains(raw[name], w) {
				t.Errorf("%s: manifest lacks %s:\n%s", name, w, raw[name])
			}
		}
	}
}

func TestWriteOCILayout(t *testing.T) {
	c := OCI11()
	root := t.TempDir()
	if err := c.WriteOCILayout(root); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "oci-layout"))
	if err != nil || string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout: %q, %v", b, err)
	}
	b, err = os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx IndexJSON
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != len(c.Images) {
		t.Fatalf("index.json lists %d images, want %d", len(idx.Manifests), len(c.Images))
	}
	for i, img := range c.Images {
		d := idx.Manifests[i]
		if d.Digest != img.Digest || d.MediaType != img.MediaType || d.Size != int64(len(c.Manifest(img.Digest))) || d.Annotations[OCIRefName] != img.Name() {
			t.Errorf("index.json entry %d: %+v, want %s %s", i, d, img.Name(), img.Digest)
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(c.Blobs) {
		t.Errorf("%d blob files, want %d", len(ents), len(c.Blobs))
	}
	for d, data := range c.Blobs {
		got, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", d.Encoded()))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("blob %s: %v or different bytes", d, err)
		}
	}
}

func TestWriteSHA512Layout(t *testing.T) {
	root := t.TempDir()
	img, err := WriteSHA512Layout(root)
	if err != nil {
		t.Fatal(err)
	}
	if img.Layer.Algorithm() != digest.SHA512 || img.Layer.Validate() != nil {
		t.Fatalf("layer digest %s", img.Layer)
	}
	data, err := os.ReadFile(filepath.Join(root, "blobs", "sha512", img.Layer.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha512.Sum512(data); hex.EncodeToString(sum[:]) != img.Layer.Encoded() {
		t.Errorf("blobs/sha512/%s does not hash to its name", img.Layer.Encoded())
	}
	m, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", img.Manifest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(m) != img.Manifest || !strings.Contains(string(m), string(img.Layer)) {
		t.Errorf("manifest %s does not name %s:\n%s", img.Manifest, img.Layer, m)
	}
	if b, err := WriteSHA512Layout(t.TempDir()); err != nil || b != img {
		t.Errorf("a second layout differs: %+v, %v", b, err)
	}
}
