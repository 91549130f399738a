package bundlesig_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/archive/bundlesig/sigtest"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/testenv"
)

// testCatalog is a catalog with what a statement holds: an id, a format, bases and volumes.
func testCatalog(id string) *catalog.Catalog {
	c := catalog.New()
	c.Meta.ID = id
	c.Meta.Format = 3
	c.Bases = []catalog.Base{{ID: "sha256:" + strings.Repeat("2", 64), Order: 1}, {ID: "sha256:" + strings.Repeat("1", 64), Order: 0}}
	c.Meta.Volumes = []catalog.Volume{{Name: "r<&>.tar.zst.002", Size: 4096, Digest: digest.Digest("sha256:" + strings.Repeat("3", 64))}}
	return c
}

var (
	idA = "sha256:" + strings.Repeat("a", 64)
	idB = "sha256:" + strings.Repeat("b", 64)
)

// TestStatement: the statement is in-toto Statement v1 in RFC 8785 canonical JSON (keys
// sorted, no spaces, no HTML escaping), bases in their order, written out here by hand.
func TestStatement(t *testing.T) {
	got, err := bundlesig.Statement(testCatalog(idA))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"bases":["sha256:` + strings.Repeat("1", 64) + `","sha256:` + strings.Repeat("2", 64) +
		`"],"format":3,"volumes":[{"digest":"sha256:` + strings.Repeat("3", 64) + `","name":"r<&>.tar.zst.002","size":4096}]},` +
		`"predicateType":"https://github.com/bale-project/bale/bundle/v1","subject":[{"digest":{"sha256":"` + strings.Repeat("a", 64) + `"},"name":"bale-bundle"}]}`
	if string(got) != want {
		t.Errorf("statement:\n got %s\nwant %s", got, want)
	}
	full := catalog.New()
	full.Meta.ID, full.Meta.Format = idB, 1
	got, err = bundlesig.Statement(full)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"bases":[],"format":1,"volumes":[]},"predicateType":"https://github.com/bale-project/bale/bundle/v1","subject":[{"digest":{"sha256":"` + strings.Repeat("b", 64) + `"},"name":"bale-bundle"}]}`; string(got) != want {
		t.Errorf("statement of a full bundle:\n got %s\nwant %s", got, want)
	}
	// Format 5: the list member, as meta/list records it, and the same bytes from plain fields
	// (what bale list builds from the member's header and the digest it computed).
	full.Meta.Format = 5
	full.Meta.List = &catalog.ListMember{Size: 1234, Digest: digest.Digest("sha256:" + strings.Repeat("4", 64))}
	got, err = bundlesig.Statement(full)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"bases":[],"format":5,"list":{"digest":"sha256:` + strings.Repeat("4", 64) +
		`","size":1234},"volumes":[]},"predicateType":"https://github.com/bale-project/bale/bundle/v1","subject":[{"digest":{"sha256":"` + strings.Repeat("b", 64) + `"},"name":"bale-bundle"}]}`; string(got) != want {
		t.Errorf("statement of a format-5 bundle:\n got %s\nwant %s", got, want)
	}
	plain, err := bundlesig.StatementOf(bundlesig.Covers{ID: idB, Predicate: bundlesig.Predicate{Format: 5,
		List: &bundlesig.List{Digest: "sha256:" + strings.Repeat("4", 64), Size: 1234}}})
	if err != nil || string(plain) != string(got) {
		t.Errorf("StatementOf plain fields: %s (%v), want %s", plain, err, got)
	}
	full.Meta.ID = "sha256:ABC"
	if _, err := bundlesig.Statement(full); err == nil {
		t.Error("a statement of a malformed id was made")
	}
}

// keyPair is a private key file and its public key file.
type keyPair struct{ priv, pub string }

