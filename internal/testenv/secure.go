package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Secure is what StartSecureRegistry sets up: a self-signed certificate for 127.0.0.1 and
// localhost (in CertDir as ca.crt, the layout skopeo's and bale's --cert-dir read) and one
// htpasswd user.
type Secure struct {
	CertDir        string
	User, Password string
	// Token, for StartTokenRegistry, is the token server that authenticates users instead
	// of htpasswd.
	Token                       *TokenServer
	certFile, keyFile, htpasswd string
}

// tlsConfig adds TLS (certificate and key) to registryConfig; one of the auth fragments follows.
const tlsConfig = `  tls:
    certificate: %q
    key: %q
`

// htpasswdConfig is htpasswd basic auth (the file).
const htpasswdConfig = `auth:
  htpasswd:
    realm: bale-test
    path: %q
`

// StartSecureRegistry is StartRegistry with TLS (a certificate generated for 127.0.0.1 and
// trusted by nothing but CertDir) and htpasswd basic auth for user:password.
func StartSecureRegistry(t testing.TB, root, user, password string) *Registry {
	t.Helper()
	dir := t.TempDir()
	s, err := newSecure(dir, user, password)
	if err != nil {
		t.Fatalf("secure registry: %v", err)
	}
	return startWith(t, root, s)
}

// NewCert writes a self-signed certificate for 127.0.0.1 and localhost and its key into dir,
// and the certificate again as CertDir/ca.crt (for --cert-dir), for a server the test starts
// itself.
func NewCert(t testing.TB) (certFile, keyFile, certDir string) {
	t.Helper()
	s, err := newSecure(t.TempDir(), "unused", "unused")
	if err != nil {
		t.Fatal(err)
	}
	return s.certFile, s.keyFile, s.CertDir
}

// selfSigned makes a P-256 key and a certificate of tmpl signed by it, valid from an hour ago
// for a day.
func selfSigned(tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return key, der, err
}

func newSecure(dir, user, password string) (*Secure, error) {
	key, der, err := selfSigned(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "bale test registry"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	s := &Secure{CertDir: filepath.Join(dir, "certs"), User: user, Password: password,
		certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key"), htpasswd: filepath.Join(dir, "htpasswd")}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(s.CertDir, 0o755); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	for p, b := range map[string][]byte{
		s.certFile:                         certPEM,
		filepath.Join(s.CertDir, "ca.crt"): certPEM,
		s.keyFile:                          pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		s.htpasswd:                         fmt.Appendf(nil, "%s:%s\n", user, hash),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// client trusts s's certificate only.
func (s *Secure) client() (*http.Client, error) {
	pem, err := os.ReadFile(s.certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   10 * time.Second,
	}, nil
}
