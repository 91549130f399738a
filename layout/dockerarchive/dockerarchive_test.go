package dockerarchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
)

// corpusTree writes the standard corpus as a skopeo dir tree.
func corpusTree(t *testing.T) (*imagetest.Corpus, string) {
	t.Helper()
	c := imagetest.Standard()
	root := t.TempDir()
	for _, img := range c.Images {
		if _, err := c.WriteDir(root, img); err != nil {
			t.Fatal(err)
		}
	}
	return c, root
}

// copyInto copies every image of src into a docker-archive at path.
func copyInto(t *testing.T, src layout.Source, path string, opt Options) (*Writer, error) {
	t.Helper()
	w, err := Create(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.CopyWith(context.Background(), src, w, nil, layout.CopyOptions{}); err != nil {
		w.Abort()
		return w, err
	}
	return w, w.Commit()
}

// configOf returns the config digest of img for platform p (the image itself when single).
func configOf(t *testing.T, c *imagetest.Corpus, img imagetest.Image, p layout.Platform) digest.Digest {
	t.Helper()
	m, err := layout.ParseManifest(c.Blobs[img.Digest])
	if err != nil {
		t.Fatal(err)
	}
	if m.IsIndex() {
		for _, d := range m.Manifests {
			if p.Matches(d.Platform) {
				m, _ = layout.ParseManifest(c.Blobs[d.Digest])
				break
			}
		}
	}
	return m.Config.Digest
}

// TestRoundTrip writes every image of the corpus (amd64 of the multi-arch ones) and reads
// it back: the image ids stay, every layer is its diff id, every blob verifies, and writing
// what was read gives the same bytes.
func TestRoundTrip(t *testing.T) {
	c, root := corpusTree(t)
	src, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	amd64 := layout.Platform{OS: "linux", Architecture: "amd64"}
	p := filepath.Join(dir, "images.tar")
	if _, err := copyInto(t, src, p, Options{Platform: &amd64}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, img := range c.Images {
		repo := img.Repo
		if repo == "busybox" {
			repo = "library/busybox"
		}
		d, err := r.Resolve(layout.Ref{Repo: repo, Tag: img.Tag})
		if err != nil {
			t.Errorf("%s: %v", img.Name(), err)
			continue
		}
		m, _ := r.ReadManifest(repo, d)
		if want := configOf(t, c, img, amd64); m.Config.Digest != want {
			t.Errorf("%s: image id %s, want %s", img.Name(), m.Config.Digest, want)
		}
		for _, l := range m.Layers {
			if l.MediaType != MediaTypeLayer {
				t.Errorf("%s: layer %s is %s", img.Name(), l.Digest, l.MediaType)
			}
		}
		if !strings.HasPrefix(string(m.Raw), `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:`) {
			t.Errorf("%s: manifest %s", img.Name(), m.Raw)
		}
	}
	if _, errs := catalog.VerifySource(r); len(errs) > 0 {
		t.Errorf("verify: %v", errs)
	}
	// Written again from what was read, the archive gives the same manifests: a vendor's
	// archive packed twice has the same digests.
	p2 := filepath.Join(dir, "again.tar")
	if _, err := copyInto(t, r, p2, Options{}); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(p2, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	refs, _ := r.Refs()
	for _, ref := range refs {
		d1, _ := r.Resolve(ref)
		if d2, err := r2.Resolve(ref); err != nil || d1 != d2 {
			t.Errorf("%s: %s read again is %s, %v", ref, d1, d2, err)
		}
	}
}

// TestPlatform picks one platform of each multi-arch image, and fails for an absent one.
func TestPlatform(t *testing.T) {
	c, root := corpusTree(t)
	src, _ := dirtree.Open(root)
	arm64 := layout.Platform{OS: "linux", Architecture: "arm64"}
	p := filepath.Join(t.TempDir(), "x.tar.zst")
	_, err := copyInto(t, src, p, Options{Platform: &arm64})
	if err == nil || !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "multiarch/coredns") {
		t.Fatalf("coredns has no arm64: err = %v", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left %s", p)
	}
	pause := c.Images[9]
	w, err := Create(p, Options{Platform: &arm64})
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.CopyImages(context.Background(), src, w, []layout.Ref{{Repo: pause.Repo, Tag: pause.Tag}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, _ := r.Resolve(layout.Ref{Repo: pause.Repo, Tag: pause.Tag})
	if m, _ := r.ReadManifest(pause.Repo, d); m == nil || m.Config.Digest != configOf(t, c, pause, arm64) {
		t.Errorf("pause: not the arm64 image")
	}
}

// tarMember is one file of a hand-made archive.
type tarMember struct {
	name, link string
	body       []byte
}

// writeTar writes members (a link when link is set) as a plain tar.
func writeTar(t testing.TB, p string, members ...tarMember) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if m.link != "" {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: m.name, Linkname: m.link})
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.body)), Mode: 0o644})
		tw.Write(m.body)
	}
	tw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVendorArchives reads what other tools write: docker save's <id>/layer.tar with a
