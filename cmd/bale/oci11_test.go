package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
)

// urlsAllowEnv makes docker-registry (Distribution 2.8) accept manifests whose layers have
// urls: by default it refuses them ("invalid URL on layer") unless
// validation.manifests.urls.allow admits them. It reads its configuration from REGISTRY_*
// variables too, and testenv starts it with the test's environment.
const urlsAllowEnv = "REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW"

// oci11Target is where a check reads from with regctl: a registry or an OCI layout.
type oci11Target struct {
	name  string
	flags []string                              // regctl global flags
	ref   func(repo, tagOrDigest string) string // a manifest reference
	repo  func(repo string) string              // a repository reference, for blob get
}

// registryTarget reads the plain-HTTP registry at addr.
func registryTarget(name, addr string) oci11Target {
	return oci11Target{
		name:  name,
		flags: []string{"--host", "reg=" + addr + ",tls=disabled"},
		ref: func(repo, r string) string {
			if strings.HasPrefix(r, "sha256:") {
				return addr + "/" + repo + "@" + r
			}
			return addr + "/" + repo + ":" + r
		},
		repo: func(repo string) string { return addr + "/" + repo },
	}
}

// ocidirTarget reads the OCI layout at dir (regctl finds bale's "<repo>:<tag>" ref names by
// their ":<tag>" suffix; the corpus's tags are unique).
func ocidirTarget(name, dir string) oci11Target {
	return oci11Target{
		name: name,
		ref: func(_, r string) string {
			if strings.HasPrefix(r, "sha256:") {
				return "ocidir://" + dir + "@" + r
			}
			return "ocidir://" + dir + ":" + r
		},
		repo: func(string) string { return "ocidir://" + dir },
	}
}

// sha256Hex is the sha256 of b as a digest: computed here, never taken from bale.
func sha256Hex(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// checkOCI11 fetches, with regctl, every tag of c by tag, every manifest below it by digest
// and every config and layer, and compares the sha256 of the bytes with the corpus's digests
// (and the manifests' bytes with the corpus's own).
func checkOCI11(t *testing.T, tg oci11Target, c *imagetest.Corpus) {
	t.Helper()
	regctl := func(args ...string) []byte {
		t.Helper()
		return testenv.Regctl(t, "", append(slices.Clone(tg.flags), args...)...)
	}
	type key struct {
		repo string
		d    digest.Digest
	}
	done := map[key]bool{}
	manifest := func(repo, r string, want digest.Digest) {
		t.Helper()
		got := regctl("manifest", "get", "--format", "raw-body", tg.ref(repo, r))
		if d := sha256Hex(got); d != want || !bytes.Equal(got, c.Blobs[want]) {
			t.Errorf("%s: manifest %s of %s is %d bytes hashing to %s, want %s", tg.name, r, repo, len(got), d, want)
		}
	}
	for _, img := range c.Images {
		manifest(img.Repo, img.Tag, img.Digest)
		done[key{img.Repo, img.Digest}] = true
		for _, ch := range img.Children {
			if !done[key{img.Repo, ch}] {
				done[key{img.Repo, ch}] = true
				manifest(img.Repo, ch.String(), ch)
			}
		}
		blobs, err := c.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			if done[key{img.Repo, b}] {
				continue
			}
			done[key{img.Repo, b}] = true
			got := regctl("blob", "get", tg.repo(img.Repo), b.String())
			if d := sha256Hex(got); d != b {
				t.Errorf("%s: blob %s of %s is %d bytes hashing to %s", tg.name, b, img.Repo, len(got), d)
			}
		}
	}
}

// oci11Referrers runs regctl artifact list on oci11/app:v1 and returns an error unless it
// lists the index whose subject is that image (found through the referrers API, or the tag
// schema where the registry lacks the API).
func oci11Referrers(t *testing.T, tg oci11Target, c *imagetest.Corpus) error {
	t.Helper()
	var app, bundle imagetest.Image
	for _, img := range c.Images {
		switch img.Name() {
		case "oci11/app:v1":
			app = img
		case "oci11/app:bundle":
			bundle = img
		}
	}
	out := testenv.Regctl(t, "", append(slices.Clone(tg.flags), "artifact", "list", "--format", "body", tg.ref(app.Repo, app.Tag))...)
	var idx struct {
		Manifests []struct {
			Digest       digest.Digest
			ArtifactType string
		}
	}
	if err := json.Unmarshal(out, &idx); err != nil {
		return fmt.Errorf("%s: regctl artifact list: %w\n%s", tg.name, err, out)
	}
	for _, m := range idx.Manifests {
		if m.Digest == bundle.Digest && m.ArtifactType == imagetest.ArtifactTypeBundle {
			return nil
		}
	}
	return fmt.Errorf("%s: regctl artifact list %s does not list %s (%s):\n%s", tg.name, app.Name(), bundle.Digest, imagetest.ArtifactTypeBundle, out)
}

