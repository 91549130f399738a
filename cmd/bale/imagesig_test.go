package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// imageSigSource is docker-registry 2.8 holding four images signed by the real cosign: one
// by the tag scheme (.sig), a multi-arch one in the sigstore bundle format (an OCI 1.1
// referrer), one unsigned and one signed by another key.
type imageSigSource struct {
	root                      string
	key, other                *testenv.CosignKey
	legacy, bundled, unsigned imagetest.Image
	otherKey                  imagetest.Image
}

func newImageSigSource(t *testing.T) *imageSigSource {
	t.Helper()
	testenv.Need(t, "skopeo")
	testenv.NeedTool(t, "cosign")
	s := &imageSigSource{root: filepath.Join(t.TempDir(), "src")}
	reg := testenv.StartRegistry(t, s.root)
	c := imagetest.Standard()
	byName := map[string]imagetest.Image{}
	for _, img := range c.Images {
		byName[img.Name()] = img
	}
	s.legacy, s.bundled = byName["kubesphere/kube-apiserver:v1.20.6"], byName["multiarch/pause:3.2"]
	s.unsigned, s.otherKey = byName["kubesphere/kube-proxy:v1.20.6"], byName["kubesphere/kube-controller-manager:v1.20.6"]
	dir := t.TempDir()
	for _, img := range []imagetest.Image{s.legacy, s.bundled, s.unsigned, s.otherKey} {
		if img.Repo == "" {
			t.Fatal("the standard corpus lacks an image this test signs")
		}
		p, err := c.WriteDir(dir, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	s.key, s.other = testenv.NewCosignKey(t), testenv.NewCosignKey(t)
	s.key.Sign(t, reg.Ref(s.legacy.Repo, string(s.legacy.Digest)))
	s.key.SignNewBundle(t, reg.Ref(s.bundled.Repo, string(s.bundled.Digest)))
	s.other.Sign(t, reg.Ref(s.otherKey.Repo, string(s.otherKey.Digest)))
	// cosign itself accepts what the test expects bale to accept, and refuses the others.
	if err := s.key.VerifyNewBundle(t, reg.Ref(s.bundled.Repo, s.bundled.Tag)); err != nil {
		t.Fatalf("cosign refuses the new-format signature: %v", err)
	}
	if err := s.key.Verify(t, reg.Ref(s.otherKey.Repo, s.otherKey.Tag)); err == nil {
		t.Fatal("cosign accepts the other key's signature with the test key")
	}
	return s
}

// list writes an images list naming imgs.
func imageList(t *testing.T, imgs ...imagetest.Image) string {
	var b strings.Builder
	for _, img := range imgs {
		b.WriteString(img.Name() + "\n")
	}
	return writeFile(t, t.TempDir(), "images.list", b.String())
}

// wantRefused checks that res exited 6 naming exactly the images bad among all.
func wantRefused(t *testing.T, what string, res runResult, all, bad []imagetest.Image) {
	t.Helper()
	t.Logf("%s:\n%s", what, res.stderr)
	if res.code != exitUnsigned {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, res.code, exitUnsigned, res.stdout, res.stderr)
	}
	for _, img := range all {
		named := strings.Contains(res.stderr, img.Name()+" (")
		if want := containsImage(bad, img); named != want {
			t.Errorf("%s: %s named as unsigned: %v, want %v\nstderr:\n%s", what, img.Name(), named, want, res.stderr)
		}
	}
}

func containsImage(imgs []imagetest.Image, img imagetest.Image) bool {
	for _, i := range imgs {
		if i.Name() == img.Name() {
			return true
		}
	}
	return false
}

func TestImageSignatures(t *testing.T) {
	s := newImageSigSource(t)
	all := []imagetest.Image{s.legacy, s.bundled, s.unsigned, s.otherKey}
	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "all.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+s.root)
	signedBundle := filepath.Join(tmp, "signed.tar.zst")
	mustBale(t, "pack", "--image-key", s.key.PublicKey, "--images", imageList(t, s.legacy, s.bundled), "-o", signedBundle, "registry:"+s.root)

	t.Run("verify", func(t *testing.T) {
		res := mustBale(t, "verify", "--image-key", s.key.PublicKey, signedBundle)
		if !strings.Contains(res.stdout, "OK") {
			t.Errorf("verify of the signed images: %s", res.stdout)
		}
		wantRefused(t, "verify --image-key of every image", bale(t, "verify", "--image-key", s.key.PublicKey, bundle), all, []imagetest.Image{s.unsigned, s.otherKey})
		// Either key may have signed: only the unsigned image is left.
		wantRefused(t, "verify with both keys", bale(t, "verify", "--image-key", s.key.PublicKey, "--image-key", s.other.PublicKey, bundle), all, []imagetest.Image{s.unsigned})
		// The key that signed the new-format image only: the tag-scheme signatures fail too.
		wantRefused(t, "verify with the other key", bale(t, "verify", "--image-key", s.other.PublicKey, signedBundle), all, []imagetest.Image{s.legacy, s.bundled})
		wantRefused(t, "verify registry storage", bale(t, "verify", "--image-key", s.key.PublicKey, "registry:"+s.root), all, []imagetest.Image{s.unsigned, s.otherKey})
	})
	t.Run("refused runs write nothing", func(t *testing.T) {
		site := filepath.Join(t.TempDir(), "site")
		wantRefused(t, "unpack", bale(t, "unpack", "--image-key", s.key.PublicKey, "--to", "registry:"+site, "--to", "dir:"+site+"-dir", bundle), all, []imagetest.Image{s.unsigned, s.otherKey})
		out := filepath.Join(t.TempDir(), "out")
		wantRefused(t, "copy", bale(t, "copy", "--image-key", s.key.PublicKey, bundle, "oci:"+out), all, []imagetest.Image{s.unsigned, s.otherKey})
		wantRefused(t, "serve", bale(t, "serve", "--addr", "127.0.0.1:0", "--image-key", s.key.PublicKey, bundle), all, []imagetest.Image{s.unsigned, s.otherKey})
		pushed := filepath.Join(t.TempDir(), "pushed")
		dst := testenv.StartRegistry(t, pushed)
		wantRefused(t, "push", bale(t, "push", "--image-key", s.key.PublicKey, "--dest-tls-verify=false", bundle, "docker://"+dst.Addr), all, []imagetest.Image{s.unsigned, s.otherKey})
		for _, p := range []string{site, site + "-dir", out, filepath.Join(pushed, "docker/registry/v2/repositories")} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused run (%v)", p, err)
			}
		}
		mustBale(t, "unpack", "--image-key", s.key.PublicKey, "--to", "registry:"+site, signedBundle)
		mustBale(t, "copy", "--image-key", s.key.PublicKey, "--images", imageList(t, s.legacy, s.bundled), bundle, "oci:"+out)
	})
	t.Run("pack", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar.zst")
		wantRefused(t, "pack", bale(t, "pack", "--image-key", s.key.PublicKey, "-o", out, "registry:"+s.root), all, []imagetest.Image{s.unsigned, s.otherKey})
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("pack refused, yet %s exists (%v)", out, err)
		}
		res := bale(t, "pack", "--keep-going", "--image-key", s.key.PublicKey, "-o", out, "registry:"+s.root)
		if res.code != exitPartial || !strings.Contains(res.stderr, s.unsigned.Name()) || !strings.Contains(res.stderr, s.otherKey.Name()) {
			t.Fatalf("pack --keep-going: exit %d, want %d naming %s and %s:\n%s", res.code, exitPartial, s.unsigned.Name(), s.otherKey.Name(), res.stderr)
		}
		var listed struct{ Images []struct{ Repo, Tag string } }
		if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", out).stdout), &listed); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, im := range listed.Images {
			names = append(names, im.Repo+":"+im.Tag)
		}
		if got := strings.Join(names, " "); !strings.Contains(got, s.legacy.Name()) || !strings.Contains(got, s.bundled.Name()) || len(names) != 2 {
			t.Errorf("pack --keep-going packed %s, want %s and %s", got, s.legacy.Name(), s.bundled.Name())
		}
		mustBale(t, "verify", "--image-key", s.key.PublicKey, out)
	})
	t.Run("tampered", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			img  imagetest.Image
			flip func(t *testing.T, dir string)
		}{
			{"tag-scheme signature annotation", s.legacy, flipSimpleSigning},
			{"sigstore bundle signature", s.bundled, flipBundle},
		} {
			t.Run(tt.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "oci")
				mustBale(t, "copy", "--images", imageList(t, tt.img), signedBundle, "oci:"+dir)
				mustBale(t, "verify", "--image-key", s.key.PublicKey, "oci:"+dir) // before: signed
				tt.flip(t, dir)
				mustBale(t, "verify", "oci:"+dir) // still a sound layout
				wantRefused(t, "verify after the flip", bale(t, "verify", "--image-key", s.key.PublicKey, "oci:"+dir), all, []imagetest.Image{tt.img})
				out := filepath.Join(t.TempDir(), "out")
				wantRefused(t, "copy after the flip", bale(t, "copy", "--image-key", s.key.PublicKey, "oci:"+dir, "registry:"+out), all, []imagetest.Image{tt.img})
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("copy refused, yet %s exists (%v)", out, err)
				}
			})
		}
	})
}

