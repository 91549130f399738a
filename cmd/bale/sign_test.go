package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive/bundlesig/sigtest"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// signBundles packs two small bundles of the standard corpus, with different images, from
// skopeo dir: trees: a (two images) and b (one).
func signBundles(t *testing.T) (a, b string) {
	t.Helper()
	c := imagetest.Standard()
	dir := t.TempDir()
	for i, img := range c.Images[:3] {
		root := filepath.Join(dir, "a")
		if i == 2 {
			root = filepath.Join(dir, "b")
		}
		if _, err := c.WriteDir(root, img); err != nil {
			t.Fatal(err)
		}
	}
	a, b = filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-o", a, "dir:"+filepath.Join(dir, "a"))
	mustBale(t, "pack", "-o", b, "dir:"+filepath.Join(dir, "b"))
	return a, b
}

const signPassword = "bale test password"

// cosignKey makes a cosign key pair with cosign generate-key-pair (password signPassword) in
// a new directory and returns it; COSIGN_PASSWORD is set for the bale runs of the test.
func cosignKey(t *testing.T) (priv, pub string) {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", signPassword)
	dir := t.TempDir()
	runCosign(t, dir, "generate-key-pair")
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// runCosign runs the real cosign in dir, offline, with COSIGN_PASSWORD=signPassword.
func runCosign(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, err := testenv.Cosign(t, dir, []string{"COSIGN_PASSWORD=" + signPassword}, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keyFingerprint is sha256 of the DER in the PEM public key file pub, as bale shows a key.
func keyFingerprint(t *testing.T, pub string) string {
	t.Helper()
	raw, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: no PEM", pub)
	}
	sum := sha256.Sum256(block.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// bundleID is the id bale list --json gives the bundle at path.
func bundleID(t *testing.T, path string) string {
	t.Helper()
	var l struct{ ID string }
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", path).stdout), &l); err != nil {
		t.Fatal(err)
	}
	return l.ID
}

// wantExit6 checks that bale args exits 6 (a signature check failed) and returns stderr.
func wantExit6(t *testing.T, what string, args ...string) string {
	t.Helper()
	res := bale(t, args...)
	if res.code != exitUnsigned {
		t.Fatalf("%s: bale %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, strings.Join(args, " "), res.code, exitUnsigned, res.stdout, res.stderr)
	}
	t.Logf("%s: %s", what, strings.TrimSpace(res.stderr))
	return res.stderr
}

// TestSignCosign: a bundle signed by bale sign verifies with stock cosign verify-blob by the
// documented command and with bale verify --key (signer, what it covers, --json); a signature
// stock cosign sign-blob made over bale sign --statement is attached and verified by bale.
func TestSignCosign(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, b := signBundles(t)
	priv, pub := cosignKey(t)
	res := mustBale(t, "sign", "--key", priv, a)
	sig := a + ".sigstore.json"
	if _, err := os.Stat(sig); err != nil {
		t.Fatalf("bale sign wrote no %s: %v\n%s", sig, err, res.stderr)
	}
	dir := filepath.Dir(a)
	stmt := filepath.Join(dir, "statement.json")
	os.WriteFile(stmt, []byte(mustBale(t, "sign", "--statement", a).stdout), 0o644)
	empty := filepath.Join(dir, "empty-root.json")
	os.WriteFile(empty, []byte(testenv.EmptyTrustedRoot), 0o644)
	runCosign(t, dir, "verify-blob", "--bundle", sig, "--key", pub, "--new-bundle-format", "--trusted-root", empty, "--insecure-ignore-tlog", stmt)

	id, fp := bundleID(t, a), keyFingerprint(t, pub)
	out := mustBale(t, "verify", "--key", pub, a).stdout
	if !strings.Contains(out, "signed by key "+fp) || !strings.Contains(out, "covers bundle "+id) {
		t.Errorf("verify --key does not name the signer %s and the bundle %s:\n%s", fp, id, out)
	}
	var doc struct {
		OK         bool
		Signatures []struct {
			Source, Key string
			Trusted     bool
			Covers      struct{ ID string }
		}
	}
	if err := json.Unmarshal([]byte(mustBale(t, "verify", "--json", "--key", pub, a).stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.OK || len(doc.Signatures) != 1 || doc.Signatures[0].Key != fp || !doc.Signatures[0].Trusted || doc.Signatures[0].Covers.ID != id || doc.Signatures[0].Source != sig {
		t.Errorf("verify --json: %+v", doc)
	}
	// Signing again with the same key replaces its signature.
	mustBale(t, "sign", "--key", priv, a)
	if m, _ := filepath.Glob(a + ".*sigstore.json"); len(m) != 1 {
		t.Errorf("signature files after signing twice with one key: %v", m)
	}

	// A split bundle is signed through its first volume; its statement names the volumes.
	split := filepath.Join(dir, "split.tar.zst")
	mustBale(t, "pack", "--volume-size", "64K", "-o", split, "dir:"+filepath.Join(dir, "a"))
	mustBale(t, "sign", "--key", priv, split)
	if _, err := os.Stat(split + ".001.sigstore.json"); err != nil {
		t.Errorf("the split bundle's signature is not beside its first volume: %v", err)
	}
	if out := mustBale(t, "verify", "--key", pub, split).stdout; !strings.Contains(out, "volume(s)") {
		t.Errorf("verify of the split bundle does not say it covers volumes:\n%s", out)
	}

	// Stock cosign sign-blob over bale's statement of b, attached by bale.
	stmtB := filepath.Join(dir, "statement-b.json")
	os.WriteFile(stmtB, []byte(mustBale(t, "sign", "--statement", b).stdout), 0o644)
	cosignSig := filepath.Join(dir, "cosign-b.json")
	runCosign(t, dir, "sign-blob", "--key", priv, "--tlog-upload=false", "--new-bundle-format", "--bundle", cosignSig, stmtB)
	wantExit6(t, "attach to another bundle", "sign", "--attach", cosignSig, a)
	mustBale(t, "sign", "--attach", cosignSig, b)
	if out := mustBale(t, "verify", "--key", pub, b).stdout; !strings.Contains(out, "signed by key "+fp) {
		t.Errorf("verify of the cosign signature:\n%s", out)
	}
}

// TestSignTampered: each of these is refused with exit 6 before the bundle's content is read:
// a changed byte in the signature; in the statement digest it records (with a key and
// without); a changed catalog (a tag added and the id recomputed, as a forger would); a
// signature moved from another bundle; a signature by another key; an unsigned bundle with
// --key. Keyless (a virtual CA and TSA made for the test, sigtest): the identity and issuer
// given pass, another identity, another issuer or a certificate from an untrusted CA fail.
func TestSignTampered(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, b := signBundles(t)
	priv, pub := cosignKey(t)
	_, otherPub := cosignKey(t)
	mustBale(t, "sign", "--key", priv, a)
	sig := a + ".sigstore.json"
	good, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	mustBale(t, "verify", "--key", pub, a)

	for _, field := range []string{"signature", "digest"} {
		os.WriteFile(sig, flipSigField(t, good, field), 0o644)
		wantExit6(t, "flipped "+field, "verify", "--key", pub, a)
		if field == "digest" {
			wantExit6(t, "flipped digest, no key", "verify", a)
		}
	}
	os.WriteFile(sig, good, 0o644)

	forged := filepath.Join(t.TempDir(), "a.tar.zst")
	forgeCatalog(t, a, forged)
	if bundleID(t, forged) == bundleID(t, a) {
		t.Fatal("the forged catalog has the same id")
	}
	os.WriteFile(forged+".sigstore.json", good, 0o644)
	wantExit6(t, "changed catalog", "verify", "--key", pub, forged)
	wantExit6(t, "changed catalog, no key", "verify", forged)
	// A flipped byte in the catalog, nothing recomputed: damaged (exit 4) without signers,
	// untrusted (exit 6) when signers are required, and nothing is unpacked.
	flipped := filepath.Join(t.TempDir(), "a.tar.zst")
	flipCatalogByte(t, a, flipped)
	os.WriteFile(flipped+".sigstore.json", good, 0o644)
	wantExit6(t, "flipped catalog byte", "verify", "--key", pub, flipped)
	site := filepath.Join(t.TempDir(), "site")
	wantExit6(t, "flipped catalog byte, unpack", "unpack", "--key", pub, "--to", "registry:"+site, flipped)
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused unpack (%v)", site, err)
	}
	if res := bale(t, "verify", flipped); res.code != exitInvalid {
		t.Errorf("flipped catalog byte, no key: exit %d, want %d\n%s", res.code, exitInvalid, res.stderr)
	}

	os.WriteFile(b+".sigstore.json", good, 0o644)
	wantExit6(t, "moved from another bundle", "verify", "--key", pub, b)
	wantExit6(t, "moved from another bundle, no key", "verify", b)
	os.Remove(b + ".sigstore.json")

	wantExit6(t, "another key", "verify", "--key", otherPub, a)
	wantExit6(t, "unsigned, with --key", "verify", "--key", pub, b)
	mustBale(t, "verify", "--key", otherPub, "--key", pub, a) // any of the keys may have signed

	// Keyless.
	vs, rogue := sigtest.NewSigstore(t), sigtest.NewSigstore(t)
	rootFile := filepath.Join(t.TempDir(), "trusted_root.json")
	os.WriteFile(rootFile, vs.TrustedRoot(t), 0o644)
	stmt := []byte(mustBale(t, "sign", "--statement", b).stdout)
	const who, issuer = "release@example.com", "https://accounts.example.com"
	keyless := func(extra ...string) []string {
		return append([]string{"verify", "--trusted-root", rootFile}, append(extra, b)...)
	}
	os.WriteFile(b+".sigstore.json", vs.Keyless(t, stmt, who, issuer), 0o644)
	out := mustBale(t, keyless("--certificate-identity", who, "--certificate-oidc-issuer", issuer)...).stdout
	if !strings.Contains(out, "certificate identity "+who+", issuer "+issuer) || !strings.Contains(out, ", at ") {
		t.Errorf("keyless verify does not show the identity, issuer and time:\n%s", out)
	}
	mustBale(t, keyless("--certificate-identity-regexp", `@example\.com$`, "--certificate-oidc-issuer-regexp", `^https://accounts\.`)...)
	wantExit6(t, "wrong identity", keyless("--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", issuer)...)
	wantExit6(t, "wrong issuer", keyless("--certificate-identity", who, "--certificate-oidc-issuer", "https://evil.example.com")...)
	wantExit6(t, "a key for a certificate", "verify", "--key", pub, b)
	os.WriteFile(b+".sigstore.json", vs.KeylessIssuedBy(t, rogue, stmt, who, issuer), 0o644)
	wantExit6(t, "untrusted CA", keyless("--certificate-identity", who, "--certificate-oidc-issuer", issuer)...)
	if res := bale(t, "verify", "--certificate-identity", who, b); res.code != exitUsage {
		t.Errorf("keyless without an issuer and a trusted root: exit %d, want %d", res.code, exitUsage)
	}
}

// flipSigField changes one byte of the base64 signature, or of the message digest, of the
// sigstore bundle raw.
func flipSigField(t *testing.T, raw []byte, field string) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	holder, key := b["messageSignature"].(map[string]any), "signature"
	if field == "digest" {
		holder, key = holder["messageDigest"].(map[string]any), "digest"
	}
	v := []byte(holder[key].(string))
	if v[7] == 'A' {
		v[7] = 'B'
	} else {
		v[7] = 'A'
	}
	holder[key] = string(v)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forgeCatalog writes to out the bundle at in with its catalog changed as a forger would: a
// tag added (pointing at an image the bundle holds) and the id recomputed, so that the
// catalog is consistent and only the signature can tell.
func forgeCatalog(t *testing.T, in, out string) {
	t.Helper()
	replaceCatalog(t, in, out, func(db []byte) []byte { return forgedCatalog(t, db) })
}

// flipCatalogByte writes to out the bundle at in with one byte of its catalog's records
// flipped (the digest of the first tag: the catalog stays a sound database, its id no longer
// matches), as damage in transit would, with nothing recomputed.
func flipCatalogByte(t *testing.T, in, out string) {
	t.Helper()
	replaceCatalog(t, in, out, func(db []byte) []byte {
		i := bytes.Index(db, []byte("sha256:"))
		if i < 0 {
			t.Fatal("no digest in the catalog")
		}
		db = bytes.Clone(db)
		if db[i+7] == 'a' {
			db[i+7] = 'b'
		} else {
			db[i+7] = 'a'
		}
		return db
	})
}

// replaceCatalog writes to out the bundle at in with its catalog replaced by change(catalog).
func replaceCatalog(t *testing.T, in, out string, change func([]byte) []byte) {
	t.Helper()
	rewriteBundle(t, testenv.Need(t, "zstd"), in, out, func(h *tar.Header, data []byte) []byte {
		if h.Name == "bale/catalog.db" {
			return change(data)
		}
		return data
	})
}

// forgedCatalog is the catalog db with a tag "forged" added beside an existing one and the
// id recomputed.
func forgedCatalog(t *testing.T, db []byte) []byte {
	t.Helper()
	return editCatalog(t, db, func(c *catalog.Catalog) {
		for _, r := range c.Repos {
			for _, d := range r.Tags {
				r.Tags["forged"] = d
				break
			}
			break
		}
		c.Meta.ID = c.ComputeID()
	})
}

// TestSignUnpackList: unpack and list take the trust flags. unpack refuses (exit 6) before
// anything is written a bundle signed by another key, an unsigned one, a patch chain with an
// unsigned link, and, with no flag, a bundle whose signature is over another; list shows who
// signed and refuses the same way.
func TestSignUnpackList(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, b := signBundles(t)
	priv, pub := cosignKey(t)
	_, otherPub := cosignKey(t)
	// A patch of a: a's images and b's.
	c := imagetest.Standard()
	both := filepath.Join(t.TempDir(), "ab")
	for _, img := range c.Images[:3] {
		if _, err := c.WriteDir(both, img); err != nil {
			t.Fatal(err)
		}
	}
	patch := filepath.Join(filepath.Dir(a), "patch.tar.zst")
	mustBale(t, "pack", "--base", a, "-o", patch, "dir:"+both)
	mustBale(t, "sign", "--key", priv, a)

	site := filepath.Join(t.TempDir(), "site")
	untouched := func(what string) {
		t.Helper()
		if _, err := os.Stat(site); !os.IsNotExist(err) {
			t.Fatalf("%s: %s exists after a refused unpack (%v)", what, site, err)
		}
	}
	wantExit6(t, "unpack, another key", "unpack", "--key", otherPub, "--to", "registry:"+site, a)
	untouched("another key")
	wantExit6(t, "unpack, unsigned", "unpack", "--key", pub, "--to", "registry:"+site, b)
	untouched("unsigned")
	stderr := wantExit6(t, "unpack, unsigned patch on a signed base", "unpack", "--key", pub, "--to", "registry:"+site, a, patch)
	if !strings.Contains(stderr, patch) {
		t.Errorf("the unsigned patch is not named:\n%s", stderr)
	}
	untouched("unsigned patch")
	good, err := os.ReadFile(a + ".sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(b+".sigstore.json", good, 0o644)
	wantExit6(t, "unpack, no flag, a signature of another bundle", "unpack", "--to", "registry:"+site, b)
	untouched("moved signature")
	os.Remove(b + ".sigstore.json")

	mustBale(t, "sign", "--key", priv, patch)
	res := mustBale(t, "unpack", "--key", pub, "--to", "registry:"+site, a, patch)
	if !strings.Contains(res.stderr, "signed by key "+keyFingerprint(t, pub)) {
		t.Errorf("unpack does not say who signed:\n%s", res.stderr)
	}
	checkList(t, "registry:"+site, c.Images[:3])

	if out := mustBale(t, "list", "--key", pub, a).stdout; !strings.Contains(out, "signed by key "+keyFingerprint(t, pub)) {
		t.Errorf("list --key does not show the signer:\n%s", out)
	}
	var l struct{ Signatures []struct{ Key string } }
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", a).stdout), &l); err != nil || len(l.Signatures) != 1 || l.Signatures[0].Key != keyFingerprint(t, pub) {
		t.Errorf("list --json signatures: %+v %v", l, err)
	}
	wantExit6(t, "list, another key", "list", "--key", otherPub, a)
	wantExit6(t, "list, unsigned", "list", "--key", pub, b)
	if res := bale(t, "list", "--key", pub, "registry:"+site); res.code != exitUsage {
		t.Errorf("list --key of registry storage: exit %d, want %d", res.code, exitUsage)
	}
}

// TestSignPolicy: a site policy (BALE_POLICY) makes verification mandatory with no flag:
// verify and unpack of an unsigned bundle, or of one signed by a key the policy does not
// list, exit 6 with nothing written; flags given replace it; a policy named and missing, or
// one that trusts nobody, is an error.
func TestSignPolicy(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, b := signBundles(t)
	priv, pub := cosignKey(t)
	otherPriv, otherPub := cosignKey(t)
	mustBale(t, "sign", "--key", priv, a)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "release.pub"), mustRead(t, pub), 0o644)
	policy := writeFile(t, dir, "policy.yaml", "bundles:\n  keys: [release.pub]\n")
	t.Setenv("BALE_POLICY", policy)

	if out := mustBale(t, "verify", a).stdout; !strings.Contains(out, "signed by key "+keyFingerprint(t, pub)) {
		t.Errorf("verify under the policy:\n%s", out)
	}
	wantExit6(t, "policy, unsigned", "verify", b)
	site := filepath.Join(t.TempDir(), "site")
	wantExit6(t, "policy, unpack unsigned", "unpack", "--to", "registry:"+site, b)
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused unpack (%v)", site, err)
	}
	mustBale(t, "sign", "--key", otherPriv, b)
	wantExit6(t, "policy, another key", "verify", b)
	mustBale(t, "verify", "--key", otherPub, b) // the flags replace the policy

	t.Setenv("BALE_POLICY", filepath.Join(dir, "missing.yaml"))
	if res := bale(t, "verify", a); res.code == 0 || !strings.Contains(res.stderr, "missing.yaml") {
		t.Errorf("a missing policy named by BALE_POLICY: exit %d\n%s", res.code, res.stderr)
	}
	t.Setenv("BALE_POLICY", writeFile(t, dir, "nobody.yaml", "bundles: {keys: []}\n"))
	if res := bale(t, "verify", a); res.code == 0 || !strings.Contains(res.stderr, "trust nobody") {
		t.Errorf("a policy that trusts nobody: exit %d\n%s", res.code, res.stderr)
	}
}