// symlink for a layer saved twice, and go-containerregistry's gzip layers, which are kept as
// they are (the registry's own blob digests).
func TestVendorArchives(t *testing.T) {
	c := imagetest.Standard()
	img := c.Images[3] // kubesphere/kube-apiserver, Docker schema2, gzip layers
	m, _ := layout.ParseManifest(c.Blobs[img.Digest])
	cfg := c.Blobs[m.Config.Digest]
	var diffIDs struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(cfg, &diffIDs)

	// go-containerregistry tarball.Write: config sha256:<hex>, layers <hex>.tar.gz as pushed.
	members := []tarMember{{name: "sha256:" + m.Config.Digest.Encoded(), body: cfg}}
	var layers []string
	for _, l := range m.Layers {
		name := l.Digest.Encoded() + ".tar.gz"
		members = append(members, tarMember{name: name, body: c.Blobs[l.Digest]})
		layers = append(layers, name)
	}
	mj, _ := json.Marshal([]map[string]any{{"Config": "sha256:" + m.Config.Digest.Encoded(), "RepoTags": []string{"registry.example:5000/kubesphere/kube-apiserver:v1.20.6"}, "Layers": layers}})
	p := filepath.Join(t.TempDir(), "crane.tar")
	writeTar(t, p, append(members, tarMember{name: "manifest.json", body: mj})...)
	r, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Resolve(layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.ReadManifest("kubesphere/kube-apiserver", d)
	for i, l := range got.Layers {
		if l.Digest != m.Layers[i].Digest || l.MediaType != MediaTypeLayerGzip || l.Size != m.Layers[i].Size {
			t.Errorf("layer %d: %+v, want the registry's %+v", i, l, m.Layers[i])
		}
	}
	if _, errs := catalog.VerifySource(r); len(errs) > 0 {
		t.Error(errs)
	}
	r.Close()

	// docker save: <id>/layer.tar, the second image's shared layer a symlink to the first's.
	src, _ := dirtree.Open(func() string { _, root := corpusTree(t); return root }())
	plain := filepath.Join(t.TempDir(), "plain.tar")
	if _, err := copyInto(t, src, plain, Options{}); err != nil {
		t.Fatal(err)
	}
	pr, _ := Open(plain, OpenOptions{})
	d, _ = pr.Resolve(layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"})
	pm, _ := pr.ReadManifest("", d)
	var saved []tarMember
	var names []string
	for i, l := range pm.Layers {
		rc, _ := pr.OpenBlob("", l)
		var body bytes.Buffer
		body.ReadFrom(rc)
		rc.Close()
		id := fmt.Sprintf("%064d", i)
		saved = append(saved, tarMember{name: id + "/layer.tar", body: body.Bytes()})
		names = append(names, id+"/layer.tar")
	}
	pr.Close()
	saved = append(saved, tarMember{name: "dup/layer.tar", link: "../" + names[0]})
	mj, _ = json.Marshal([]map[string]any{
		{"Config": m.Config.Digest.Encoded() + ".json", "RepoTags": []string{"kubesphere/kube-apiserver:v1.20.6"}, "Layers": names},
		{"Config": m.Config.Digest.Encoded() + ".json", "RepoTags": []string{"other:1"}, "Layers": append([]string{"dup/layer.tar"}, names[1:]...)},
	})
	saved = append(saved, tarMember{name: m.Config.Digest.Encoded() + ".json", body: cfg}, tarMember{name: "manifest.json", body: mj})
	p = filepath.Join(t.TempDir(), "saved.tar")
	writeTar(t, p, saved...)
	r, err = Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d1, _ := r.Resolve(layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"})
	d2, err := r.Resolve(layout.Ref{Repo: "other", Tag: "1"})
	if err != nil || d1 != d2 || d1 != d {
		t.Errorf("docker save archive: digests %s, %s (%v), want both %s", d1, d2, err, d)
	}
	if _, errs := catalog.VerifySource(r); len(errs) > 0 {
		t.Error(errs)
	}
}

// TestDamaged: a damaged layer fails when it is read, naming the member; a missing member or
// a gzip layer that is not its diff id fails Open.
func TestDamaged(t *testing.T) {
	_, root := corpusTree(t)
	src, _ := dirtree.Open(root)
	p := filepath.Join(t.TempDir(), "x.tar")
	if _, err := copyInto(t, src, p, Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	br := bytes.NewReader(b)
	tr := tar.NewReader(br)
	var target string
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no layer found")
		}
		if strings.HasSuffix(h.Name, ".tar") && h.Size > 1000 {
			target = h.Name
			break
		}
	}
	b[len(b)-br.Len()+600] ^= 0x20 // inside the layer's data
	damaged := filepath.Join(t.TempDir(), "damaged.tar")
	os.WriteFile(damaged, b, 0o644)
	r, err := Open(damaged, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, errs := catalog.VerifySource(r)
	if len(errs) == 0 || !errors.Is(errors.Join(errs...), layout.ErrDigestMismatch) || !strings.Contains(errors.Join(errs...).Error(), "member "+target) {
		t.Errorf("verify of a damaged archive: %v (a layer such as %s)", errs, target)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none.tar"), OpenOptions{}); err == nil {
		t.Error("a missing file opened")
	}
	mj := []byte(`[{"Config":"c.json","RepoTags":["a:1"],"Layers":["missing.tar"]}]`)
	cfg := []byte(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["` + string(digest.FromString("x")) + `"]}}`)
	writeTar(t, p, tarMember{name: "c.json", body: cfg}, tarMember{name: "manifest.json", body: mj})
	if _, err := Open(p, OpenOptions{}); !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "missing.tar") {
		t.Errorf("a missing layer: %v", err)
	}
}

// FuzzManifestJSON parses arbitrary manifest.json bytes: no panic, and what is accepted has
// clean member names and tagged references.
func FuzzManifestJSON(f *testing.F) {
	f.Add([]byte(`[{"Config":"abc.json","RepoTags":["docker.io/library/busybox:1.36.1"],"Layers":["a/layer.tar","b.tar"]}]`))
	f.Add([]byte(`[{"Config":"sha256:abc","RepoTags":null,"Layers":[]}]`))
	f.Add([]byte(`[{"Config":"../x","RepoTags":["a@sha256:00"],"Layers":["/etc/passwd"],"LayerSources":{}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseManifestJSON(b)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, n := range append([]string{e.Config}, e.Layers...) {
				if c, err := cleanCheck(n); err != nil || c != n {
					t.Fatalf("member %q accepted from %q", n, b)
				}
			}
			for _, r := range e.Tags {
				if r.Tag == "" || r.Digest != "" || layout.ValidateRepo(r.Repo) != nil {
					t.Fatalf("tag %+v accepted from %q", r, b)
				}
			}
		}
	})
}

// cleanCheck is member without the error wrapping: the name a clean member keeps.
func cleanCheck(n string) (string, error) { return member(n) }

// TestSkipped leaves out what a docker-archive cannot hold, and lists it: an artifact (a Helm
// chart) and a referrer (an SBOM of busybox).
func TestSkipped(t *testing.T) {
	c, root := corpusTree(t)
	write := func(dir string, m string, blobs ...[]byte) digest.Digest {
		os.MkdirAll(filepath.Join(root, dir), 0o755)
		os.WriteFile(filepath.Join(root, dir, "manifest.json"), []byte(m), 0o644)
		os.WriteFile(filepath.Join(root, dir, "version"), []byte(imagetest.DirVersion), 0o644)
		for _, b := range blobs {
			os.WriteFile(filepath.Join(root, dir, digest.FromBytes(b).Encoded()), b, 0o644)
		}
		return digest.FromString(m)
	}
	cfg, chart := []byte(`{"name":"app"}`), []byte("chart bytes")
	write("charts/app:1.0", fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":%q,"size":%d}]}`,
		layout.MediaTypeOCIManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(chart), len(chart)), cfg, chart)
	busybox := c.Images[0]
	empty := []byte("{}")
	sbom := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		layout.MediaTypeOCIManifest, digest.FromBytes(empty), busybox.MediaType, busybox.Digest, len(c.Blobs[busybox.Digest]))
	write("busybox@"+string(digest.FromString(sbom)), sbom, empty)
	src, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := copyInto(t, src, filepath.Join(t.TempDir(), "x.tar"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range w.Skipped() {
		got = append(got, s.Ref.String())
	}
	if want := "charts/app:1.0 busybox@" + string(digest.FromString(sbom)); strings.Join(got, " ") != want {
		t.Errorf("Skipped = %v, want %s", got, want)
	}
}

// TestRealWorldNames writes imagetest.RealWorld's BuildKit indexes for linux/arm64: each
// name holds the arm64 image (never an attestation manifest), and alpine:3.14 and
// library/alpine:3.14 are reported as one merged name.
func TestRealWorldNames(t *testing.T) {
	c := imagetest.RealWorld()
	root := t.TempDir()
	var images []imagetest.Image
	for _, img := range c.Images {
		if c.NestsIndex(img) || img.Name() == "shapes/buildkit:single" { // not in a dir tree; no arm64
			continue
		}
		images = append(images, img)
		if _, err := c.WriteDir(root, img); err != nil {
			t.Fatal(err)
		}
	}
	src, err := dirtree.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	arm64 := layout.Platform{OS: "linux", Architecture: "arm64"}
	w, err := copyInto(t, src, filepath.Join(t.TempDir(), "arm64.tar"), Options{Platform: &arm64})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]layout.Ref{"docker.io/library/alpine:3.14": {{Repo: "alpine", Tag: "3.14"}, {Repo: "library/alpine", Tag: "3.14"}}}
	if got := w.Merged(); fmt.Sprint(got) != fmt.Sprint(want) || w.Names() != len(images)-1 {
		t.Errorf("Merged() = %v, Names() = %d; want %v, %d", got, w.Names(), want, len(images)-1)
	}
	for _, img := range images {
		name, err := layout.RuntimeName("", layout.Ref{Repo: img.Repo, Tag: img.Tag})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := w.names[name].config, configOf(t, c, img, arm64); got != want {
			t.Errorf("%s holds config %s, want the arm64 image's %s", name, got, want)
		}
	}
}
