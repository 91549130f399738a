// Package imagesig checks, offline, that images carry a valid cosign signature among the
// referrers their layout (a bundle, registry storage, a live registry) holds, made by one of
// the public keys a site trusts or, keyless (LoadSigners), with a certificate of a trusted
// root that names an identity and OIDC issuer it trusts (the certificate checked at the time
// an RFC 3161 timestamp or log entry in the signature vouches for, offline). Two forms are
// accepted, as cosign v2 writes them:
//
//   - the tag scheme <repo>:sha256-<hex>.sig: a manifest whose layers are simple-signing
//     payloads (application/vnd.dev.cosign.simplesigning.v1+json), each with its signature
//     in the annotation dev.cosignproject.cosign/signature (keyless: its certificate and
//     timestamp or Rekor bundle in dev.sigstore.cosign/certificate, /rfc3161timestamp and
//     /bundle); the payload's
//     critical.image.docker-manifest-digest must be the image's digest;
//   - a sigstore bundle (cosign sign --new-bundle-format): an OCI 1.1 referrer of artifact
//     type application/vnd.dev.sigstore.bundle.v0.3+json whose DSSE envelope holds an in-toto
//     statement of predicate type https://sigstore.dev/cosign/sign/v1 naming the image's
//     digest as its subject.
//
// The digest checked is the image's top-level one, the manifest a tag points at: for a
// multi-arch image the index, which is what cosign signs for IMAGE:TAG by default. The
// cryptography and the bundle format are sigstore's (github.com/sigstore/sigstore and
// github.com/sigstore/sigstore-go); nothing is fetched, no transparency log is asked.
package imagesig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// ErrKey marks a key file that cannot be used: unreadable, or no PEM public key.
var ErrKey = errors.New("image signature key")

// Keys are the public keys, and the keyless identity (LoadSigners), any one of which may
// have signed an image.
type Keys struct {
	keys    []key
	keyless *keyless
}

// key is one trusted public key, as verifiers of simple-signing signatures and of sigstore
// bundles, one of each for every hash the key may have signed with (KeyVerifiers).
type key struct {
	name    string // the file it came from
	sigs    []signature.Verifier
	bundles []*verify.Verifier
}

// verifySignature says whether sig is k's signature of payload under any of its hashes.
func (k key) verifySignature(sig, payload []byte) bool {
	for _, v := range k.sigs {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			return true
		}
	}
	return false
}

// verifyBundle verifies b against policy with k under each of its hashes: the first result
// that verifies, or every error.
func (k key) verifyBundle(b *bundle.Bundle, policy verify.PolicyBuilder) (*verify.VerificationResult, error) {
	var errs []error
	for _, v := range k.bundles {
		res, err := v.Verify(b, policy)
		if err == nil {
			return res, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// LoadKeys reads PEM public keys (cosign.pub as cosign generate-key-pair writes it, or any PEM
// PKIX ECDSA, Ed25519 or RSA public key) from the files at paths.
func LoadKeys(paths ...string) (*Keys, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no key files: %w", ErrKey)
	}
	k := &Keys{}
	for _, p := range paths {
		pub, err := ReadPublicKey(p)
		if err != nil {
			return nil, err
		}
		kk, err := parseKey(p, pub)
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, kk)
	}
	return k, nil
}

// ReadPublicKey reads the PEM public key in the file at path: cosign.pub as cosign
// generate-key-pair writes it, or any PEM PKIX ECDSA, Ed25519 or RSA public key. Signed
// bundles (archive/bundlesig) load their --key files with it too.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
	}
	return pub, nil
}

// KeyVerifiers are the verifiers of public key pub, one for each hash stock cosign may have
// signed with: SHA-256 (cosign's default for keys, and what bale signs with; ECDSA and RSA
// PKCS#1 v1.5), the key's own default where it differs (cosign sign and sign-blob sign with
// P-384 over SHA-384 and P-521 over SHA-512; cosign verify then needs
// --signature-digest-algorithm), and for Ed25519 pure and Ed25519ph (cosign's, with a
// transparency log). Every one of them is a sound check of a signature by pub.
func KeyVerifiers(pub crypto.PublicKey) ([]signature.Verifier, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	out := []signature.Verifier{v}
	if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve != elliptic.P256() {
		if v, err := signature.LoadDefaultVerifier(pub); err == nil {
			out = append(out, v)
		}
	}
	if _, ok := pub.(ed25519.PublicKey); ok {
		if v, err := signature.LoadDefaultVerifier(pub, options.WithED25519ph()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// KeyMaterial is trusted material holding only v, for sigstore-go's verifier: a bundle names
// its key by a hint only, so every hint maps to v, which either verifies the signature or
// not. A key has no validity period offline.
func KeyMaterial(v signature.Verifier) root.TrustedMaterial {
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
	})
}

// parseKey makes the verifiers of public key pub, read from name (KeyVerifiers).
func parseKey(name string, pub crypto.PublicKey) (key, error) {
	vs, err := KeyVerifiers(pub)
	if err != nil {
		return key{}, fmt.Errorf("%w: %s: %w", ErrKey, name, err)
	}
	k := key{name: name, sigs: vs}
	for _, v := range vs {
		// No timestamps: a key has none offline.
		bv, err := verify.NewVerifier(KeyMaterial(v), verify.WithNoObserverTimestamps())
		if err != nil {
			return key{}, fmt.Errorf("%w: %s: %w", ErrKey, name, err)
		}
		k.bundles = append(k.bundles, bv)
	}
	return k, nil
}

// Names are the files the keys came from, in the order given, and the keyless identity.
func (k *Keys) Names() []string {
	out := make([]string, len(k.keys))
	for i, kk := range k.keys {
		out[i] = kk.name
	}
	if k.keyless != nil {
		out = append(out, k.keyless.name)
	}
	return out
}
