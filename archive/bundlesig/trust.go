package bundlesig

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/bale-project/bale/layout/imagesig"
)

// ErrOptions marks a set of trust options that cannot be used together or is incomplete
// (bale exits 2).
var ErrOptions = errors.New("signature options")

// TrustOptions name whom a site trusts to sign bundles: public keys, or certificate
// identities (keyless signing) with the trusted root that issued them.
type TrustOptions struct {
	// Keys are PEM public key files (cosign.pub, or PKIX ECDSA, Ed25519, RSA); any may have signed.
	Keys []string
	// Identity (exact) or IdentityRegexp matches a certificate's subject alternative name;
	// Issuer or IssuerRegexp its OIDC issuer. Keyless needs one of each and TrustedRoot.
	Identity, IdentityRegexp, Issuer, IssuerRegexp string
	// Identities are more keyless signers (a site policy lists them).
	Identities []Identity
	// TrustedRoot is a sigstore trusted_root.json: the certificate authorities, transparency
	// logs and timestamp authorities a keyless signature is checked against, offline. With
	// keys, a transparency-log entry or timestamp a signature carries is checked against it.
	TrustedRoot string
}

// Empty reports whether o names no signer: signatures are then checked only for being over
// this bundle and, for a certificate, made by its key.
func (o TrustOptions) Empty() bool {
	return len(o.Keys) == 0 && len(o.Identities) == 0 && o.Identity == "" && o.IdentityRegexp == "" && o.Issuer == "" && o.IssuerRegexp == ""
}

// Trust is whom a site trusts: the loaded TrustOptions.
type Trust struct {
	keys       []*trustedKey
	identities []verify.CertificateIdentity
	root       *root.TrustedRoot
}

// LoadTrust loads o: nil when o is empty (and names no trusted root).
func LoadTrust(o TrustOptions) (*Trust, error) {
	if o.Empty() {
		if o.TrustedRoot != "" {
			return nil, fmt.Errorf("%w: a trusted root was given without --key or --certificate-identity", ErrOptions)
		}
		return nil, nil
	}
	t := &Trust{}
	for _, p := range o.Keys {
		pub, err := imagesig.ReadPublicKey(p)
		if err != nil {
			return nil, err
		}
		k, err := newTrustedKey(p, pub)
		if err != nil {
			return nil, err
		}
		t.keys = append(t.keys, k)
	}
	ids := o.Identities
	if o.Identity != "" || o.IdentityRegexp != "" || o.Issuer != "" || o.IssuerRegexp != "" {
		ids = append([]Identity{{o.Identity, o.IdentityRegexp, o.Issuer, o.IssuerRegexp}}, ids...)
	}
	for _, i := range ids {
		if (i.Identity == "") == (i.IdentityRegexp == "") {
			return nil, fmt.Errorf("%w: keyless verification needs exactly one of --certificate-identity and --certificate-identity-regexp", ErrOptions)
		}
		if (i.Issuer == "") == (i.IssuerRegexp == "") {
			return nil, fmt.Errorf("%w: keyless verification needs exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp", ErrOptions)
		}
		if o.TrustedRoot == "" {
			return nil, fmt.Errorf("%w: keyless verification needs --trusted-root (a sigstore trusted_root.json; nothing is fetched)", ErrOptions)
		}
		id, err := verify.NewShortCertificateIdentity(i.Issuer, i.IssuerRegexp, i.Identity, i.IdentityRegexp)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOptions, err)
		}
		t.identities = append(t.identities, id)
	}
	if o.TrustedRoot != "" {
		tr, err := root.NewTrustedRootFromPath(o.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted root %s: %w", ErrOptions, o.TrustedRoot, err)
		}
		t.root = tr
	}
	return t, nil
}

// trustedKey is one public key a site trusts, with a verifier for each hash it may have signed
// with (imagesig.KeyVerifiers: SHA-256 as bale signs, the key's own default as cosign
// sign-blob signs with P-384, Ed25519 pure and Ed25519ph).
type trustedKey struct {
	name        string // the file it came from
	fingerprint string
	materials   []root.TrustedMaterial
}

func newTrustedKey(name string, pub crypto.PublicKey) (*trustedKey, error) {
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", imagesig.ErrKey, name, err)
	}
	k := &trustedKey{name: name, fingerprint: fp}
	verifiers, err := imagesig.KeyVerifiers(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", imagesig.ErrKey, name, err)
	}
	for _, v := range verifiers {
		k.materials = append(k.materials, imagesig.KeyMaterial(v))
	}
	return k, nil
}

// verify verifies b, over the statement stmt, with k: a transparency-log entry or timestamp b
// carries is checked against tr when given, and ignored otherwise.
func (k *trustedKey) verify(b *bundle.Bundle, stmt []byte, tr *root.TrustedRoot) (*verify.VerificationResult, error) {
	opts, err := verifierOptions(b, tr, false)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, m := range k.materials {
		if tr != nil {
			m = root.TrustedMaterialCollection{m, tr}
		}
		v, err := verify.NewVerifier(m, opts...)
		if err != nil {
			return nil, err
		}
		res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(stmt)), verify.WithKey()))
		if err == nil {
			return res, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// verifierOptions are sigstore-go's verifier options for b: with a trusted root, its
// transparency-log entries must verify (inclusion proof and signed entry timestamp, offline)
// and give, or its RFC 3161 timestamps give, at least one verified time; a certificate must
// have one (its validity is checked at that time), and an SCT when the root lists CT logs.
// Without a trusted root (keys only), no time is checked.
func verifierOptions(b *bundle.Bundle, tr *root.TrustedRoot, keyless bool) ([]verify.VerifierOption, error) {
	if tr == nil {
		if keyless {
			return nil, fmt.Errorf("a certificate needs a trusted root")
		}
		return []verify.VerifierOption{verify.WithNoObserverTimestamps()}, nil
	}
	entries, err := b.TlogEntries()
	if err != nil {
		return nil, err
	}
	stamps, err := b.Timestamps()
	if err != nil {
		return nil, err
	}
	var opts []verify.VerifierOption
	if len(entries) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	switch {
	case len(entries) > 0 || len(stamps) > 0:
		opts = append(opts, verify.WithObserverTimestamps(1))
	case keyless:
		return nil, fmt.Errorf("the signature has no transparency-log entry and no timestamp: its certificate cannot be checked offline")
	default:
		opts = append(opts, verify.WithNoObserverTimestamps())
	}
	if keyless && len(tr.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	return opts, nil
}
