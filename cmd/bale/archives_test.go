package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
)

// runtimeName is what a runtime calls img of the corpus (docker.io/library/busybox:1.36.1).
func runtimeName(t *testing.T, repo, tag string) string {
	t.Helper()
	n, err := layout.RuntimeName("", layout.Ref{Repo: repo, Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// archivesOf packs the fixture into a bundle and exports it, with bale copy from the bundle,
// as an oci-archive and a docker-archive (linux/amd64) in dir.
func archivesOf(t *testing.T, f *fixture, dir string) (bundle, oci, docker string) {
	t.Helper()
	bundle, oci, docker = filepath.Join(dir, "release.tar.zst"), filepath.Join(dir, "images.tar"), filepath.Join(dir, "docker.tar")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+f.registry)
	mustBale(t, "copy", "-q", bundle, "oci-archive:"+oci)
	mustBale(t, "copy", "-q", "--platform", "linux/amd64", bundle, "docker-archive:"+docker)
	return bundle, oci, docker
}

// wantNames maps each runtime name of the corpus to the digest runtimes should list for it:
// the registry's for an oci-archive, or what bale lists for a docker-archive.
func wantNames(t *testing.T, images []listed) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range images {
		out[runtimeName(t, l.Repo, l.Tag)] = l.Digest
	}
	return out
}

// checkCtr checks that containerd lists exactly want (name -> digest), every image complete.
func checkCtr(t *testing.T, what string, got map[string]testenv.CtrImage, want map[string]string) {
	t.Helper()
	for name, d := range want {
		img, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: containerd lacks %s (has %v)", what, name, got)
		case img.Digest != d:
			t.Errorf("%s: containerd has %s at %s, want %s", what, name, img.Digest, d)
		case !strings.HasPrefix(img.Status, "complete"):
			t.Errorf("%s: ctr images check: %s is %q", what, name, img.Status)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: containerd lists %d images, want %d", what, len(got), len(want))
	}
}

// TestArchivesContainerd imports bale's archives into a real containerd, as k3s and RKE2 do
// from their images directory: a docker-archive (names, and the digest bale gives each image,
// which containerd makes the same way) then an oci-archive of every tag of the corpus, which
// names each image as pods ask for it with its registry digest, complete.
func TestArchivesContainerd(t *testing.T) {
	f := getFixture(t)
	ctd := testenv.StartContainerd(t)
	_, oci, docker := archivesOf(t, f, t.TempDir())

	ctd.Ctr(t, "-n", "k8s.io", "images", "import", "--all-platforms", "--snapshotter", "native", docker)
	checkCtr(t, "docker-archive", ctd.CtrImages(t, "k8s.io"), wantNames(t, listJSON(t, "docker-archive:"+docker)))

	ctd.Ctr(t, "-n", "k8s.io", "images", "import", "--all-platforms", "--snapshotter", "native", oci)
	want := map[string]string{}
	for _, img := range f.corpus.Images {
		want[runtimeName(t, img.Repo, img.Tag)] = string(img.Digest)
	}
	checkCtr(t, "oci-archive", ctd.CtrImages(t, "k8s.io"), want)

	// An SBOM travels in the oci-archive with its image, and the import ignores it (an image
	// made of it would fail to unpack, failing the import).
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	sbom := writeReferrerTree(t, f, tree)
	signed := filepath.Join(dir, "signed.tar")
	mustBale(t, "copy", "-q", "dir:"+tree, "oci-archive:"+signed)
	ctd.Ctr(t, "-n", "signed", "images", "import", "--all-platforms", "--snapshotter", "native", signed)
	busybox := runtimeName(t, "busybox", "1.36.1")
	checkCtr(t, "signed oci-archive", ctd.CtrImages(t, "signed"), map[string]string{busybox: want[busybox]})
	back := filepath.Join(dir, "back")
	mustBale(t, "copy", "-q", "oci-archive:"+signed, "oci:"+back)
	if !strings.Contains(string(readFile(t, filepath.Join(back, "index.json"))), string(sbom)) {
		t.Errorf("the SBOM %s did not travel through the oci-archive", sbom)
	}
}

// TestArchivesPodmanSkopeo: podman load of a docker-archive lists each image with its image
// id (the config digest, as in the registry); skopeo reads both archives.
func TestArchivesPodmanSkopeo(t *testing.T) {
	f := getFixture(t)
	pm := testenv.NewPodman(t)
	dir := t.TempDir()
	_, oci, docker := archivesOf(t, f, dir)
	ids := imageIDs(t, f.corpus, layout.Platform{OS: "linux", Architecture: "amd64"})

	out := pm.Run(t, "load", "-i", docker)
	for name := range ids {
		if !strings.Contains(out, "Loaded image: "+name+"\n") && !strings.Contains(out, name) {
			t.Errorf("podman load did not name %s:\n%s", name, out)
		}
	}
	var images []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := json.Unmarshal([]byte(pm.Run(t, "images", "--format", "json")), &images); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, img := range images {
		for _, n := range img.Names {
			got[n] = "sha256:" + img.ID
		}
	}
	for name, id := range ids {
		if got[name] != id {
			t.Errorf("podman: %s has id %s, want %s", name, got[name], id)
		}
	}

	for _, img := range f.corpus.Images {
		name := runtimeName(t, img.Repo, img.Tag)
		cfg := testenv.Skopeo(t, "inspect", "--raw", "--config", "docker-archive:"+docker+":"+name)
		if digest.FromBytes(cfg).String() != ids[name] {
			t.Errorf("skopeo docker-archive:%s: config %s, want %s", name, digest.FromBytes(cfg), ids[name])
		}
		if img.MediaType != imagetest.MediaTypeOCIManifest && img.MediaType != imagetest.MediaTypeOCIIndex {
			continue // skopeo 1.9.3 reads only OCI manifests out of an OCI layout (docs/layouts.md)
		}
		raw := testenv.Skopeo(t, "inspect", "--raw", "oci-archive:"+oci+":"+name)
		if digest.FromBytes(raw) != img.Digest {
			t.Errorf("skopeo oci-archive:%s: %s, want %s", name, digest.FromBytes(raw), img.Digest)
		}
		testenv.Skopeo(t, "copy", "--all", "oci-archive:"+oci+":"+name, "dir:"+filepath.Join(dir, strings.ReplaceAll(img.Repo, "/", "_")+"-"+img.Tag))
	}
}

// imageIDs maps each runtime name of the corpus to its image id for platform p.
func imageIDs(t *testing.T, c *imagetest.Corpus, p layout.Platform) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, img := range c.Images {
		m, err := layout.ParseManifest(c.Blobs[img.Digest])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			if p.Matches(d.Platform) {
				m, _ = layout.ParseManifest(c.Blobs[d.Digest])
				break
			}
		}
		out[runtimeName(t, img.Repo, img.Tag)] = m.Config.Digest.String()
	}
	return out
}