// checkOCI11Referrers fails the test unless oci11Referrers finds the referrer.
func checkOCI11Referrers(t *testing.T, tg oci11Target, c *imagetest.Corpus) {
	t.Helper()
	if err := oci11Referrers(t, tg, c); err != nil {
		t.Error(err)
	}
}

// checkOCI11Dir checks a skopeo dir tree file by file: manifest.json, <hex>.manifest.json of
// every manifest below an index and <hex> of every blob, each hashing to the corpus's digest;
// skopeo reads each image's manifest.
func checkOCI11Dir(t *testing.T, root string, c *imagetest.Corpus) {
	t.Helper()
	for _, img := range c.Images {
		dir := filepath.Join(root, filepath.FromSlash(img.Repo)+":"+img.Tag)
		files := map[string]digest.Digest{"manifest.json": img.Digest}
		for _, ch := range img.Children {
			files[ch.Encoded()+".manifest.json"] = ch
		}
		blobs, err := c.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			files[b.Encoded()] = b
		}
		for name, want := range files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("dir tree: %v", err)
				continue
			}
			if got := sha256Hex(b); got != want {
				t.Errorf("dir tree: %s/%s hashes to %s, want %s", dir, name, got, want)
			}
		}
		raw := testenv.Skopeo(t, "inspect", "--raw", "dir:"+dir)
		if got := sha256Hex(raw); got != img.Digest {
			t.Errorf("skopeo inspect --raw dir:%s: %s, want %s", dir, got, img.Digest)
		}
	}
}

// checkOCI11List checks `bale list --json` of loc: the images of c but the referrers tag
// refs, which is listed under its subject's image.
func checkOCI11List(t *testing.T, loc string, c *imagetest.Corpus, refs imagetest.Image) {
	t.Helper()
	var images []imagetest.Image
	for _, img := range c.Images {
		if img.Name() != refs.Name() {
			images = append(images, img)
		}
	}
	checkList(t, loc, images)
	var out struct {
		Images []struct {
			Repo, Tag, Digest string
			Referrers         []struct{ Tag, Digest, Subject string }
		}
	}
	res := mustBale(t, "list", "--json", loc)
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("bale list --json %s: %v", loc, err)
	}
	subject, _, _ := layout.ParseReferrerTag(refs.Tag)
	for _, im := range out.Images {
		if im.Repo != refs.Repo || im.Digest != subject.String() {
			continue
		}
		for _, r := range im.Referrers {
			if r.Tag == refs.Tag && r.Digest == refs.Digest.String() {
				return
			}
		}
		t.Errorf("bale list %s: %s:%s lists referrers %+v, not %s:%s (%s)", loc, im.Repo, im.Tag, im.Referrers, refs.Repo, refs.Tag, refs.Digest)
		return
	}
	t.Errorf("bale list %s: no image %s@%s", loc, refs.Repo, subject)
}

