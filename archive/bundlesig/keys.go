package bundlesig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrKey marks a private key file that cannot be used: unreadable, not a key bale knows,
// or a cosign key whose password does not decrypt it.
var ErrKey = errors.New("signing key")

// The PEM types of cosign's encrypted private keys (cosign generate-key-pair writes the first).
const (
	sigstoreKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// PasswordEnv is the variable cosign reads a key's password from, and bale too.
const PasswordEnv = "COSIGN_PASSWORD"

// Signer is a private key that signs statements: sigstore's SignerVerifier for the key, with
// SHA-256 (ECDSA, RSA PKCS#1 v1.5) or pure Ed25519: what stock cosign verify-blob --key checks
// by default (it verifies a P-384 signature over a SHA-256 digest, too).
type Signer struct {
	name string
	sv   signature.SignerVerifier
	pub  crypto.PublicKey
	hint []byte
}

// LoadSigner reads the private key in the file at path: a cosign key (cosign
// generate-key-pair, encrypted; password asks for its password, as cosign reads
// COSIGN_PASSWORD) or a PEM PKCS#8 ECDSA P-256/P-384, Ed25519 or RSA key (also PKCS#1 RSA and
// SEC 1 EC keys). password is called only for an encrypted key.
func LoadSigner(path string, password func() ([]byte, error)) (*Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrKey, path)
	}
	var priv crypto.PrivateKey
	switch block.Type {
	case sigstoreKeyType, cosignKeyType:
		if password == nil {
			return nil, fmt.Errorf("%w: %s is encrypted and no password was given", ErrKey, path)
		}
		pass, err := password()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: password: %w", ErrKey, path, err)
		}
		der, err := encrypted.Decrypt(block.Bytes, pass)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: decrypting the cosign key (wrong %s?): %w", ErrKey, path, PasswordEnv, err)
		}
		if priv, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
		}
	default:
		var pf cryptoutils.PassFunc // an encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY")
		if password != nil {
			pf = func(bool) ([]byte, error) { return password() }
		}
		if priv, err = cryptoutils.UnmarshalPEMToPrivateKey(raw, pf); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
		}
	}
	s, err := NewSigner(path, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
	}
	return s, nil
}

// NewSigner makes a Signer of private key priv (ECDSA, Ed25519 or RSA), called name in
// messages.
func NewSigner(name string, priv crypto.PrivateKey) (*Signer, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	case ed25519.PrivateKey:
	case *ed25519.PrivateKey:
		priv = *k
	default:
		return nil, fmt.Errorf("a %T key, not ECDSA, Ed25519 or RSA", priv)
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}
	sum, _ := hex.DecodeString(fp[len("sha256:"):])
	// The hint is cosign's: base64 of the sha256 of the public key's DER.
	return &Signer{name: name, sv: sv, pub: pub, hint: []byte(base64.StdEncoding.EncodeToString(sum))}, nil
}

// Name is the file the key came from.
func (s *Signer) Name() string { return s.name }

// Fingerprint is the key's fingerprint (see Fingerprint).
func (s *Signer) Fingerprint() string {
	fp, _ := Fingerprint(s.pub) // checked in NewSigner
	return fp
}

// Fingerprint is "sha256:" and the hex of the sha256 of the public key's PKIX DER: what bale
// shows as a key signer, and, base64, the hint cosign writes in a bundle.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// sign signs data with the key (sigstore's SignerVerifier: it hashes data with SHA-256, or
// not for pure Ed25519) and returns the signature and data's SHA-256, the message digest the
// bundle records.
func (s *Signer) sign(data []byte) (sig, sum []byte, err error) {
	if sig, err = s.sv.SignMessage(bytes.NewReader(data)); err != nil {
		return nil, nil, err
	}
	d := sha256.Sum256(data)
	return sig, d[:], nil
}
