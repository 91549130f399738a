package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Registry name and tag grammar (distribution reference/regexp.go), lower-case only.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

func TestStandardDeterministic(t *testing.T) {
	a, b := Standard(), Standard()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two calls to Standard() differ")
	}
	a.Blobs[a.Images[0].Digest][0] = 'X' // mutating one corpus must not affect another
	if c := Standard(); !reflect.DeepEqual(b, c) {
		t.Fatal("Standard() shares state between calls")
	}
}

func TestScaledDeterministic(t *testing.T) {
	a, b := Scaled(20, 7), Scaled(20, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two calls to Scaled(20, 7) differ")
	}
	if len(a.Images) != 20 {
		t.Fatalf("Scaled(20, 7) has %d images", len(a.Images))
	}
	if c := Scaled(20, 8); reflect.DeepEqual(a.Images, c.Images) {
		t.Fatal("different seeds gave the same images")
	}
	checkCorpus(t, a)
}

func TestStandardValid(t *testing.T) {
	checkCorpus(t, Standard())
}

// checkCorpus verifies every image: names, manifests, descriptors, configs and layers.
func checkCorpus(t *testing.T, c *Corpus) {
	t.Helper()
	total := 0
	for d, data := range c.Blobs {
		total += len(data)
		if got := digest.FromBytes(data); got != d {
			t.Errorf("blob stored as %s hashes to %s", d, got)
		}
	}
	referenced := map[digest.Digest]bool{}
	seen := map[string]bool{}
	for _, img := range c.Images {
		if !repoRE.MatchString(img.Repo) || len(img.Repo) > 255 {
			t.Errorf("invalid repo name %q", img.Repo)
		}
		if !tagRE.MatchString(img.Tag) {
			t.Errorf("invalid tag %q", img.Tag)
		}
		if seen[img.Name()] {
			t.Errorf("duplicate %s", img.Name())
		}
		seen[img.Name()] = true
		referenced[img.Digest] = true
		checkTop(t, c, img, referenced)
	}
	for d := range c.Blobs {
		if !referenced[d] {
			t.Errorf("blob %s is not referenced by any image", d)
		}
	}
	t.Logf("%d images, %d blobs, %d bytes", len(c.Images), len(c.Blobs), total)
}

// checkTop verifies one top-level image and marks every blob it references.
func checkTop(t *testing.T, c *Corpus, img Image, referenced map[digest.Digest]bool) {
	t.Helper()
	data := c.Manifest(img.Digest)
	if data == nil {
		t.Errorf("%s: manifest %s missing", img.Name(), img.Digest)
		return
	}
	if !img.IsIndex() {
		if img.Children != nil {
			t.Errorf("%s: single image with children", img.Name())
		}
		checkManifest(t, c, img.Name(), img.MediaType, data, referenced)
		return
	}
	var idx IndexJSON
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Errorf("%s: %v", img.Name(), err)
		return
	}
	if idx.SchemaVersion != 2 || idx.MediaType != img.MediaType {
		t.Errorf("%s: schemaVersion %d mediaType %q, want 2 %q", img.Name(), idx.SchemaVersion, idx.MediaType, img.MediaType)
	}
	childType := MediaTypeOCIManifest
	if img.MediaType == MediaTypeDockerManifestList {
		childType = MediaTypeDockerManifest
	}
	var children []digest.Digest
	for _, desc := range idx.Manifests {
		children = append(children, desc.Digest)
		if desc.Platform == nil || desc.Platform.OS == "" || desc.Platform.Architecture == "" {
			t.Errorf("%s: child %s without platform", img.Name(), desc.Digest)
		}
		if desc.MediaType != childType {
			t.Errorf("%s: child %s has media type %s, want %s", img.Name(), desc.Digest, desc.MediaType, childType)
		}
		child := checkDescriptor(t, c, img.Name(), desc, referenced)
		if child != nil {
			cfg := checkManifest(t, c, img.Name()+"@"+string(desc.Digest), desc.MediaType, child, referenced)
			if cfg != nil && desc.Platform != nil &&
				(cfg.OS != desc.Platform.OS || cfg.Architecture != desc.Platform.Architecture || cfg.Variant != desc.Platform.Variant) {
				t.Errorf("%s: child %s platform %+v does not match its config", img.Name(), desc.Digest, *desc.Platform)
			}
		}
	}
	if !reflect.DeepEqual(children, img.Children) {
		t.Errorf("%s: Children %v, index lists %v", img.Name(), img.Children, children)
	}
}