// oci11Source pushes the OCI11 corpus with regctl (from an OCI layout, the non-distributable
// layer included) into a new docker-registry and returns it with the corpus as that registry
// holds it: regctl also keeps the OCI 1.1 referrers tag schema there, since Distribution 2.8
// has no referrers API: oci11/app:sha256-<hex of app:v1> lists the index whose subject it is.
func oci11Source(t *testing.T) (*testenv.Registry, *imagetest.Corpus, imagetest.Image) {
	t.Helper()
	c := imagetest.OCI11()
	dir := t.TempDir()
	if err := c.WriteOCILayout(dir); err != nil {
		t.Fatal(err)
	}
	src := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "src"))
	for _, img := range c.Images {
		testenv.Regctl(t, src.Addr, "image", "copy", "--include-external", "ocidir://"+dir+":"+img.Tag, src.Addr+"/"+img.Repo+":"+img.Tag)
	}
	var app, bundle imagetest.Image
	for _, img := range c.Images {
		switch img.Name() {
		case "oci11/app:v1":
			app = img
		case "oci11/app:bundle":
			bundle = img
		}
	}
	tag := layout.ReferrersTag(app.Digest)
	if !slices.Contains(src.Tags(t, app.Repo), tag) {
		t.Fatalf("regctl kept no referrers tag %s:%s for the index whose subject is %s", app.Repo, tag, app.Digest)
	}
	raw := testenv.Regctl(t, "", "--host", "reg="+src.Addr+",tls=disabled", "manifest", "get", "--format", "raw-body", src.Addr+"/"+app.Repo+":"+tag)
	if !bytes.Contains(raw, []byte(bundle.Digest)) {
		t.Fatalf("the referrers tag %s does not list %s:\n%s", tag, bundle.Digest, raw)
	}
	all := &imagetest.Corpus{Images: slices.Clone(c.Images), Blobs: maps.Clone(c.Blobs)}
	d := sha256Hex(raw)
	all.Blobs[d] = raw
	refs := imagetest.Image{Repo: app.Repo, Tag: tag, Digest: d, MediaType: imagetest.MediaTypeOCIIndex,
		Children: append([]digest.Digest{bundle.Digest}, bundle.Children...)}
	all.Images = append(all.Images, refs)
	return src, all, refs
}