// TestVendorDockerArchive: a docker-archive that skopeo writes (a vendor's docker save) is
// packed; after unpack, docker-registry serves it with the same image id, and so does bale
// serve from the bundle; packed twice, it gives the same bundle.
func TestVendorDockerArchive(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	vendor := filepath.Join(dir, "vendor.tar")
	src := filepath.Join(f.tree, "kubesphere/kube-apiserver:v1.20.6")
	testenv.Skopeo(t, "copy", "dir:"+src, "docker-archive:"+vendor+":vendor.example/kubesphere/kube-apiserver:v1.20.6")
	cfg := testenv.Skopeo(t, "inspect", "--raw", "--config", "docker-archive:"+vendor)
	id := digest.FromBytes(cfg)

	bundle := filepath.Join(dir, "vendor.tar.zst")
	mustBale(t, "pack", "-o", bundle, "docker-archive:"+vendor)
	again := filepath.Join(dir, "again.tar.zst")
	mustBale(t, "pack", "-o", again, "docker-archive:"+vendor)
	if b1, b2 := readFile(t, bundle), readFile(t, again); !bytes.Equal(b1, b2) {
		t.Errorf("the same docker-archive packed twice gave different bundles")
	}
	ls := listJSON(t, bundle)
	if len(ls) != 1 || ls[0].Repo != "kubesphere/kube-apiserver" || ls[0].Tag != "v1.20.6" {
		t.Fatalf("bale list: %+v", ls)
	}

	root := filepath.Join(dir, "registry")
	mustBale(t, "unpack", "--to", "registry:"+root, bundle)
	for _, reg := range []*testenv.Registry{testenv.StartRegistry(t, root), startServe(t, bundle)} {
		ref := reg.Ref("kubesphere/kube-apiserver", "v1.20.6")
		served := testenv.Skopeo(t, append(append([]string{"inspect", "--raw", "--config"}, reg.SkopeoFlags("")...), ref)...)
		if got := digest.FromBytes(served); got != id {
			t.Errorf("%s serves image id %s, want the vendor's %s", ref, got, id)
		}
		testenv.Skopeo(t, append(append([]string{"copy"}, reg.SkopeoFlags("src-")...), ref, "dir:"+filepath.Join(t.TempDir(), "pulled"))...)
	}
}

