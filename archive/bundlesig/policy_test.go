package bundlesig_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bale-project/bale/archive/bundlesig"
)

// TestParsePolicy: a site policy gives the keys (relative paths from its directory),
// identities and trusted root; one that trusts nobody, has unknown fields, an incomplete
// identity or identities without a trusted root is refused.
func TestParsePolicy(t *testing.T) {
	o, err := bundlesig.ParsePolicy([]byte(`
bundles:
  keys: [release.pub, /etc/keys/old.pub]
  identities:
    - identity: release@example.com
      issuer: https://accounts.example.com
    - identityRegexp: '@example\.com$'
      issuerRegexp: '^https://'
  trustedRoot: trusted_root.json
`), "/etc/bale")
	if err != nil {
		t.Fatal(err)
	}
	want := bundlesig.TrustOptions{
		Keys: []string{"/etc/bale/release.pub", "/etc/keys/old.pub"},
		Identities: []bundlesig.Identity{
			{Identity: "release@example.com", Issuer: "https://accounts.example.com"},
			{IdentityRegexp: `@example\.com$`, IssuerRegexp: "^https://"},
		},
		TrustedRoot: "/etc/bale/trusted_root.json",
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("ParsePolicy:\n got %+v\nwant %+v", o, want)
	}
	for _, bad := range []string{
		``,
		`bundles: {}`,
		`bundles: {keys: []}`,
		`bundles: {keys: [a.pub], trustedroot: x}`,
		`bundle: {keys: [a.pub]}`,
		`bundles: {keys: [""]}`,
		`bundles: {identities: [{identity: a}], trustedRoot: r.json}`,
		`bundles: {identities: [{identity: a, identityRegexp: b, issuer: i}], trustedRoot: r.json}`,
		`bundles: {identities: [{identity: a, issuer: i}]}`,
		`bundles: [keys]`,
	} {
		if _, err := bundlesig.ParsePolicy([]byte(bad), "/"); !errors.Is(err, bundlesig.ErrPolicy) {
			t.Errorf("ParsePolicy(%q) = %v, want ErrPolicy", bad, err)
		}
	}
}

// FuzzParsePolicy: any input is refused with ErrPolicy or gives options that name a signer,
// every path absolute.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("bundles:\n  keys: [a.pub]\n"))
	f.Add([]byte("bundles: {identities: [{identity: a, issuer: b}], trustedRoot: r.json}"))
	f.Add([]byte("bundles: {keys: [a], identities: [{identityRegexp: '(', issuer: b}], trustedRoot: /r}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := bundlesig.ParsePolicy(raw, "/etc/bale")
		if err != nil {
			if !errors.Is(err, bundlesig.ErrPolicy) {
				t.Fatalf("error without ErrPolicy: %v", err)
			}
			return
		}
		if o.Empty() {
			t.Fatalf("a policy that trusts nobody: %+v", o)
		}
		for _, p := range append(append([]string(nil), o.Keys...), o.TrustedRoot) {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("relative path %q", p)
			}
		}
		if len(o.Identities) > 0 && o.TrustedRoot == "" {
			t.Fatalf("identities without a trusted root: %+v", o)
		}
	})
}
