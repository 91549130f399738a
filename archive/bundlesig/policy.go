package bundlesig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// PolicyEnv names the site policy file; DefaultPolicy is read when it is unset.
const (
	PolicyEnv     = "BALE_POLICY"
	DefaultPolicy = "/etc/bale/policy.yaml"
)

// ErrPolicy marks a policy file that cannot be read or used.
var ErrPolicy = errors.New("bale policy")

// maxPolicy bounds a policy file.
const maxPolicy = 1 << 20

// Identity is one keyless signer: a certificate identity and OIDC issuer, each exact or a
// regular expression.
type Identity struct {
	Identity       string `yaml:"identity,omitempty"`
	IdentityRegexp string `yaml:"identityRegexp,omitempty"`
	Issuer         string `yaml:"issuer,omitempty"`
	IssuerRegexp   string `yaml:"issuerRegexp,omitempty"`
}

// policyFile is the YAML of a site policy:
//
//	bundles:
//	  keys: [/etc/bale/release.pub]
//	  identities:
//	    - identity: release@example.com
//	      issuer: https://accounts.example.com
//	  trustedRoot: /etc/bale/trusted_root.json
type policyFile struct {
	Bundles *struct {
		Keys        []string   `yaml:"keys"`
		Identities  []Identity `yaml:"identities"`
		TrustedRoot string     `yaml:"trustedRoot"`
	} `yaml:"bundles"`
}

// ParsePolicy parses a site policy (see policyFile): whom to trust to sign every bundle a
// command reads, when no signer is given on its command line. Unknown fields, a policy that
// names no signer, an identity without an issuer, and identities without a trusted root are
// refused. Relative paths are taken from dir.
func ParsePolicy(raw []byte, dir string) (TrustOptions, error) {
	var p policyFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return TrustOptions{}, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if p.Bundles == nil || len(p.Bundles.Keys) == 0 && len(p.Bundles.Identities) == 0 {
		return TrustOptions{}, fmt.Errorf("%w: no bundles.keys or bundles.identities: it would trust nobody", ErrPolicy)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	o := TrustOptions{TrustedRoot: abs(p.Bundles.TrustedRoot)}
	for _, k := range p.Bundles.Keys {
		if k == "" {
			return TrustOptions{}, fmt.Errorf("%w: an empty key path", ErrPolicy)
		}
		o.Keys = append(o.Keys, abs(k))
	}
	for i, id := range p.Bundles.Identities {
		if (id.Identity == "") == (id.IdentityRegexp == "") || (id.Issuer == "") == (id.IssuerRegexp == "") {
			return TrustOptions{}, fmt.Errorf("%w: identity %d needs exactly one of identity and identityRegexp, and one of issuer and issuerRegexp", ErrPolicy, i+1)
		}
		o.Identities = append(o.Identities, id)
	}
	if len(o.Identities) > 0 && o.TrustedRoot == "" {
		return TrustOptions{}, fmt.Errorf("%w: identities need bundles.trustedRoot", ErrPolicy)
	}
	return o, nil
}

// LoadPolicy reads the site policy: the file BALE_POLICY names (which must then exist), else
// DefaultPolicy when it exists. ok is false when there is none.
func LoadPolicy() (o TrustOptions, path string, ok bool, err error) {
	path, named := os.LookupEnv(PolicyEnv)
	if !named || path == "" {
		path = DefaultPolicy
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !(named && path != "") {
		return TrustOptions{}, "", false, nil
	}
	if err != nil {
		return TrustOptions{}, path, false, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxPolicy+1))
	if err != nil {
		return TrustOptions{}, path, false, fmt.Errorf("%w: %s: %w", ErrPolicy, path, err)
	}
	if len(raw) > maxPolicy {
		return TrustOptions{}, path, false, fmt.Errorf("%w: %s: more than %d bytes", ErrPolicy, path, maxPolicy)
	}
	o, err = ParsePolicy(raw, filepath.Dir(path))
	if err != nil {
		return TrustOptions{}, path, false, fmt.Errorf("%s: %w", path, err)
	}
	return o, path, true, nil
}
