package bundlesig

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/bale-project/bale/catalog"
)

// ErrUntrusted marks a bundle that fails signature verification: a signature that does not
// verify or is over another bundle, a signature by no signer trusted, or, with signers given,
// a bundle without any signature. Callers test it (bale exits 6).
var ErrUntrusted = errors.New("bundle signature")

// Found is one signature found for a bundle: a file beside it, or a member of it.
type Found struct {
	Name string // the file or member it came from
	Raw  []byte // the sigstore bundle JSON
}

// Signature is one signature that verified.
type Signature struct {
	// Source is the file or member the signature came from.
	Source string `json:"source"`
	// Key is the fingerprint of the public key that signed (Fingerprint); KeyFile the --key
	// file that holds it. Empty for a certificate.
	Key     string `json:"key,omitempty"`
	KeyFile string `json:"keyFile,omitempty"`
	// Identity and Issuer are a certificate's subject alternative name and OIDC issuer.
	Identity string `json:"identity,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	// Time is the earliest time a transparency log or timestamp authority vouches for;
	// nil when the signature has none (or none was checked: keys without --trusted-root).
	Time *time.Time `json:"time,omitempty"`
	// Trusted is true when a key or identity given verified it. Without any, a signature is
	// only checked for being over this bundle (and by its certificate's key): anyone may
	// have made it.
	Trusted bool `json:"trusted"`
	// Covers is what the signature binds: the bundle id, its bases and volumes.
	Covers Covers `json:"covers"`
}

// Signer names who signed, for people (see Trusted: without signers given, who the signature
// claims).
func (s Signature) Signer() string {
	var b strings.Builder
	switch {
	case s.Identity != "" || s.Issuer != "":
		fmt.Fprintf(&b, "certificate identity %s, issuer %s", s.Identity, s.Issuer)
	case s.KeyFile != "":
		fmt.Fprintf(&b, "key %s (%s)", s.Key, s.KeyFile)
	case s.Key != "":
		fmt.Fprintf(&b, "key %s", s.Key)
	default:
		b.WriteString("an unnamed key")
	}
	return b.String()
}

// Failure is one signature that was refused, and why.
type Failure struct {
	Source string
	Reason string
}

// Error is every signature a check refused, or a bundle without a signature when signers
// were given; it wraps ErrUntrusted.
type Error struct {
	ID       string // the bundle's id
	Unsigned bool   // no signature at all
	Failures []Failure
}

func (e *Error) Error() string {
	if e.Unsigned {
		return fmt.Sprintf("bundle %s is not signed (no signature in it or beside it), and a signer is required (--key, --certificate-identity, or the site policy)", e.ID)
	}
	lines := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		lines[i] = fmt.Sprintf("  %s: %s", f.Source, f.Reason)
	}
	return fmt.Sprintf("bundle %s: %d signature(s) refused:\n%s", e.ID, len(e.Failures), strings.Join(lines, "\n"))
}

// Unwrap makes errors.Is(err, ErrUntrusted) true.
func (e *Error) Unwrap() error { return ErrUntrusted }

// maxSignature bounds a signature's size: a sigstore bundle is a few kilobytes.
const maxSignature = 1 << 20

// Verify checks the signatures found of the bundle whose catalog is c against t, offline:
// every one must be a sigstore bundle whose messageSignature is over the statement of c, and
// verify with one of t's keys or identities (or, t nil, with its own certificate, if any).
// It returns them, or an *Error (ErrUntrusted) naming each that did not; with t given, a
// bundle without any signature fails too.
func Verify(c *catalog.Catalog, found []Found, t *Trust) ([]Signature, error) {
	return VerifyCovers(CoversOf(c), found, t)
}

// VerifyCovers is Verify against the statement that binds cv (StatementOf): for a bundle
// whose catalog was not read (bale list of a format-5 bundle: cv from its list member).
func VerifyCovers(cv Covers, found []Found, t *Trust) ([]Signature, error) {
	stmt, err := StatementOf(cv)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		if t != nil {
			return nil, &Error{ID: cv.ID, Unsigned: true}
		}
		return nil, nil
	}
	var (
		good   []Signature
		failed []Failure
	)
	for _, f := range found {
		s, err := verifyOne(stmt, f, t)
		if err != nil {
			failed = append(failed, Failure{Source: f.Name, Reason: err.Error()})
			continue
		}
		s.Source, s.Covers = f.Name, cv
		good = append(good, *s)
	}
	if len(failed) > 0 {
		return good, &Error{ID: cv.ID, Failures: failed}
	}
	return good, nil
}

// verifyOne checks one signature against the statement stmt.
func verifyOne(stmt []byte, f Found, t *Trust) (*Signature, error) {
	if len(f.Raw) > maxSignature {
		return nil, fmt.Errorf("%d bytes, more than a signature holds", len(f.Raw))
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(f.Raw); err != nil {
		return nil, fmt.Errorf("not a sigstore bundle: %w", err)
	}
	ms := b.GetMessageSignature()
	if ms == nil || ms.GetMessageDigest() == nil {
		return nil, fmt.Errorf("not a message signature (cosign sign-blob) over a statement")
	}
	if err := sameDigest(stmt, ms); err != nil {
		return nil, err
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, err
	}
	cert := vc.Certificate()
	if t == nil {
		return verifyUntrusted(stmt, &b, ms.GetSignature())
	}
	if cert == nil {
		if len(t.keys) == 0 {
			return nil, fmt.Errorf("signed with a key, and only certificate identities are trusted")
		}
		var why []string
		for _, k := range t.keys {
			res, err := k.verify(&b, stmt, t.root)
			if err != nil {
				why = append(why, fmt.Sprintf("%s: %v", k.name, err))
				continue
			}
			return &Signature{Key: k.fingerprint, KeyFile: k.name, Time: earliest(res), Trusted: true}, nil
		}
		return nil, fmt.Errorf("verifies with none of the keys given (%s)", strings.Join(why, "; "))
	}
	if len(t.identities) == 0 {
		return nil, fmt.Errorf("signed with a certificate (identity %s), and only keys are trusted (give --certificate-identity, --certificate-oidc-issuer and --trusted-root)", summary(cert).SubjectAlternativeName)
	}
	opts, err := verifierOptions(&b, t.root, true)
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(t.root, opts...)
	if err != nil {
		return nil, err
	}
	pol := []verify.PolicyOption{}
	for _, id := range t.identities {
		pol = append(pol, verify.WithCertificateIdentity(id))
	}
	res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(stmt)), pol...))
	if err != nil {
		return nil, err
	}
	s := &Signature{Time: earliest(res), Trusted: true}
	if res.Signature != nil && res.Signature.Certificate != nil {
		s.Identity, s.Issuer = res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer
	}
	return s, nil
}

// verifyUntrusted is verifyOne without signers: the digest matched; a certificate's key must
// verify the signature over stmt (its chain is not checked: no trusted root). A key signature
// can only be named by its hint.
func verifyUntrusted(stmt []byte, b *bundle.Bundle, sig []byte) (*Signature, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, err
	}
	if cert := vc.Certificate(); cert != nil {
		v, err := signature.LoadDefaultVerifier(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("certificate key: %w", err)
		}
		if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(stmt)); err != nil {
			return nil, fmt.Errorf("does not verify with its own certificate's key: %w", err)
		}
		sum := summary(cert)
		return &Signature{Identity: sum.SubjectAlternativeName, Issuer: sum.Issuer}, nil
	}
	s := &Signature{}
	if pk := vc.PublicKey(); pk != nil {
		s.Key = hintFingerprint(pk.Hint())
	}
	return s, nil
}

// sameDigest checks that the digest a signature records is that of stmt: a signature over
// another bundle's statement (moved from it), or over a changed one, fails here.
func sameDigest(stmt []byte, ms *protocommon.MessageSignature) error {
	var h crypto.Hash
	switch ms.GetMessageDigest().GetAlgorithm() {
	case protocommon.HashAlgorithm_SHA2_256:
		h = crypto.SHA256
	case protocommon.HashAlgorithm_SHA2_384:
		h = crypto.SHA384
	case protocommon.HashAlgorithm_SHA2_512:
		h = crypto.SHA512
	default:
		return fmt.Errorf("message digest algorithm %s is not one bale knows", ms.GetMessageDigest().GetAlgorithm())
	}
	d := h.New()
	d.Write(stmt)
	if !bytes.Equal(d.Sum(nil), ms.GetMessageDigest().GetDigest()) {
		return fmt.Errorf("signs another statement than this bundle's (a signature of another bundle, or a changed one)")
	}
	return nil
}

// earliest is the earliest verified time of res that is not the current time; nil if none.
func earliest(res *verify.VerificationResult) *time.Time {
	var t *time.Time
	for _, ts := range res.VerifiedTimestamps {
		if ts.Type == "CurrentTime" {
			continue
		}
		if t == nil || ts.Timestamp.Before(*t) {
			v := ts.Timestamp.UTC()
			t = &v
		}
	}
	return t
}

// summary is cert's summary (identity, issuer); empty fields if it cannot be read.
func summary(cert *x509.Certificate) certificate.Summary {
	s, _ := certificate.SummarizeCertificate(cert)
	return s
}

// hintFingerprint shows a bundle's public key hint as a fingerprint when it is one (cosign's
// and bale's hints are base64 of the key's sha256), else as it is.
func hintFingerprint(hint string) string {
	if sum, err := base64.StdEncoding.DecodeString(hint); err == nil && len(sum) == sha256.Size {
		return "sha256:" + hex.EncodeToString(sum)
	}
	return "hint " + strconv.Quote(hint)
}
