// Package sigtest makes keyless signatures for tests: a virtual Sigstore held in memory (a
// Fulcio-like certificate authority and an RFC 3161 timestamp authority), certificates for an
// identity and an OIDC issuer, and the trusted_root.json that trusts it. Nothing is fetched.
//
// The certificates are made as sigstore-go's own test helper makes them (pkg/testing/ca,
// VirtualSigstore: GenerateRootCa, GenerateFulcioIntermediate, GenerateLeafCert, the TSA
// chain and generateTimestampingResponse), adapted here because that package cannot be built
// in this module: it imports rekor's PGP support, which needs golang.org/x/crypto/openpgp,
// gone from the x/crypto bale requires.
package sigtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	jsoncanonicalizer "github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/digitorus/timestamp"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// Sigstore is a virtual Sigstore: a root, a Fulcio intermediate that issues signing
// certificates, and a timestamp authority under the same root.
type Sigstore struct {
	root, fulcio, tsaCA, tsaLeaf *x509.Certificate
	fulcioKey, tsaKey            *ecdsa.PrivateKey
	start, end                   time.Time
	// logKey signs the transparency log's signed entry timestamps; logID is the sha256 of
	// its public key (DER), as Rekor's log id.
	logKey *ecdsa.PrivateKey
	logID  []byte
}

// NewSigstore makes a virtual Sigstore valid from 5 hours ago for 6 hours.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	now := time.Now()
	s := &Sigstore{start: now.Add(-5 * time.Hour), end: now.Add(time.Hour)}
	rootCert, rootKey := makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "sigstore", Organization: []string{"sigstore.dev"}},
		NotBefore:             now.Add(-5 * time.Hour),
		NotAfter:              now.Add(5 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil)
	s.root = rootCert
	s.fulcio, s.fulcioKey = makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "sigstore-intermediate", Organization: []string{"sigstore.dev"}},
		NotBefore:             now.Add(-2 * time.Minute),
		NotAfter:              now.Add(2 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, rootCert, rootKey)
	var tsaIntKey *ecdsa.PrivateKey
	s.tsaCA, tsaIntKey = makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "sigstore-tsa-intermediate", Organization: []string{"sigstore.dev"}},
		NotBefore:             now.Add(-2 * time.Minute),
		NotAfter:              now.Add(2 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, rootCert, rootKey)
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}}) // id-kp-timeStamping
	if err != nil {
		t.Fatal(err)
	}
	s.tsaLeaf, s.tsaKey = makeCert(t, &x509.Certificate{
		NotBefore:   now.Add(-5 * time.Minute),
		NotAfter:    now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		// The extended key usage again, critical, as RFC 3161 wants it.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}, s.tsaCA, tsaIntKey)
	if s.logKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&s.logKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	s.logID = id[:]
	return s
}

var serial int64

// makeCert makes a P-256 key and a certificate of it from template, issued by parent with
// parentKey (self-signed when parent is nil).
func makeCert(t testing.TB, template, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	template.SerialNumber = big.NewInt(serial)
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// Keyless signs msg (a statement) as identity (an email) and OIDC issuer with a short-lived
// certificate from s, as cosign sign-blob --new-bundle-format signs keyless: a sigstore
// bundle v0.3 whose messageSignature is over msg, with the certificate and an RFC 3161
// timestamp of s's timestamp authority (no transparency-log entry). It returns its JSON.
func (s *Sigstore) Keyless(t testing.TB, msg []byte, identity, issuer string) []byte {
	t.Helper()
	return s.KeylessIssuedBy(t, s, msg, identity, issuer)
}

// KeylessIssuedBy is Keyless with the certificate issued by ca's certificate authority (the
// timestamp is still s's).
func (s *Sigstore) KeylessIssuedBy(t testing.TB, ca *Sigstore, msg []byte, identity, issuer string) []byte {
	t.Helper()
	leaf, signer := ca.leaf(t, identity, issuer)
	sig, err := signer.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msg)
	return s.bundleJSON(t, leaf, sig, &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
		Signature:     sig,
	}})
}

// KeylessDSSE signs payload (an in-toto statement) of payloadType as identity and OIDC issuer,
// as cosign sign --new-bundle-format signs an image keyless: a sigstore bundle v0.3 whose DSSE
// envelope holds payload, with the certificate and an RFC 3161 timestamp of the signature. It
// returns its JSON.
func (s *Sigstore) KeylessDSSE(t testing.TB, payloadType string, payload []byte, identity, issuer string) []byte {
	t.Helper()
	leaf, signer := s.leaf(t, identity, issuer)
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
	sig, err := signer.SignMessage(strings.NewReader(pae))
	if err != nil {
		t.Fatal(err)
	}
	return s.bundleJSON(t, leaf, sig, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload:     payload,
		PayloadType: payloadType,
		Signatures:  []*protodsse.Signature{{Sig: sig}},
	}})
}