// TestBundleCopyToArchive: a base and its patch, read straight from the files, export the
// patched release (the removed tag gone), or a subset of one platform.
func TestBundleCopyToArchive(t *testing.T) {
	r := getReleases(t)
	dir := t.TempDir()
	base, patch := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-q", "-o", base, "registry:"+r.root[0])
	mustBale(t, "pack", "-q", "--base", base, "--remove-absent-tags", "-o", patch, "registry:"+r.root[1])

	all := filepath.Join(dir, "all.tar.gz")
	mustBale(t, "copy", "-q", base, patch, "oci-archive:"+all)
	checkList(t, "oci-archive:"+all, dockerNamed(r.corpus[1].Images))

	list := writeFile(t, dir, "edge.list", "rel/app-4:v1\nrel/multi:v1\nrel/new:v1\n")
	subset := filepath.Join(dir, "subset.tar.zst")
	mustBale(t, "copy", "-q", "--images", list, "--platform", "linux/arm64", base, patch, "oci-archive:"+subset)
	var want []string
	for _, img := range r.corpus[1].Images {
		switch img.Repo {
		case "rel/app-4", "rel/new":
			want = append(want, fmt.Sprintf("docker.io/%s:%s %s", img.Repo, img.Tag, img.Digest))
		case "rel/multi":
			want = append(want, fmt.Sprintf("docker.io/%s:%s %s", img.Repo, img.Tag, img.Children[1]))
		}
	}
	var got []string
	for _, l := range listJSON(t, "oci-archive:"+subset) {
		got = append(got, fmt.Sprintf("docker.io/%s:%s %s", l.Repo, l.Tag, l.Digest))
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("subset:\n got %v\nwant %v", got, want)
	}

	if res := bale(t, "copy", patch, "oci-archive:"+filepath.Join(dir, "alone.tar")); res.code != exitNotFound || !strings.Contains(res.stderr, "give its base first") {
		t.Errorf("a patch alone: exit %d\n%s", res.code, res.stderr)
	}
}

// dockerNamed is images as read back from an archive: names that Docker puts under library/
// (a one-component repository) keep it, so busybox:1.36.1 and library/busybox:1.36.1 are one.
func dockerNamed(images []imagetest.Image) []imagetest.Image {
	var out []imagetest.Image
	seen := map[string]bool{}
	for _, img := range images {
		if !strings.Contains(img.Repo, "/") {
			img.Repo = "library/" + img.Repo
		}
		if !seen[img.Name()] {
			seen[img.Name()] = true
			out = append(out, img)
		}
	}
	return out
}

