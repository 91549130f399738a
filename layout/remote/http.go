package remote

import "net/http"

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