// Parts are a keyless signature in pieces, as cosign attach signature takes them: the
// certificate and its chain (PEM), the raw signature, an RFC 3161 timestamp response (DER)
// over the signature, and a Rekor bundle (--rekor-response: the signed entry timestamp of
// s's transparency log over a hashedrekord entry of the signature, as Rekor v1 answers).
type Parts struct {
	Cert, Chain, Signature, Timestamp, Rekor []byte
}

// KeylessParts signs msg (a simple-signing payload) as identity and OIDC issuer, with a
// certificate from s and a timestamp of s, and returns the pieces.
func (s *Sigstore) KeylessParts(t testing.TB, msg []byte, identity, issuer string) Parts {
	t.Helper()
	leaf, signer := s.leaf(t, identity, issuer)
	sig, err := signer.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(certs ...*x509.Certificate) []byte {
		var b bytes.Buffer
		for _, c := range certs {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return b.Bytes()
	}
	cert := pemOf(leaf)
	return Parts{Cert: cert, Chain: pemOf(s.fulcio, s.root), Signature: sig, Timestamp: s.timestamp(t, sig), Rekor: s.rekorBundle(t, msg, sig, cert)}
}

// rekorBundle is cosign's Rekor bundle of a hashedrekord v0.0.1 entry of sig over msg by the
// certificate cert (PEM), integrated now at log index 1, with s's signed entry timestamp:
// ECDSA over the sha256 of the canonical JSON of body, integratedTime, logIndex and logID.
func (s *Sigstore) rekorBundle(t testing.TB, msg, sig, cert []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(msg)
	body, err := json.Marshal(map[string]any{
		"apiVersion": "0.0.1", "kind": "hashedrekord",
		"spec": map[string]any{
			"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{"content": sig, "publicKey": map[string]any{"content": cert}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{
		"body":           base64.StdEncoding.EncodeToString(body),
		"integratedTime": time.Now().Unix(),
		"logIndex":       1,
		"logID":          hex.EncodeToString(s.logID),
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(canon)
	set, err := ecdsa.SignASN1(rand.Reader, s.logKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(map[string]any{"SignedEntryTimestamp": set, "Payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leaf makes a short-lived signing certificate of s's certificate authority for identity (an
// email) and OIDC issuer, as Fulcio issues one, and a signer with its key.
func (s *Sigstore) leaf(t testing.TB, identity, issuer string) (*x509.Certificate, signature.SignerVerifier) {
	t.Helper()
	now := time.Now()
	leaf, key := makeCert(t, &x509.Certificate{
		EmailAddresses: []string{identity},
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       now.Add(10 * time.Minute),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		// Fulcio's OIDC issuer extension (1.3.6.1.4.1.57264.1.1, the raw string).
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)}},
	}, s.fulcio, s.fulcioKey)
	signer, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, signer
}

// bundleJSON is the JSON of the sigstore bundle v0.3 of content signed with sig by the key of
// leaf, with s's timestamp over sig.
func (s *Sigstore) bundleJSON(t testing.TB, leaf *x509.Certificate, sig []byte, content any) []byte {
	t.Helper()
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: s.timestamp(t, sig)}},
			},
		},
	}
	switch c := content.(type) {
	case *protobundle.Bundle_MessageSignature:
		pb.Content = c
	case *protobundle.Bundle_DsseEnvelope:
		pb.Content = c
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// timestamp is s's RFC 3161 timestamp response over sig, now.
func (s *Sigstore) timestamp(t testing.TB, sig []byte) []byte {
	t.Helper()
	tsq, err := timestamp.CreateRequest(bytes.NewReader(sig), &timestamp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	req, err := timestamp.ParseRequest(tsq)
	if err != nil {
		t.Fatal(err)
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:   req.HashAlgorithm,
		HashedMessage:   req.HashedMessage,
		Time:            time.Now(),
		Policy:          asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
		ExtraExtensions: req.Extensions,
	}
	resp, err := ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TrustedRoot is the trusted_root.json that trusts s: its certificate authority, its
// timestamp authority and its transparency log (no CT log: its certificates carry no SCT).
func (s *Sigstore) TrustedRoot(t testing.TB) []byte {
	t.Helper()
	fulcio := &root.FulcioCertificateAuthority{Root: s.root, Intermediates: []*x509.Certificate{s.fulcio}, ValidityPeriodStart: s.start, ValidityPeriodEnd: s.end, URI: "https://fulcio.test"}
	tsa := &root.SigstoreTimestampingAuthority{Root: s.root, Intermediates: []*x509.Certificate{s.tsaCA}, Leaf: s.tsaLeaf, ValidityPeriodStart: s.start, ValidityPeriodEnd: s.end, URI: "https://tsa.test"}
	tlog := &root.TransparencyLog{BaseURL: "https://rekor.test", ID: s.logID, ValidityPeriodStart: s.start, ValidityPeriodEnd: s.end,
		HashFunc: crypto.SHA256, PublicKey: &s.logKey.PublicKey, SignatureHashFunc: crypto.SHA256}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, nil, []root.TimestampingAuthority{tsa},
		map[string]*root.TransparencyLog{hex.EncodeToString(s.logID): tlog})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