// ociEntry is one manifest of an OCI layout's index.json, kept whole.
type ociEntry = map[string]any

// rewriteManifest replaces, in the OCI layout dir, the first manifest of index.json for which
// edit returns true (having changed it) by the edited one: a new blob, the entry pointed at it,
// the old blob removed so that no referrers index finds it.
func rewriteManifest(t *testing.T, dir string, edit func(m map[string]any) bool) {
	t.Helper()
	idxPath := filepath.Join(dir, "index.json")
	var idx map[string]any
	readJSON(t, idxPath, &idx)
	for _, e := range idx["manifests"].([]any) {
		entry := e.(ociEntry)
		old := digest.Digest(entry["digest"].(string))
		var m map[string]any
		readJSON(t, blobPath(dir, old), &m)
		if !edit(m) {
			continue
		}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d := writeBlob(t, dir, raw)
		entry["digest"], entry["size"] = d.String(), len(raw)
		if ann, _ := entry["annotations"].(map[string]any); ann != nil { // a referrer's name, <repo>@<digest>
			if name, _ := ann["org.opencontainers.image.ref.name"].(string); strings.HasSuffix(name, "@"+old.String()) {
				ann["org.opencontainers.image.ref.name"] = strings.TrimSuffix(name, old.String()) + d.String()
			}
		}
		if err := os.Remove(blobPath(dir, old)); err != nil {
			t.Fatal(err)
		}
		// A referrers index (tag sha256-<hex>) listing the old manifest goes too: the new one
		// is found by its subject.
		var kept []any
		for _, e := range idx["manifests"].([]any) {
			var other struct {
				Manifests []struct{ Digest digest.Digest }
			}
			readJSON(t, blobPath(dir, digest.Digest(e.(ociEntry)["digest"].(string))), &other)
			if len(other.Manifests) != 1 || other.Manifests[0].Digest != old {
				kept = append(kept, e)
			}
		}
		idx["manifests"] = kept
		raw, err = json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(idxPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no manifest of the layout matched")
}

// flipSimpleSigning flips one byte of the signature (decoded) in the .sig manifest's annotation.
func flipSimpleSigning(t *testing.T, dir string) {
	rewriteManifest(t, dir, func(m map[string]any) bool {
		layers, _ := m["layers"].([]any)
		for _, l := range layers {
			ann, _ := l.(map[string]any)["annotations"].(map[string]any)
			if b64, ok := ann["dev.cosignproject.cosign/signature"].(string); ok {
				ann["dev.cosignproject.cosign/signature"] = flipBase64(t, b64)
				return true
			}
		}
		return false
	})
}

// flipBundle flips one byte of the DSSE signature in the sigstore bundle referrer's layer.
func flipBundle(t *testing.T, dir string) {
	rewriteManifest(t, dir, func(m map[string]any) bool {
		if at, _ := m["artifactType"].(string); !strings.HasPrefix(at, "application/vnd.dev.sigstore.bundle") {
			return false
		}
		layer := m["layers"].([]any)[0].(map[string]any)
		var b map[string]any
		readJSON(t, blobPath(dir, digest.Digest(layer["digest"].(string))), &b)
		sig := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
		sig["sig"] = flipBase64(t, sig["sig"].(string))
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		d := writeBlob(t, dir, raw)
		layer["digest"], layer["size"] = d.String(), len(raw)
		return true
	})
}

func flipBase64(t *testing.T, s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < 20 {
		t.Fatalf("signature %q: %v", s, err)
	}
	b[len(b)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func writeBlob(t *testing.T, dir string, raw []byte) digest.Digest {
	d := digest.FromBytes(raw)
	if err := os.WriteFile(blobPath(dir, d), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func readJSON(t *testing.T, path string, v any) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
