package imagesig

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/bale-project/bale/layout"
)

// ErrOptions marks keyless options that are incomplete (bale exits 2).
var ErrOptions = errors.New("image signature options")

// The annotations of a keyless simple-signing layer, as cosign sign writes them.
const (
	// CertificateAnnotation holds the PEM signing certificate.
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	// TimestampAnnotation holds, as JSON {"SignedRFC3161Timestamp": base64}, an RFC 3161
	// timestamp response over the raw signature.
	TimestampAnnotation = "dev.sigstore.cosign/rfc3161timestamp"
	// RekorAnnotation holds the Rekor bundle: a transparency-log entry of the signature and
	// the log's signed entry timestamp over it.
	RekorAnnotation = "dev.sigstore.cosign/bundle"
)

// Keyless names whom a site trusts to sign images without a key: a certificate identity
// (subject alternative name) and OIDC issuer, each exact or a regexp, and the sigstore
// trusted_root.json whose certificate authorities issued the certificates; the timestamp or
// transparency-log proof a signature carries is checked against it, offline.
type Keyless struct {
	Identity, IdentityRegexp, Issuer, IssuerRegexp string
	TrustedRoot                                    string
}

// Empty reports whether o names no identity.
func (o Keyless) Empty() bool {
	return o.Identity == "" && o.IdentityRegexp == "" && o.Issuer == "" && o.IssuerRegexp == ""
}

// keyless is a loaded Keyless.
type keyless struct {
	name string // the identity and issuer, for people
	id   verify.CertificateIdentity
	root *root.TrustedRoot
}

// LoadSigners loads the public keys in the files at keyPaths and the keyless identity kl
// (either may be empty): any of them may have signed. It is nil when both are empty.
func LoadSigners(keyPaths []string, kl Keyless) (*Keys, error) {
	if len(keyPaths) == 0 && kl.Empty() {
		return nil, nil
	}
	k := &Keys{}
	if len(keyPaths) > 0 {
		var err error
		if k, err = LoadKeys(keyPaths...); err != nil {
			return nil, err
		}
	}
	if kl.Empty() {
		return k, nil
	}
	if (kl.Identity == "") == (kl.IdentityRegexp == "") {
		return nil, fmt.Errorf("%w: keyless image verification needs exactly one of --image-certificate-identity and --image-certificate-identity-regexp", ErrOptions)
	}
	if (kl.Issuer == "") == (kl.IssuerRegexp == "") {
		return nil, fmt.Errorf("%w: keyless image verification needs exactly one of --image-certificate-oidc-issuer and --image-certificate-oidc-issuer-regexp", ErrOptions)
	}
	if kl.TrustedRoot == "" {
		return nil, fmt.Errorf("%w: keyless image verification needs --trusted-root (a sigstore trusted_root.json; nothing is fetched)", ErrOptions)
	}
	id, err := verify.NewShortCertificateIdentity(kl.Issuer, kl.IssuerRegexp, kl.Identity, kl.IdentityRegexp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	tr, err := root.NewTrustedRootFromPath(kl.TrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root %s: %w", ErrOptions, kl.TrustedRoot, err)
	}
	name := fmt.Sprintf("certificate identity %s%s, issuer %s%s", kl.Identity, kl.IdentityRegexp, kl.Issuer, kl.IssuerRegexp)
	k.keyless = &keyless{name: name, id: id, root: tr}
	return k, nil
}

// verify verifies b against the trusted root and the identity, with policy's artifact: the
// certificate must chain to a certificate authority of the root, be valid at a time the
// signature's transparency-log entry or RFC 3161 timestamp (checked offline) vouches for, and
// name the identity and issuer.
func (kl *keyless) verify(b *bundle.Bundle, artifact verify.ArtifactPolicyOption) (*verify.VerificationResult, error) {
	entries, err := b.TlogEntries()
	if err != nil {
		return nil, err
	}
	stamps, err := b.Timestamps()
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 && len(stamps) == 0 {
		return nil, fmt.Errorf("no transparency-log entry and no timestamp: its certificate cannot be checked offline")
	}
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if len(entries) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	if len(kl.root.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(kl.root, opts...)
	if err != nil {
		return nil, err
	}
	return v.Verify(b, verify.NewPolicy(artifact, verify.WithCertificateIdentity(kl.id)))
}

// checkLayer verifies the keyless simple-signing layer l (its signature sig, its payload raw)
// against the identity: its certificate, RFC 3161 timestamp and Rekor bundle annotations are
// read into a sigstore bundle (v0.1: a certificate chain, a log entry with its inclusion
// promise) that sigstore-go verifies: the log's signed entry timestamp against the root's
// transparency logs, the entry against the signature and certificate. nil when it verifies.
func (kl *keyless) checkLayer(l layout.Descriptor, sig, raw []byte) error {
	certPEM, ok := l.Annotations[CertificateAnnotation]
	if !ok {
		return fmt.Errorf("no certificate (%s): not a keyless signature", CertificateAnnotation)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(certPEM))
	if err != nil || len(certs) == 0 {
		return fmt.Errorf("certificate annotation: no PEM certificate (%v)", err)
	}
	sum := sha256.Sum256(raw)
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: certs[0].Raw}}, // the chain is the trusted root's
		}},
		TimestampVerificationData: &protobundle.TimestampVerificationData{},
	}
	if ts, ok := l.Annotations[TimestampAnnotation]; ok {
		var v struct{ SignedRFC3161Timestamp []byte }
		if err := json.Unmarshal([]byte(ts), &v); err != nil {
			return fmt.Errorf("timestamp annotation: %w", err)
		}
		vm.TimestampVerificationData.Rfc3161Timestamps = []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: v.SignedRFC3161Timestamp}}
	}
	if rb, ok := l.Annotations[RekorAnnotation]; ok {
		e, err := rekorEntry([]byte(rb))
		if err != nil {
			return fmt.Errorf("the Rekor bundle annotation: %w", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{e}
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	})
	if err != nil {
		return err
	}
	_, err = kl.verify(b, verify.WithArtifact(bytes.NewReader(raw)))
	return err
}

// rekorEntry is cosign's Rekor bundle annotation as a transparency-log entry whose inclusion
// promise is the signed entry timestamp (sigstore-go checks it and the entry).
func rekorEntry(raw []byte) (*protorekor.TransparencyLogEntry, error) {
	var rb struct {
		SignedEntryTimestamp []byte
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		}
	}
	if err := json.Unmarshal(raw, &rb); err != nil {
		return nil, err
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("logID: %w", err)
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}
