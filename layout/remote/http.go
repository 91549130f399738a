package remote

import (
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
)

// HTTPClient is an HTTP client with the TLS settings of o (NoTLSVerify, CertDir), as this
// package reaches registries: for other servers a docker:// source's flags apply to (a
// classic Helm chart repository).
func HTTPClient(o Options) (*http.Client, error) {
	tr, err := httpTransport(o)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr}, nil
}

// BasicAuth is the user name and password o gives for host (HOST[:PORT]), as for a registry
// there: Username/Password, else the AuthFile's or the default config files' entry for host;
// empty when there is none.
func BasicAuth(o Options, host string) (user, pass string, err error) {
	keys, err := keychain(o)
	if err != nil {
		return "", "", err
	}
	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", host, err)
	}
	a, err := keys.Resolve(reg)
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s: %w", host, err)
	}
	ac, err := a.Authorization()
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s: %w", host, err)
	}
	return ac.Username, ac.Password, nil
}