// TestOCI11RoundTrip: every OCI 1.1 shape of imagetest.OCI11 (an artifact with the empty
// config and data fields, a Helm chart, zstd and uncompressed layers, a non-distributable
// layer with urls, custom fields, an index with artifactType and subject, indexes three
// deep), pushed by regctl into docker-registry, goes byte for byte through pack (from
// docker:// and from registry:), unpack (registry:, dir:, oci:), copy (registry: to oci:),
// serve and push; regctl reads every manifest and blob back from each.
func TestOCI11RoundTrip(t *testing.T) {
	testenv.Need(t, "docker-registry")
	testenv.Need(t, "skopeo")
	testenv.NeedTool(t, "regctl")
	t.Setenv(urlsAllowEnv, `["^https?://"]`)
	src, c, refs := oci11Source(t)
	checkOCI11(t, registryTarget("source registry", src.Addr), c)
	checkOCI11Referrers(t, registryTarget("source registry", src.Addr), c)
	work := t.TempDir()

	bundle := filepath.Join(work, "oci11.tar.zst")
	mustBale(t, "pack", "--src-tls-verify=false", "-o", bundle, "docker://"+src.Addr)
	checkOCI11List(t, bundle, c, refs)
	checkListHead(t, bundle)
	fromStorage := filepath.Join(work, "storage.tar.zst")
	mustBale(t, "pack", "-o", fromStorage, "registry:"+src.Root)
	checkOCI11List(t, fromStorage, c, refs)
	b1, _ := os.ReadFile(bundle)
	b2, _ := os.ReadFile(fromStorage)
	if !bytes.Equal(b1, b2) {
		t.Errorf("packed from docker://%s and from its storage, the bundles differ (%d and %d bytes)", src.Addr, len(b1), len(b2))
	}
	mustBale(t, "verify", bundle)

	x, y, z := filepath.Join(work, "x"), filepath.Join(work, "y"), filepath.Join(work, "z")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, "--to", "oci:"+z, bundle)
	for _, loc := range []string{"registry:" + x, "dir:" + y, "oci:" + z} {
		mustBale(t, "verify", loc)
		checkOCI11List(t, loc, c, refs)
	}
	// Read back, the dir tree and the OCI layout pack into the same bundle.
	for _, loc := range []string{"dir:" + y, "oci:" + z} {
		again := filepath.Join(t.TempDir(), "again.tar.zst")
		mustBale(t, "pack", "-o", again, loc)
		if b3, _ := os.ReadFile(again); !bytes.Equal(b1, b3) {
			t.Errorf("packed from %s, the bundle differs from the one it was unpacked from (%d and %d bytes)", loc, len(b3), len(b1))
		}
	}
	t.Run("unpacked registry storage", func(t *testing.T) {
		reg := testenv.StartRegistry(t, x)
		checkOCI11(t, registryTarget("docker-registry serving the unpacked storage", reg.Addr), c)
		checkOCI11Referrers(t, registryTarget("docker-registry serving the unpacked storage", reg.Addr), c)
	})
	t.Run("unpacked dir tree", func(t *testing.T) { checkOCI11Dir(t, y, c) })
	t.Run("unpacked OCI layout", func(t *testing.T) { checkOCI11(t, ocidirTarget("unpacked OCI layout", z), c) })
	t.Run("serve", func(t *testing.T) {
		tg := registryTarget("bale serve", startServe(t, bundle).Addr)
		checkOCI11(t, tg, c)
		t.Run("referrers API", func(t *testing.T) {
			// A tagged manifest whose subject is the image (oci11/app:bundle) is a referrer:
			// serve's referrers API lists it, as the spec says.
			if err := oci11Referrers(t, tg, c); err != nil {
				t.Error(err)
			}
		})
	})
	t.Run("copy registry to oci", func(t *testing.T) {
		w := filepath.Join(t.TempDir(), "w")
		mustBale(t, "copy", "registry:"+x, "oci:"+w)
		mustBale(t, "verify", "oci:"+w)
		checkOCI11List(t, "oci:"+w, c, refs)
		checkOCI11(t, ocidirTarget("OCI layout copied from registry storage", w), c)
	})
	t.Run("push", func(t *testing.T) {
		dst := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "dst"))
		mustBale(t, "push", "--dest-tls-verify=false", bundle, "docker://"+dst.Addr)
		checkOCI11(t, registryTarget("registry pushed to", dst.Addr), c)
		checkOCI11Referrers(t, registryTarget("registry pushed to", dst.Addr), c)
	})
	t.Run("platform descends three indexes", func(t *testing.T) {
		var nested imagetest.Image
		for _, img := range c.Images {
			if img.Repo == "oci11/nested" {
				nested = img
			}
		}
		arm64 := nested.Children[len(nested.Children)-1] // l2, l3, amd64, arm64
		list := filepath.Join(t.TempDir(), "nested.list")
		if err := os.WriteFile(list, []byte(nested.Name()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want := []imagetest.Image{{Repo: nested.Repo, Tag: nested.Tag, Digest: arm64, MediaType: imagetest.MediaTypeOCIManifest}}
		for _, from := range []string{"docker://" + src.Addr, "registry:" + src.Root} {
			out := filepath.Join(t.TempDir(), "arm64.tar.zst")
			mustBale(t, "pack", "--src-tls-verify=false", "--platform", "linux/arm64", "--images", list, "-o", out, from)
			checkList(t, out, want)
		}
	})
}

// TestOCI11SHA512Refused: bale stores sha256 content only; an image whose manifest names a
// layer by sha512 is refused at pack, naming that digest and the image, with the exit code
// the CLI gives content it does not carry, and nothing is written. The image comes as an OCI
// layout holding blobs/sha512/<hex>, and, pushed there by regctl, from docker-registry (which
// takes sha512 blobs) and from that registry's storage.
func TestOCI11SHA512Refused(t *testing.T) {
	work := t.TempDir()
	src := filepath.Join(work, "layout")
	img, err := imagetest.WriteSHA512Layout(src)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, args ...string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out", "b.tar.zst")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		res := bale(t, append([]string{"pack", "-o", out}, args...)...)
		if want := exitCode(fmt.Errorf("x: %w", layout.ErrUnsupported)); res.code != want || res.code == exitOK {
			t.Errorf("bale pack %s: exit %d, want %d", strings.Join(args, " "), res.code, want)
		}
		for _, want := range []string{string(img.Layer), img.Name, "only sha256 is supported"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("bale pack %s: the error does not name %s:\n%s", strings.Join(args, " "), want, res.stderr)
			}
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Errorf("files left behind: %v", ents)
		}
		t.Logf("bale pack %s: exit %d: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	refused(t, "oci:"+src)
	t.Run("registry", func(t *testing.T) {
		testenv.Need(t, "docker-registry")
		testenv.NeedTool(t, "regctl")
		reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "sha512"))
		tag := img.Name[strings.LastIndex(img.Name, ":")+1:]
		testenv.Regctl(t, reg.Addr, "image", "copy", "ocidir://"+src+":"+tag, reg.Addr+"/"+img.Name)
		raw := testenv.Regctl(t, "", "--host", "reg="+reg.Addr+",tls=disabled", "manifest", "get", "--format", "raw-body", reg.Addr+"/"+img.Name)
		if sha256Hex(raw) != img.Manifest {
			t.Fatalf("docker-registry holds %s as %s, want %s", img.Name, sha256Hex(raw), img.Manifest)
		}
		refused(t, "--src-tls-verify=false", "docker://"+reg.Addr)
		refused(t, "registry:"+reg.Root)
	})
}
