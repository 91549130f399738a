package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// TestImageSignaturesP384: images signed by stock cosign with an imported ECDSA P-384 key, in
// the tag scheme and as a sigstore bundle, verify with bale --image-key when cosign verify
// accepts them, and an image signed by another P-384 key is refused.
func TestImageSignaturesP384(t *testing.T) {
	testenv.Need(t, "skopeo")
	testenv.NeedTool(t, "cosign")
	testenv.Need(t, "openssl")
	root := filepath.Join(t.TempDir(), "src")
	reg := testenv.StartRegistry(t, root)
	c := imagetest.Standard()
	legacy, bundled, other := c.ByName("kubesphere/kube-apiserver:v1.20.6"), c.ByName("multiarch/pause:3.2"), c.ByName("kubesphere/kube-proxy:v1.20.6")
	dir := t.TempDir()
	for _, img := range []imagetest.Image{legacy, bundled, other} {
		p, err := c.WriteDir(dir, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	p384 := func(name string) *testenv.CosignKey {
		pem := filepath.Join(t.TempDir(), name+".pem")
		if out, err := exec.Command("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", pem).CombinedOutput(); err != nil {
			t.Fatalf("openssl genpkey: %v\n%s", err, out)
		}
		return testenv.ImportCosignKey(t, pem)
	}
	key, otherKey := p384("site"), p384("other")
	key.Sign(t, reg.Ref(legacy.Repo, string(legacy.Digest)))
	key.SignNewBundle(t, reg.Ref(bundled.Repo, string(bundled.Digest)))
	otherKey.Sign(t, reg.Ref(other.Repo, string(other.Digest)))
	// cosign sign signs with the key's own hash (SHA-384 for P-384); cosign verify checks
	// SHA-256 unless told otherwise.
	if err := key.Verify(t, reg.Ref(legacy.Repo, legacy.Tag)); err == nil {
		t.Log("cosign verify accepts the P-384 tag-scheme signature as SHA-256")
	} else if err := key.Verify(t, reg.Ref(legacy.Repo, legacy.Tag), "--signature-digest-algorithm", "sha384"); err != nil {
		t.Fatalf("cosign verify refuses its own P-384 tag-scheme signature, as SHA-256 and as SHA-384: %v", err)
	}
	if err := key.VerifyNewBundle(t, reg.Ref(bundled.Repo, bundled.Tag)); err == nil {
		t.Log("cosign verify accepts the P-384 sigstore bundle as SHA-256")
	} else if err := key.VerifyNewBundle(t, reg.Ref(bundled.Repo, bundled.Tag), "--signature-digest-algorithm", "sha384"); err != nil {
		t.Fatalf("cosign verify refuses its own P-384 sigstore bundle, as SHA-256 and as SHA-384: %v", err)
	}
	all := []imagetest.Image{legacy, bundled, other}
	signed := imageList(t, legacy, bundled)
	wantRefused(t, "verify of every image", bale(t, "verify", "--image-key", key.PublicKey, "registry:"+root), all, []imagetest.Image{other})
	bundle := filepath.Join(t.TempDir(), "signed.tar.zst")
	mustBale(t, "pack", "--image-key", key.PublicKey, "--images", signed, "-o", bundle, "registry:"+root)
	mustBale(t, "verify", "--image-key", key.PublicKey, bundle)
}
