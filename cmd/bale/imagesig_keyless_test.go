package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bale-project/bale/archive/bundlesig/sigtest"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

const (
	keylessWho    = "release@example.com"
	keylessIssuer = "https://accounts.example.com"
)

// TestImageKeyless: keyless image signatures, checked offline against a trusted root. In
// docker-registry 2.8: one image signed in the tag scheme (the payload of cosign generate,
// signed with a certificate of a virtual Sigstore made for the test, sigtest, and attached by
// cosign attach signature with its certificate, chain and RFC 3161 timestamp; stock cosign
// verify accepts it), one multi-arch image with a sigstore bundle referrer (a DSSE in-toto
// statement of cosign's sign predicate, attached by oras as cosign --new-bundle-format lays
// it out), one signed by another identity, one unsigned, and one in the tag scheme with a
// Rekor bundle of the virtual Sigstore's log instead of a timestamp (cosign verify checks it
// offline). verify and unpack with the identity and issuer (exact or regexp) pass the signed
// ones and name the others (exit 6, nothing written; copy and serve refuse the same way);
// another issuer or the root of another CA refuses every image.
func TestImageKeyless(t *testing.T) {
	testenv.Need(t, "skopeo")
	testenv.NeedTool(t, "cosign")
	testenv.NeedTool(t, "oras")
	root := filepath.Join(t.TempDir(), "src")
	reg := testenv.StartRegistry(t, root)
	c := imagetest.Standard()
	byName := map[string]imagetest.Image{}
	for _, img := range c.Images {
		byName[img.Name()] = img
	}
	legacy, bundled := byName["kubesphere/kube-apiserver:v1.20.6"], byName["multiarch/pause:3.2"]
	unsigned, other := byName["kubesphere/kube-proxy:v1.20.6"], byName["kubesphere/kube-controller-manager:v1.20.6"]
	logged := byName["a/b:rc_1"]
	all := []imagetest.Image{legacy, bundled, unsigned, other, logged}
	dir := t.TempDir()
	for _, img := range all {
		if img.Repo == "" {
			t.Fatal("the standard corpus lacks an image this test signs")
		}
		p, err := c.WriteDir(dir, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	vs, rogue := sigtest.NewSigstore(t), sigtest.NewSigstore(t)
	rootFile := writeFile(t, t.TempDir(), "trusted_root.json", string(vs.TrustedRoot(t)))
	rogueRoot := writeFile(t, t.TempDir(), "rogue_root.json", string(rogue.TrustedRoot(t)))

	attachLegacy(t, vs, reg.Ref(legacy.Repo, string(legacy.Digest)), keylessWho, false)
	attachLegacy(t, vs, reg.Ref(other.Repo, string(other.Digest)), "mallory@example.com", false)
	attachLegacy(t, vs, reg.Ref(logged.Repo, string(logged.Digest)), keylessWho, true)
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": reg.Addr + "/" + bundled.Repo, "digest": map[string]string{"sha256": bundled.Digest.Encoded()}}},
		"predicateType": "https://sigstore.dev/cosign/sign/v1",
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	sigFile := filepath.Join(t.TempDir(), "bundle.sigstore.json")
	os.WriteFile(sigFile, vs.KeylessDSSE(t, "application/vnd.in-toto+json", stmt, keylessWho, keylessIssuer), 0o644)
	testenv.OrasAttach(t, reg.Ref(bundled.Repo, string(bundled.Digest)), bundleType, sigFile+":"+bundleType)

	// Stock cosign accepts the tag-scheme signature with the identity, and refuses another.
	verifyArgs := func(ref, who string) []string {
		return []string{"verify", "--allow-http-registry", "--trusted-root", rootFile, "--insecure-ignore-tlog", "--insecure-ignore-sct",
			"--certificate-identity", who, "--certificate-oidc-issuer", keylessIssuer, strings.TrimPrefix(ref, "docker://")}
	}
	if _, err := testenv.Cosign(t, "", nil, verifyArgs(reg.Ref(legacy.Repo, legacy.Tag), keylessWho)...); err != nil {
		t.Fatalf("cosign refuses the keyless tag-scheme signature: %v", err)
	}
	// The one with a Rekor bundle and no timestamp: cosign checks its log entry offline.
	rekorArgs := slices.DeleteFunc(verifyArgs(reg.Ref(logged.Repo, logged.Tag), keylessWho), func(a string) bool { return a == "--insecure-ignore-tlog" })
	if _, err := testenv.Cosign(t, "", nil, rekorArgs...); err != nil {
		t.Fatalf("cosign refuses the keyless tag-scheme signature with a Rekor bundle: %v", err)
	}
	if _, err := testenv.Cosign(t, "", nil, verifyArgs(reg.Ref(other.Repo, other.Tag), keylessWho)...); err == nil {
		t.Fatal("cosign accepts another identity's signature")
	}

	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "all.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+root)
	signedBundle := filepath.Join(tmp, "signed.tar.zst")
	mustBale(t, "pack", "--images", imageList(t, legacy, bundled, logged), "-o", signedBundle, "registry:"+root)

	id := []string{"--image-certificate-identity", keylessWho, "--image-certificate-oidc-issuer", keylessIssuer, "--trusted-root", rootFile}
	res := mustBale(t, append(append([]string{"verify"}, id...), signedBundle)...)
	if !strings.Contains(res.stdout, "OK") {
		t.Errorf("verify of the keyless-signed images: %s", res.stdout)
	}
	mustBale(t, "verify", "--image-certificate-identity-regexp", `@example\.com$`, "--image-certificate-oidc-issuer-regexp", `^https://accounts\.`, "--trusted-root", rootFile, signedBundle)
	wantRefused(t, "verify, keyless, every image", bale(t, append(append([]string{"verify"}, id...), bundle)...), all, []imagetest.Image{unsigned, other})
	wantRefused(t, "verify, another issuer", bale(t, "verify", "--image-certificate-identity", keylessWho, "--image-certificate-oidc-issuer", "https://evil.example.com", "--trusted-root", rootFile, signedBundle), all, []imagetest.Image{legacy, bundled, logged})
	wantRefused(t, "verify, another CA's root", bale(t, "verify", "--image-certificate-identity", keylessWho, "--image-certificate-oidc-issuer", keylessIssuer, "--trusted-root", rogueRoot, signedBundle), all, []imagetest.Image{legacy, bundled, logged})

	site := filepath.Join(t.TempDir(), "site")
	wantRefused(t, "unpack, keyless", bale(t, append(append([]string{"unpack", "--to", "registry:" + site}, id...), bundle)...), all, []imagetest.Image{unsigned, other})
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Fatalf("%s exists after a refused unpack (%v)", site, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	wantRefused(t, "copy, keyless", bale(t, append(append([]string{"copy"}, id...), bundle, "oci:"+out)...), all, []imagetest.Image{unsigned, other})
	wantRefused(t, "serve, keyless", baleTimeout(t, time.Minute, append(append([]string{"serve", "--addr", "127.0.0.1:0"}, id...), bundle)...), all, []imagetest.Image{unsigned, other})
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("%s exists after a refused copy (%v)", out, err)
	}
	// pack refuses to pack the images without a keyless signature, and with --keep-going packs
	// the others and names those (exit 5).
	packed := filepath.Join(t.TempDir(), "packed.tar.zst")
	wantRefused(t, "pack, keyless", bale(t, append(append([]string{"pack", "-o", packed}, id...), "registry:"+root)...), all, []imagetest.Image{unsigned, other})
	if _, err := os.Stat(packed); !os.IsNotExist(err) {
		t.Fatalf("%s exists after a refused pack (%v)", packed, err)
	}
	if res := bale(t, append(append([]string{"pack", "--keep-going", "-o", packed}, id...), "registry:"+root)...); res.code != exitPartial {
		t.Errorf("pack --keep-going, keyless: exit %d, want %d\n%s", res.code, exitPartial, res.stderr)
	}
	mustBale(t, append(append([]string{"verify"}, id...), packed)...)
	res = mustBale(t, append(append([]string{"unpack", "--to", "registry:" + site}, id...), signedBundle)...)
	if !strings.Contains(res.stderr, "certificate identity "+keylessWho) {
		t.Errorf("unpack does not say who signed the images:\n%s", res.stderr)
	}
	checkList(t, "registry:"+site, []imagetest.Image{legacy, bundled, logged})
	if res := bale(t, "verify", "--image-certificate-identity", keylessWho, signedBundle); res.code != exitUsage {
		t.Errorf("an image identity without an issuer and a trusted root: exit %d, want %d", res.code, exitUsage)
	}
}

// attachLegacy signs the image ref in cosign's tag scheme as who (keylessIssuer), with a
// certificate of vs: the payload of cosign generate, signed by sigtest, attached by cosign
// attach signature with its certificate, chain and RFC 3161 timestamp, or with rekor its
// Rekor bundle (a log entry of vs's transparency log) instead of the timestamp.
func attachLegacy(t *testing.T, vs *sigtest.Sigstore, ref, who string, rekor bool) {
	t.Helper()
	ref = strings.TrimPrefix(ref, "docker://")
	dir := t.TempDir()
	payload, err := testenv.Cosign(t, dir, nil, "generate", "--allow-http-registry", ref)
	if err != nil {
		t.Fatal(err)
	}
	p := vs.KeylessParts(t, payload, who, keylessIssuer)
	files := map[string][]byte{
		"payload.json": payload, "cert.pem": p.Cert, "chain.pem": p.Chain, "ts.der": p.Timestamp,
		"sig.b64": []byte(base64.StdEncoding.EncodeToString(p.Signature)), "rekor.json": append(append([]byte(`{"rekorBundle":`), p.Rekor...), '}'), // cosign's LocalSignedPayload
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proof := []string{"--tsr", "ts.der"}
	if rekor {
		proof = []string{"--rekor-response", "rekor.json"}
	}
	args := append([]string{"attach", "signature", "--allow-http-registry", "--payload", "payload.json", "--signature", "sig.b64",
		"--certificate", "cert.pem", "--certificate-chain", "chain.pem"}, proof...)
	if _, err := testenv.Cosign(t, dir, nil, append(args, ref)...); err != nil {
		t.Fatal(err)
	}
}