// writeKey writes priv as a PEM PKCS#8 private key and its PEM PKIX public key in dir.
func writeKey(t *testing.T, dir string, priv crypto.Signer) keyPair {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	k := keyPair{filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")}
	os.WriteFile(k.priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(k.pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	return k
}

// openssl runs openssl with args in dir.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	bin := testenv.Need(t, "openssl")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

const password = "s3cret pass"

// keyTypes are the keys bale signs with: made by Go, by openssl, and by cosign
// generate-key-pair (encrypted, COSIGN_PASSWORD).
var keyTypes = []struct {
	name string
	make func(t *testing.T, dir string) keyPair
}{
	{"go-ecdsa-p256", func(t *testing.T, dir string) keyPair {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return writeKey(t, dir, k)
	}},
	{"go-ecdsa-p384", func(t *testing.T, dir string) keyPair {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return writeKey(t, dir, k)
	}},
	{"go-ed25519", func(t *testing.T, dir string) keyPair {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return writeKey(t, dir, k)
	}},
	{"go-rsa-3072", func(t *testing.T, dir string) keyPair {
		k, _ := rsa.GenerateKey(rand.Reader, 3072)
		return writeKey(t, dir, k)
	}},
	{"openssl-ecdsa-p384", func(t *testing.T, dir string) keyPair {
		openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "key.pem")
		openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
		return keyPair{filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")}
	}},
	{"openssl-ed25519", func(t *testing.T, dir string) keyPair {
		openssl(t, dir, "genpkey", "-algorithm", "ED25519", "-out", "key.pem")
		openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
		return keyPair{filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")}
	}},
	{"openssl-rsa-2048", func(t *testing.T, dir string) keyPair {
		openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem")
		openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
		return keyPair{filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")}
	}},
	{"cosign-generate-key-pair", func(t *testing.T, dir string) keyPair {
		cosign(t, dir, "generate-key-pair")
		return keyPair{filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")}
	}},
}

// cosign runs the real cosign in dir with COSIGN_PASSWORD=password and fails the test on error.
func cosign(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, err := testenv.Cosign(t, dir, []string{"COSIGN_PASSWORD=" + password}, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pass() ([]byte, error) { return []byte(password), nil }

// TestSignVerifyKeys: for every key type, a bale signature verifies with bale and with stock
// cosign verify-blob (the documented command), and fails with another key or on another
// bundle; a signature stock cosign sign-blob made with the key (imported with cosign
// import-key-pair when not cosign's) verifies with bale.
func TestSignVerifyKeys(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	other := writeKey(t, t.TempDir(), mustECDSA(t))
	for _, kt := range keyTypes {
		t.Run(kt.name, func(t *testing.T) {
			dir := t.TempDir()
			k := kt.make(t, dir)
			s, err := bundlesig.LoadSigner(k.priv, pass)
			if err != nil {
				t.Fatal(err)
			}
			c := testCatalog(idA)
			stmt, err := bundlesig.Statement(c)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := bundlesig.SignCatalog(context.Background(), s, c)
			if err != nil {
				t.Fatal(err)
			}
			trust := mustTrust(t, bundlesig.TrustOptions{Keys: []string{other.pub, k.pub}})
			sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: sig}}, trust)
			if err != nil {
				t.Fatal(err)
			}
			if len(sigs) != 1 || sigs[0].KeyFile != k.pub || sigs[0].Key != s.Fingerprint() || !sigs[0].Trusted || sigs[0].Covers.ID != idA || len(sigs[0].Covers.Bases) != 2 {
				t.Errorf("signatures: %+v", sigs)
			}
			// Stock cosign checks it, by the command the README gives.
			os.WriteFile(filepath.Join(dir, "stmt.json"), stmt, 0o644)
			os.WriteFile(filepath.Join(dir, "sig.json"), sig, 0o644)
			os.WriteFile(filepath.Join(dir, "root.json"), []byte(testenv.EmptyTrustedRoot), 0o644)
			cosign(t, dir, "verify-blob", "--bundle", "sig.json", "--key", k.pub, "--new-bundle-format", "--trusted-root", "root.json", "--insecure-ignore-tlog", "stmt.json")
			if _, err := testenv.Cosign(t, dir, nil, "verify-blob", "--bundle", "sig.json", "--key", other.pub, "--new-bundle-format", "--trusted-root", "root.json", "--insecure-ignore-tlog", "stmt.json"); err == nil {
				t.Error("cosign accepts the signature with another key")
			}
			wantUntrusted(t, "another key", c, sig, mustTrust(t, bundlesig.TrustOptions{Keys: []string{other.pub}}))
			wantUntrusted(t, "another bundle", testCatalog(idB), sig, trust)
			// A signature by stock cosign sign-blob over the statement. (cosign 2.6.1 panics
			// signing a blob with an Ed25519 key without a transparency log: "requested hash
			// function #0 is unavailable".)
			if strings.HasSuffix(kt.name, "ed25519") {
				return
			}
			key := k.priv
			if kt.name != "cosign-generate-key-pair" {
				imp := t.TempDir()
				cosign(t, imp, "import-key-pair", "--key", k.priv, "--output-key-prefix", "imported")
				key = filepath.Join(imp, "imported.key")
			}
			cosign(t, dir, "sign-blob", "--key", key, "--tlog-upload=false", "--new-bundle-format", "--bundle", "cosign.json", "stmt.json")
			raw, err := os.ReadFile(filepath.Join(dir, "cosign.json"))
			if err != nil {
				t.Fatal(err)
			}
			if sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "cosign.json", Raw: raw}}, trust); err != nil || len(sigs) != 1 || sigs[0].KeyFile != k.pub {
				t.Errorf("bale refuses cosign sign-blob's signature: %v (%+v)", err, sigs)
			}
		})
	}
}

func mustECDSA(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustTrust(t *testing.T, o bundlesig.TrustOptions) *bundlesig.Trust {
	t.Helper()
	tr, err := bundlesig.LoadTrust(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// wantUntrusted checks that sig on c is refused by trust with ErrUntrusted.
func wantUntrusted(t *testing.T, what string, c *catalog.Catalog, sig []byte, trust *bundlesig.Trust) {
	t.Helper()
	sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: sig}}, trust)
	var e *bundlesig.Error
	if !errors.Is(err, bundlesig.ErrUntrusted) || !errors.As(err, &e) || len(sigs) != 0 {
		t.Errorf("%s: Verify = %v, %v; want ErrUntrusted and no signature", what, sigs, err)
		return
	}
	t.Logf("%s: %v", what, err)
}

// TestTampered: a changed byte in the signature or in the digest of the statement it records
// is refused, with the key and without; an unsigned bundle is refused once a key is given.
func TestTampered(t *testing.T) {
	k := writeKey(t, t.TempDir(), mustECDSA(t))
	s, err := bundlesig.LoadSigner(k.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := testCatalog(idA)
	sig, err := bundlesig.SignCatalog(context.Background(), s, c)
	if err != nil {
		t.Fatal(err)
	}
	trust := mustTrust(t, bundlesig.TrustOptions{Keys: []string{k.pub}})
	for _, field := range []string{"signature", "digest"} {
		bad := flipJSON(t, sig, field)
		wantUntrusted(t, "flipped "+field, c, bad, trust)
		if field == "digest" {
			wantUntrusted(t, "flipped digest, no key", c, bad, nil)
		}
	}
	wantUntrusted(t, "not JSON", c, []byte("{"), trust)
	if _, err := bundlesig.Verify(c, nil, trust); !errors.Is(err, bundlesig.ErrUntrusted) {
		t.Errorf("unsigned with a key: %v", err)
	}
	if sigs, err := bundlesig.Verify(c, nil, nil); err != nil || len(sigs) != 0 {
		t.Errorf("unsigned without a key: %v %v", sigs, err)
	}
	if sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: sig}}, nil); err != nil || len(sigs) != 1 || sigs[0].Trusted || sigs[0].Key != s.Fingerprint() {
		t.Errorf("signed, no key: %+v %v", sigs, err)
	}
}

