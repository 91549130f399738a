package testenv

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Token auth as Harbor and Docker Hub run it (Distribution's "token" auth): the registry
// answers 401 with a Bearer challenge naming a realm; the client fetches a JWT there with
// its basic credentials and the scopes it needs, then sends it as a Bearer token.
const (
	tokenService    = "bale-test-registry"
	tokenIssuerName = "bale-test-token-issuer"
)

// tokenConfig is token auth (after tlsConfig).
const tokenConfig = `auth:
  token:
    realm: %q
    service: %q
    issuer: %q
    rootcertbundle: %q
`

// TokenServer issues registry tokens to one user, on https://127.0.0.1 (httptest), for as long as
// the test runs: GET /token?service=...&scope=... with basic auth answers a JWT signed with
// ES256 by a key whose self-signed certificate is the registry's rootcertbundle, granting
// every scope asked for.
type TokenServer struct {
	srv            *httptest.Server
	key            *ecdsa.PrivateKey
	certDER        []byte
	certFile       string
	user, password string
	realmHost      string
	issued         atomic.Int64
	refused        atomic.Int64
}

// StartTokenRegistry is StartSecureRegistry with token auth: a TokenServer for
// user:password instead of htpasswd, whose realm the registry names by realmHost
// ("localhost" or "127.0.0.1"). Registry.Secure.Token counts the tokens it issued.
func StartTokenRegistry(t testing.TB, root, user, password, realmHost string) *Registry {
	t.Helper()
	dir := t.TempDir()
	s, err := newSecure(dir, user, password)
	if err != nil {
		t.Fatalf("token registry: %v", err)
	}
	if s.Token, err = newTokenServer(dir, s, realmHost); err != nil {
		t.Fatalf("token server: %v", err)
	}
	t.Cleanup(s.Token.srv.Close)
	return startWith(t, root, s)
}

// newTokenServer starts a token server over https with the registry's certificate (clients
// refuse a plain http realm for an https registry).
func newTokenServer(dir string, s *Secure, realmHost string) (*TokenServer, error) {
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, err
	}
	key, der, err := selfSigned(&x509.Certificate{Subject: pkix.Name{CommonName: tokenIssuerName}, KeyUsage: x509.KeyUsageDigitalSignature})
	if err != nil {
		return nil, err
	}
	ts := &TokenServer{key: key, certDER: der, certFile: filepath.Join(dir, "token-root.crt"), user: s.User, password: s.Password, realmHost: realmHost}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(ts.serveToken)) // 127.0.0.1:0
	ts.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.srv.StartTLS()
	return ts, nil
}

// Realm is the URL the registry's challenge names.
func (ts *TokenServer) Realm() string {
	_, port, _ := net.SplitHostPort(ts.srv.Listener.Addr().String())
	return "https://" + net.JoinHostPort(ts.realmHost, port) + "/token"
}

// Issued is how many tokens the server gave out; Refused how many requests it turned down.
func (ts *TokenServer) Issued() int64  { return ts.issued.Load() }
func (ts *TokenServer) Refused() int64 { return ts.refused.Load() }

func (ts *TokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if r.URL.Path != "/token" || r.URL.Query().Get("service") != tokenService || !ok || user != ts.user || pass != ts.password {
		ts.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="bale-test-token"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return
	}
	var scopes []string
	for _, s := range r.URL.Query()["scope"] {
		scopes = append(scopes, strings.Fields(s)...)
	}
	tok, err := ts.mint(user, scopes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}

// access is one grant of a token's "access" claim.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// mint signs a JWT for sub granting each scope ("repository:NAME:pull,push",
// "registry:catalog:*") as asked.
func (ts *TokenServer) mint(sub string, scopes []string) (string, error) {
	grants := []access{}
	for _, s := range scopes {
		i, j := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
		if i < 0 || j <= i {
			return "", fmt.Errorf("scope %q is not TYPE:NAME:ACTIONS", s)
		}
		grants = append(grants, access{Type: s[:i], Name: s[i+1 : j], Actions: strings.Split(s[j+1:], ",")})
	}
	now := time.Now()
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuerName, "sub": sub, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": grants,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64) // JWS ES256: r and s, 32 bytes each, big-endian
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}

// bearer returns an Authorization header value for a test's own request to path.
func (ts *TokenServer) bearer(path string) (string, error) {
	scope := "registry:catalog:*"
	if repo, ok := strings.CutSuffix(strings.TrimPrefix(path, "/v2/"), "/tags/list"); ok {
		scope = "repository:" + repo + ":pull"
	}
	tok, err := ts.mint(ts.user, []string{scope})
	return "Bearer " + tok, err
}