// TestArchiveDamagedInput: a damaged bundle or docker-archive gives a clear error and no
// output, not even a temporary file; a docker-archive names the referrers it leaves out.
func TestArchiveDamagedInput(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	bundle, _, docker := archivesOf(t, f, dir)

	b := readFile(t, bundle)
	b[len(b)*2/3] ^= 0xff
	damaged := filepath.Join(dir, "damaged.tar.zst")
	os.WriteFile(damaged, b, 0o644)
	out := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(out, 0o755)
	res := bale(t, "copy", damaged, "oci-archive:"+filepath.Join(out, "x.tar"))
	if res.code != exitInvalid || !strings.Contains(res.stderr, damaged) {
		t.Errorf("copy of a damaged bundle: exit %d\n%s", res.code, res.stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed copy left %v", ents)
	}

	// A layer of the docker-archive changed: bale pack names the member and writes nothing.
	d := readFile(t, docker)
	i := bytes.Index(d, []byte("kube-apiserver is a generated test image")) // a file of a layer
	if i < 0 {
		t.Fatal("no kube-apiserver layer in the docker-archive")
	}
	d[i] ^= 0x20
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, d, 0o644)
	res = bale(t, "pack", "-o", filepath.Join(out, "x.tar.zst"), "docker-archive:"+bad)
	if res.code != exitInvalid || !strings.Contains(res.stderr, "member ") || !strings.Contains(res.stderr, "digest mismatch") {
		t.Errorf("pack of a damaged docker-archive: exit %d\n%s", res.code, res.stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed pack left %v", ents)
	}

	// Referrers: a docker-archive cannot hold them, and says which it left out.
	tree := filepath.Join(dir, "tree")
	sbom := writeReferrerTree(t, f, tree)
	res = mustBale(t, "copy", "dir:"+tree, "docker-archive:"+filepath.Join(dir, "signed-docker.tar"))
	if !strings.Contains(res.stderr, "left out 1") || !strings.Contains(res.stderr, "busybox@"+string(sbom)) {
		t.Errorf("copy to a docker-archive did not name the referrer it left out:\n%s", res.stderr)
	}
}

// writeReferrerTree writes busybox:1.36.1 of the fixture's tree and an SBOM whose subject it
// is (busybox@sha256:<hex>/) into a new dir tree at root, and returns the SBOM's digest.
func writeReferrerTree(t *testing.T, f *fixture, root string) digest.Digest {
	t.Helper()
	var img imagetest.Image
	for _, i := range f.corpus.Images {
		if i.Name() == "busybox:1.36.1" {
			img = i
		}
	}
	if _, err := f.corpus.WriteDir(root, img); err != nil {
		t.Fatal(err)
	}
	empty, body := []byte("{}"), []byte(`{"spdxVersion":"SPDX-2.3"}`)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},`+
		`"layers":[{"mediaType":"application/spdx+json","digest":%q,"size":%d}],`+
		`"subject":{"mediaType":%q,"digest":%q,"size":%d}}`,
		digest.FromBytes(empty), digest.FromBytes(body), len(body), img.MediaType, img.Digest, len(f.corpus.Blobs[img.Digest]))
	d := digest.FromString(m)
	dir := filepath.Join(root, "busybox@"+string(d))
	os.MkdirAll(dir, 0o755)
	for name, b := range map[string][]byte{"manifest.json": []byte(m), "version": []byte(imagetest.DirVersion),
		digest.FromBytes(empty).Encoded(): empty, digest.FromBytes(body).Encoded(): body} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestUnpackToArchives: unpack --to oci-archive: and docker-archive: (with registry storage or
// alone, staged beside them); a patch without its base writes nothing at all.
func TestUnpackToArchives(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "release.tar.zst")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+f.registry)
	out := filepath.Join(dir, "out")
	mustBale(t, "unpack", "-q", "--to", "oci-archive:"+filepath.Join(out, "images.tar.zst"), "--to", "docker-archive:"+filepath.Join(out, "docker.tar"), bundle)
	checkList(t, "oci-archive:"+filepath.Join(out, "images.tar.zst"), dockerNamed(f.corpus.Images))
	if n := len(listJSON(t, "docker-archive:"+filepath.Join(out, "docker.tar"))); n != len(f.corpus.Images)-1 {
		t.Errorf("the docker-archive holds %d images, want %d (busybox and library/busybox are one name)", n, len(f.corpus.Images)-1)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 2 {
		t.Errorf("unpack left %v beside the archives", ents)
	}

	r := getReleases(t)
	base, patch := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-q", "-o", base, "registry:"+r.root[0])
	mustBale(t, "pack", "-q", "--base", base, "-o", patch, "registry:"+r.root[1])
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	if res := bale(t, "unpack", "--to", "oci-archive:"+filepath.Join(empty, "x.tar"), patch); res.code != exitNotFound {
		t.Errorf("unpack of a patch alone into an archive: exit %d\n%s", res.code, res.stderr)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("a failed unpack left %v", ents)
	}
}
