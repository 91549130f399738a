package archive_test

// Test fixtures for package archive: hand-made images written into a registry.Store, and
// helpers to read a bundle's members and to craft arbitrary (hostile) bundles. Every expected
// digest is computed here with crypto/sha256 over the bytes the test made, never by the code
// under test.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtOCILayer       = "application/vnd.oci.image.layer.v1.tar+gzip"

	prefix = "docker/registry/v2/"
)

// layerEpoch is the mtime of the files inside the layers.
var layerEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func blobName(h string) string { return prefix + "blobs/sha256/" + h[:2] + "/" + h + "/data" }

func repoDir(repo string) string { return prefix + "repositories/" + repo + "/" }

func layerLinkName(repo, h string) string { return repoDir(repo) + "_layers/sha256/" + h + "/link" }

func revisionLinkName(repo, h string) string {
	return repoDir(repo) + "_manifests/revisions/sha256/" + h + "/link"
}

func tagCurrentName(repo, tag string) string {
	return repoDir(repo) + "_manifests/tags/" + tag + "/current/link"
}

func tagIndexName(repo, tag, h string) string {
	return repoDir(repo) + "_manifests/tags/" + tag + "/index/sha256/" + h + "/link"
}

type jplatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type jdesc struct {
	MediaType string     `json:"mediaType"`
	Digest    string     `json:"digest"`
	Size      int        `json:"size"`
	Platform  *jplatform `json:"platform,omitempty"`
}

type jmanifest struct {
	SchemaVersion int     `json:"schemaVersion"`
	MediaType     string  `json:"mediaType,omitempty"`
	Config        *jdesc  `json:"config,omitempty"`
	Layers        []jdesc `json:"layers,omitempty"`
	Manifests     []jdesc `json:"manifests,omitempty"`
}

type jconfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
	Created      string `json:"created"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layer is a gzip'd tar layer and the sha256 of its uncompressed tar.
type layer struct {
	gz     []byte
	diffID string
}

// makeLayer builds a real gzip'd tar holding files (name, content pairs).
func makeLayer(t testing.TB, files ...string) layer {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: files[i], Mode: 0o644,
			Size: int64(len(files[i+1])), ModTime: layerEpoch}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gb, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return layer{gz: gb.Bytes(), diffID: "sha256:" + hexOf(tb.Bytes())}
}

type tagRef struct{ repo, tag, hex string }

// fixture is a registry store filled by hand, with what the test expects of it.
type fixture struct {
	store   *registry.Store
	blobs   map[string][]byte // hex -> content: configs, layers and manifests
	links   map[string]string // storage-relative link path -> content
	tags    []tagRef
	created time.Time // newest config "created", truncated to the second
}

func newStoreFixture(t testing.TB) *fixture {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	st, err := registry.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, blobs: map[string][]byte{}, links: map[string]string{}}
}

// put writes b as a blob of the store and returns its hex digest.
func (fx *fixture) put(t testing.TB, b []byte) string {
	t.Helper()
	h := hexOf(b)
	if err := fx.store.WriteBlob(layout.Descriptor{Digest: digest.Digest("sha256:" + h), Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	fx.blobs[h] = b
	return h
}

// built is one image manifest with the blobs it names.
type built struct {
	raw   []byte
	hex   string
	mt    string
	blobs []string // config then layers
}

// image writes the config, layers and manifest of one image (Docker schema2 unless oci).
func (fx *fixture) image(t testing.TB, oci bool, p jplatform, created string, layers ...layer) built {
	t.Helper()
	cfgMT, layerMT, mt := mtDockerConfig, mtDockerLayer, mtDockerManifest
	if oci {
		cfgMT, layerMT, mt = mtOCIConfig, mtOCILayer, mtOCIManifest
	}
	cfg := jconfig{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant, Created: created}
	cfg.RootFS.Type = "layers"
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	cb := mustJSON(t, cfg)
	ch := fx.put(t, cb)
	m := jmanifest{SchemaVersion: 2, MediaType: mt, Config: &jdesc{MediaType: cfgMT, Digest: "sha256:" + ch, Size: len(cb)}}
	out := built{mt: mt, blobs: []string{ch}}
	for _, l := range layers {
		lh := fx.put(t, l.gz)
		m.Layers = append(m.Layers, jdesc{MediaType: layerMT, Digest: "sha256:" + lh, Size: len(l.gz)})
		out.blobs = append(out.blobs, lh)
	}
	out.raw = mustJSON(t, m)
	out.hex = fx.put(t, out.raw)
	if ct, err := time.Parse(time.RFC3339Nano, created); err != nil {
		t.Fatal(err)
	} else if ct = ct.UTC().Truncate(time.Second); ct.After(fx.created) {
		fx.created = ct
	}
	return out
}

// index writes an OCI index of children with their platforms.
func (fx *fixture) index(t testing.TB, children []built, plats []jplatform) built {
	t.Helper()
	m := jmanifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []jdesc{}}
	for i, c := range children {
		p := plats[i]
		m.Manifests = append(m.Manifests, jdesc{MediaType: c.mt, Digest: "sha256:" + c.hex, Size: len(c.raw), Platform: &p})
	}
	raw := mustJSON(t, m)
	return built{raw: raw, hex: fx.put(t, raw), mt: mtOCIIndex}
}

// link links top (and its children) into repo and tags it, the way a registry push does, and
// records the link files the bundle must recreate.
func (fx *fixture) link(t testing.TB, repo string, top built, children []built, tags ...string) {
	t.Helper()
	parse := func(b built) *layout.Manifest {
		m, err := layout.ParseManifest(b.raw)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	img := &layout.Image{Manifest: parse(top)}
	for _, c := range children {
		img.Children = append(img.Children, parse(c))
	}
	if err := fx.store.LinkImage(repo, img); err != nil {
		t.Fatal(err)
	}
	for _, m := range append([]built{top}, children...) {
		fx.links[revisionLinkName(repo, m.hex)] = "sha256:" + m.hex
		for _, b := range m.blobs {
			fx.links[layerLinkName(repo, b)] = "sha256:" + b
		}
	}
	for _, tag := range tags {
		if err := fx.store.Tag(repo, tag, digest.Digest("sha256:"+top.hex)); err != nil {
			t.Fatal(err)
		}
		fx.links[tagIndexName(repo, tag, top.hex)] = "sha256:" + top.hex
		fx.links[tagCurrentName(repo, tag)] = "sha256:" + top.hex
		fx.tags = append(fx.tags, tagRef{repo, tag, top.hex})
	}
}

// newFixture builds the standard test store: a Docker schema2 image with two tags, an OCI
// image in the nested repository a/b/c sharing a layer with it, and an OCI index of two
// platforms. The newest config is created 2024-03-04T10:11:12.5Z.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	fx := newStoreFixture(t)
	l1 := makeLayer(t, "etc/os-release", "NAME=test\n", "bin/sh", "#!/bin/true\n")
	l2 := makeLayer(t, "usr/share/doc/readme", "shared layer\n")
	l3 := makeLayer(t, "app/main", "oci app\n")
	la := makeLayer(t, "arch", "amd64\n")
	lb := makeLayer(t, "arch", "arm64\n")

	docker := fx.image(t, false, jplatform{OS: "linux", Architecture: "amd64"}, "2023-01-02T03:04:05Z", l1, l2)
	fx.link(t, "library/alpine", docker, nil, "3.19", "latest")

	oci := fx.image(t, true, jplatform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "2023-05-06T07:08:09Z", l2, l3)
	fx.link(t, "a/b/c", oci, nil, "v1")

	ca := fx.image(t, true, jplatform{OS: "linux", Architecture: "amd64"}, "2024-03-04T10:11:12.5Z", la)
	cb := fx.image(t, true, jplatform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "2022-02-02T02:02:02Z", lb)
	plats := []jplatform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	idx := fx.index(t, []built{ca, cb}, plats)
	fx.link(t, "multi", idx, []built{ca, cb}, "2.0")
	return fx
}

// wantCreated is the "created" of the newest config of newFixture, truncated to the second.
var wantCreated = time.Date(2024, 3, 4, 10, 11, 12, 0, time.UTC)

// bigFixture is newFixture plus an image whose layer holds size random bytes.
func bigFixture(t testing.TB, size int) *fixture {
	t.Helper()
	fx := newFixture(t)
	rnd := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	big := fx.image(t, false, jplatform{OS: "linux", Architecture: "amd64"}, "2021-01-01T00:00:00Z", makeLayer(t, "random.bin", string(rnd)))
	fx.link(t, "big", big, nil, "x")
	return fx
}

func (fx *fixture) catalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.FromSource(fx.store, nil, catalog.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	return c
}

// bundle writes the genuine bundle of every tag of the fixture.
func (fx *fixture) bundle(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Write(context.Background(), &buf, fx.catalog(t), fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (fx *fixture) totalBytes() int64 {
	var n int64
	for _, b := range fx.blobs {
		n += int64(len(b))
	}
	return n
}

// member is one tar member to craft: a header and body, or raw bytes written as they are
// (whole 512-byte blocks).
type member struct {
	hdr  *tar.Header
	body []byte
	raw  []byte
}

func reg(name string, body []byte) member {
	return member{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: wantCreated}, body: body}
}

// unzstd decompresses a whole zstd stream.
func unzstd(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readMembers reads every member of a bundle with archive/tar, independently of the reader.
func readMembers(t testing.TB, bundle []byte) []member {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(unzstd(t, bundle)))
	var out []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, member{hdr: h, body: body})
	}
}

// plainTar writes members as an uncompressed tar.
func plainTar(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if m.raw != nil {
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			buf.Write(m.raw)
			continue
		}
		h := *m.hdr
		h.Size = int64(len(m.body))
		//lint:ignore SA1019 Xattrs is deprecated, but the reader fills it: clear it too
		h.Format, h.PAXRecords, h.Xattrs = tar.FormatUnknown, nil, nil
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("crafting %q: %v", h.Name, err)
		}
		if _, err := tw.Write(m.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// craft writes members as a tar compressed with zstd: an arbitrary bundle.
func craft(t testing.TB, members []member) []byte {
	t.Helper()
	return zstdBytes(t, plainTar(t, members))
}

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawUSTAR is a hand-made USTAR header block (plus body, padded), for names archive/tar will
// not write. name may hold NUL bytes; it is cut at 100 bytes.
func rawUSTAR(name string, typeflag byte, body []byte) []byte {
	blk := make([]byte, 512)
	copy(blk[0:100], name)
	copy(blk[100:108], "0000644\x00")
	copy(blk[108:116], "0000000\x00")
	copy(blk[116:124], "0000000\x00")
	copy(blk[124:136], fmt.Sprintf("%011o\x00", len(body)))
	copy(blk[136:148], fmt.Sprintf("%011o\x00", wantCreated.Unix()))
	blk[156] = typeflag
	copy(blk[257:265], "ustar\x0000")
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(blk, body...)
	if r := len(body) % 512; r != 0 {
		out = append(out, make([]byte, 512-r)...)
	}
	return out
}

// rawPAXPath is a PAX extended header whose path record is name (which may hold NUL), then
// a USTAR header for a regular file with body.
func rawPAXPath(name string, body []byte) []byte {
	rec := " path=" + name + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n = len(fmt.Sprint(n)) + len(rec)
	}
	pax := rawUSTAR("PaxHeaders/x", tar.TypeXHeader, []byte(fmt.Sprint(n)+rec))
	return append(pax, rawUSTAR("placeholder", tar.TypeReg, body)...)
}

// rawGNULongName is a GNU long-name header holding name (which may hold NUL), then a USTAR
// header for a regular file with body.
func rawGNULongName(name string, body []byte) []byte {
	ln := rawUSTAR("././@LongLink", tar.TypeGNULongName, append([]byte(name), 0))
	return append(ln, rawUSTAR("placeholder", tar.TypeReg, body)...)
}

// treeFiles lists the regular files under root (slash-separated, relative) and fails on
// anything that is neither a directory nor a regular file.
func treeFiles(t testing.TB, root string) map[string]fs.FileInfo {
	t.Helper()
	out := map[string]fs.FileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == fsutil.LockName {
			return nil // the target's lock file, which stays (see fsutil.Lock)
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("%s: not a regular file (%s)", rel, fi.Mode())
		}
		out[filepath.ToSlash(rel)] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkNoTemp fails if any bale temporary file is left under root.
func checkNoTemp(t testing.TB, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".bale-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// checkTagsComplete fails if a tag of the store at root points at content that is missing or
// corrupt: the manifest, its children, and every config and layer they name must be present
// and hash to their names.
func checkTagsComplete(t testing.TB, root string) {
	t.Helper()
	base := filepath.Join(root, filepath.FromSlash(prefix))
	blob := func(d string) ([]byte, bool) {
		h, ok := strings.CutPrefix(d, "sha256:")
		if !ok || len(h) != 64 {
			t.Errorf("bad digest %q", d)
			return nil, false
		}
		b, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(strings.TrimPrefix(blobName(h), prefix))))
		if err != nil {
			t.Errorf("tagged content: blob %s missing: %v", d, err)
			return nil, false
		}
		if hexOf(b) != h {
			t.Errorf("tagged content: blob %s does not hash to its digest", d)
			return nil, false
		}
		return b, true
	}
	var walkManifest func(d string, depth int)
	walkManifest = func(d string, depth int) {
		b, ok := blob(d)
		if !ok || depth > 2 {
			return
		}
		var m jmanifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("tagged manifest %s: %v", d, err)
			return
		}
		if m.Config != nil {
			blob(m.Config.Digest)
		}
		for _, l := range m.Layers {
			blob(l.Digest)
		}
		for _, c := range m.Manifests {
			walkManifest(c.Digest, depth+1)
		}
	}
	for rel := range treeFiles(t, root) {
		if strings.HasPrefix(rel, prefix+"repositories/") && strings.HasSuffix(rel, "/current/link") &&
			strings.Contains(rel, "/_manifests/tags/") {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			walkManifest(string(b), 0)
		}
	}
}

// checkOnlyTarget fails unless dir holds exactly one entry, target.
func checkOnlyTarget(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "target" {
		t.Errorf("the directory above the target holds %v, want only [target]: something was written outside the target", names)
	}
}

// linkFiles reads every link file under the repositories of root: relative path -> content.
func linkFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rel := range treeFiles(t, root) {
		if strings.HasPrefix(rel, prefix+"repositories/") {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				t.Fatal(err)
			}
			out[rel] = string(b)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isBlobName(n string) bool {
	return strings.HasPrefix(n, prefix+"blobs/") && path.Base(n) == "data"
}

func isTagLink(n string) bool { return strings.Contains(n, "/_manifests/tags/") }

// newTarget creates an empty registry store at <tempdir>/target.
func newTarget(t testing.TB) (parent string, st *registry.Store) {
	t.Helper()
	parent = t.TempDir()
	st, err := registry.Create(filepath.Join(parent, "target"))
	if err != nil {
		t.Fatal(err)
	}
	return parent, st
}

// unpackBytes unpacks bundle into st.
func unpackBytes(bundle []byte, st *registry.Store) (*archive.UnpackResult, error) {
	return archive.Unpack(context.Background(), bytes.NewReader(bundle), st, archive.UnpackOptions{})
}

// seekTableSize is the size of the seek table frame at the end of a bundle bale wrote.
func seekTableSize(t testing.TB, bundle []byte) int {
	t.Helper()
	n := len(bundle)
	if n < 17 || binary.LittleEndian.Uint32(bundle[n-4:]) != 0x8F92EAB1 {
		t.Fatal("the bundle does not end with a seek table")
	}
	return 8 + 8*int(binary.LittleEndian.Uint32(bundle[n-9:])) + 9
}