// checkDescriptor checks that desc matches a stored blob and returns the blob.
func checkDescriptor(t *testing.T, c *Corpus, where string, desc Descriptor, referenced map[digest.Digest]bool) []byte {
	t.Helper()
	referenced[desc.Digest] = true
	data, ok := c.Blobs[desc.Digest]
	if !ok {
		t.Errorf("%s: blob %s missing", where, desc.Digest)
		return nil
	}
	if int64(len(data)) != desc.Size {
		t.Errorf("%s: blob %s has %d bytes, descriptor says %d", where, desc.Digest, len(data), desc.Size)
	}
	return data
}

// checkManifest verifies an image manifest, its config and its layers, and returns the config.
func checkManifest(t *testing.T, c *Corpus, where, mediaType string, data []byte, referenced map[digest.Digest]bool) *ConfigJSON {
	t.Helper()
	var m ManifestJSON
	if err := json.Unmarshal(data, &m); err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	wantConfig, wantLayers := MediaTypeDockerConfig, []string{MediaTypeDockerLayerGzip}
	switch mediaType {
	case MediaTypeDockerManifest:
	case MediaTypeOCIManifest:
		wantConfig, wantLayers = MediaTypeOCIConfig, []string{MediaTypeOCILayerGzip, MediaTypeOCILayer}
	default:
		t.Errorf("%s: unexpected manifest media type %s", where, mediaType)
		return nil
	}
	if m.SchemaVersion != 2 || m.MediaType != mediaType {
		t.Errorf("%s: schemaVersion %d mediaType %q, want 2 %q", where, m.SchemaVersion, m.MediaType, mediaType)
	}
	if m.Config.MediaType != wantConfig {
		t.Errorf("%s: config media type %s, want %s", where, m.Config.MediaType, wantConfig)
	}
	cfgData := checkDescriptor(t, c, where, m.Config, referenced)
	if cfgData == nil {
		return nil
	}
	var cfg ConfigJSON
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		t.Errorf("%s: config: %v", where, err)
		return nil
	}
	if cfg.OS != "linux" || cfg.Architecture == "" || cfg.Created == "" || cfg.RootFS.Type != "layers" {
		t.Errorf("%s: incomplete config %s", where, cfgData)
	}
	if len(m.Layers) == 0 || len(cfg.RootFS.DiffIDs) != len(m.Layers) || len(cfg.History) != len(m.Layers) {
		t.Errorf("%s: %d layers, %d diff_ids, %d history entries", where, len(m.Layers), len(cfg.RootFS.DiffIDs), len(cfg.History))
		return &cfg
	}
	for i, l := range m.Layers {
		if !contains(wantLayers, l.MediaType) {
			t.Errorf("%s: layer %s has media type %s", where, l.Digest, l.MediaType)
		}
		blob := checkDescriptor(t, c, where, l, referenced)
		if blob == nil {
			continue
		}
		tarBytes, err := uncompressed(blob, l.MediaType != MediaTypeOCILayer)
		if err != nil {
			t.Errorf("%s: layer %s: %v", where, l.Digest, err)
			continue
		}
		if got := digest.FromBytes(tarBytes); got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("%s: layer %d diff_id %s, uncompressed tar hashes to %s", where, i, cfg.RootFS.DiffIDs[i], got)
		}
		if err := checkTar(tarBytes); err != nil {
			t.Errorf("%s: layer %s: %v", where, l.Digest, err)
		}
	}
	return &cfg
}

// uncompressed returns the tar bytes of a layer blob, checking the gzip header when gzipped.
func uncompressed(blob []byte, gzipped bool) ([]byte, error) {
	if !gzipped {
		return blob, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, err
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		return nil, errors.New("gzip header carries a time or a name")
	}
	return io.ReadAll(zr)
}