// flipJSON changes one byte of the base64 field (signature, or messageDigest's digest) of
// the sigstore bundle raw.
func flipJSON(t *testing.T, raw []byte, field string) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	ms := b["messageSignature"].(map[string]any)
	holder, key := ms, "signature"
	if field == "digest" {
		holder = ms["messageDigest"].(map[string]any)
		key = "digest"
	}
	v := []byte(holder[key].(string))
	if v[5] == 'A' {
		v[5] = 'B'
	} else {
		v[5] = 'A'
	}
	holder[key] = string(v)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeyless: certificates from a virtual Sigstore made for the test (sigtest, adapted from
// sigstore-go's pkg/testing/ca), with an RFC 3161 timestamp checked offline against the
// trusted root: the identity and issuer given (exact or regexp) pass; another identity,
// another issuer, or a certificate from an untrusted CA are refused; keys alone refuse a
// certificate.
func TestKeyless(t *testing.T) {
	vs, rogue := sigtest.NewSigstore(t), sigtest.NewSigstore(t)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "trusted_root.json")
	os.WriteFile(rootFile, vs.TrustedRoot(t), 0o644)
	c := testCatalog(idA)
	stmt, err := bundlesig.Statement(c)
	if err != nil {
		t.Fatal(err)
	}
	const who, issuer = "release@example.com", "https://accounts.example.com"
	good := vs.Keyless(t, stmt, who, issuer)
	exact := mustTrust(t, bundlesig.TrustOptions{Identity: who, Issuer: issuer, TrustedRoot: rootFile})
	sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: good}}, exact)
	if err != nil || len(sigs) != 1 || sigs[0].Identity != who || sigs[0].Issuer != issuer || sigs[0].Time == nil || !sigs[0].Trusted {
		t.Fatalf("matched identity: %+v, %v", sigs, err)
	}
	regexp := mustTrust(t, bundlesig.TrustOptions{IdentityRegexp: `^release@example\.com$`, IssuerRegexp: `^https://accounts\.example\.`, TrustedRoot: rootFile})
	if _, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: good}}, regexp); err != nil {
		t.Errorf("matched identity regexp: %v", err)
	}
	wantUntrusted(t, "wrong identity", c, good, mustTrust(t, bundlesig.TrustOptions{Identity: "mallory@example.com", Issuer: issuer, TrustedRoot: rootFile}))
	wantUntrusted(t, "wrong issuer", c, good, mustTrust(t, bundlesig.TrustOptions{Identity: who, Issuer: "https://evil.example.com", TrustedRoot: rootFile}))
	wantUntrusted(t, "untrusted CA and TSA", c, rogue.Keyless(t, stmt, who, issuer), exact)
	wantUntrusted(t, "untrusted CA, trusted timestamp", c, vs.KeylessIssuedBy(t, rogue, stmt, who, issuer), exact)
	wantUntrusted(t, "another bundle", testCatalog(idB), good, exact)
	wantUntrusted(t, "keys only", c, good, mustTrust(t, bundlesig.TrustOptions{Keys: []string{writeKey(t, t.TempDir(), mustECDSA(t)).pub}}))
	// No signers given: the certificate's key must still verify it.
	if sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: "sig", Raw: good}}, nil); err != nil || sigs[0].Identity != who || sigs[0].Trusted {
		t.Errorf("no signers: %+v %v", sigs, err)
	}
	wantUntrusted(t, "flipped signature, no signers", c, flipJSON(t, good, "signature"), nil)
	for _, o := range []bundlesig.TrustOptions{
		{Identity: who, TrustedRoot: rootFile},
		{Identity: who, Issuer: issuer},
		{Identity: who, IdentityRegexp: "x", Issuer: issuer, TrustedRoot: rootFile},
		{TrustedRoot: rootFile},
	} {
		if _, err := bundlesig.LoadTrust(o); !errors.Is(err, bundlesig.ErrOptions) {
			t.Errorf("LoadTrust(%+v) = %v, want ErrOptions", o, err)
		}
	}
}