// checkTar reads a whole tar archive and requires at least one regular file with fixed metadata.
func checkTar(data []byte) error {
	tr := tar.NewReader(bytes.NewReader(data))
	files := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !hdr.ModTime.Equal(epoch) || hdr.Uid != 0 || hdr.Gid != 0 {
			return errors.New("tar entry " + hdr.Name + " has unexpected metadata")
		}
		if hdr.Typeflag == tar.TypeReg {
			files++
		}
	}
	if files == 0 {
		return errors.New("no regular file in layer")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestStandardCoverage checks that the standard corpus contains every case it promises.
func TestStandardCoverage(t *testing.T) {
	c := Standard()
	total := 0
	for _, data := range c.Blobs {
		total += len(data)
	}
	if total >= 1<<20 {
		t.Errorf("corpus is %d bytes, want < 1 MiB", total)
	}
	types := map[string]int{}
	depth := map[int]bool{}
	repos := map[string]bool{}
	byDigest := map[digest.Digest][]Image{}
	tagChars := map[rune]bool{}
	var platforms []string
	for _, img := range c.Images {
		types[img.MediaType]++
		depth[strings.Count(img.Repo, "/")+1] = true
		repos[img.Repo] = true
		byDigest[img.Digest] = append(byDigest[img.Digest], img)
		for _, r := range ".-_" {
			if strings.ContainsRune(img.Tag, r) {
				tagChars[r] = true
			}
		}
		for _, ch := range img.Children {
			var m ManifestJSON
			if err := json.Unmarshal(c.Manifest(ch), &m); err != nil {
				t.Fatal(err)
			}
			var cfg ConfigJSON
			if err := json.Unmarshal(c.Blobs[m.Config.Digest], &cfg); err != nil {
				t.Fatal(err)
			}
			platforms = append(platforms, img.MediaType+" "+cfg.OS+"/"+cfg.Architecture+"/"+cfg.Variant)
		}
	}
	for _, mt := range []string{MediaTypeDockerManifest, MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifestList} {
		if types[mt] == 0 {
			t.Errorf("no top-level %s", mt)
		}
	}
	for d := 1; d <= 3; d++ {
		if !depth[d] {
			t.Errorf("no repo of depth %d", d)
		}
	}
	parent := false
	for r := range repos {
		if i := strings.LastIndex(r, "/"); i > 0 && repos[r[:i]] {
			parent = true
		}
	}
	if !parent {
		t.Error("no repo is the parent of another")
	}
	twoTags, twoRepos := false, false
	for _, imgs := range byDigest {
		for i := range imgs {
			for j := i + 1; j < len(imgs); j++ {
				twoTags = twoTags || imgs[i].Repo == imgs[j].Repo
				twoRepos = twoRepos || imgs[i].Repo != imgs[j].Repo
			}
		}
	}
	if !twoTags || !twoRepos {
		t.Errorf("two tags on one digest: %v, one digest in two repos: %v", twoTags, twoRepos)
	}
	if len(tagChars) != 3 {
		t.Errorf("tag characters covered: %v", tagChars)
	}
	sort.Strings(platforms)
	want := []string{
		MediaTypeDockerManifestList + " linux/amd64/",
		MediaTypeDockerManifestList + " linux/arm/v7",
		MediaTypeOCIIndex + " linux/amd64/",
		MediaTypeOCIIndex + " linux/arm64/v8",
	}
	if !reflect.DeepEqual(platforms, want) {
		t.Errorf("index children platforms %v, want %v", platforms, want)
	}
	uncompressedLayer := false
	for _, img := range c.Images {
		if img.MediaType != MediaTypeOCIManifest {
			continue
		}
		var m ManifestJSON
		if err := json.Unmarshal(c.Manifest(img.Digest), &m); err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			uncompressedLayer = uncompressedLayer || l.MediaType == MediaTypeOCILayer
		}
	}
	if !uncompressedLayer {
		t.Error("no OCI image with an uncompressed layer")
	}
	// Layers shared between images: the base layer must appear in several manifests.
	uses := map[digest.Digest]int{}
	for _, img := range c.Images {
		blobs, err := c.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range blobs {
			uses[d]++
		}
	}
	shared := 0
	for _, n := range uses {
		if n >= 3 {
			shared++
		}
	}
	if shared < 2 {
		t.Errorf("only %d blobs are shared by three or more images", shared)
	}
}

func TestWriteDir(t *testing.T) {
	c := Standard()
	root := t.TempDir()
	for _, img := range c.Images {
		dir, err := c.WriteDir(root, img)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, filepath.FromSlash(img.Repo)+":"+img.Tag); dir != want {
			t.Errorf("WriteDir returned %s, want %s", dir, want)
		}
		want := map[string][]byte{
			"version":       []byte("Directory Transport Version: 1.1\n"),
			"manifest.json": c.Manifest(img.Digest),
		}
		for _, ch := range img.Children {
			want[ch.Encoded()+".manifest.json"] = c.Manifest(ch)
		}
		blobs, err := c.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range blobs {
			want[d.Encoded()] = c.Blobs[d]
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(want) {
			t.Errorf("%s: %d files, want %d", img.Name(), len(entries), len(want))
		}
		for name, data := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Error(err)
				continue
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s: %s differs", img.Name(), name)
			}
		}
	}
}
