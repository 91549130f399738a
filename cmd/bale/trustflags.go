package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/catalog"
)

// trustFlags name whom a site trusts to sign bundles (verify; list, unpack, push, serve and
// copy from a bundle take them too): keys, or keyless identities with a trusted root.
func trustFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "key", Usage: "refuse (exit 6) unless the bundle is signed, and every signature found verifies with the public key in `FILE` (cosign.pub, or a PEM ECDSA, Ed25519 or RSA public key; repeatable: any of them may have signed); see \"Signed bundles\" in the README"},
		&cli.StringFlag{Name: "certificate-identity", Usage: "keyless: the signing certificate's identity (subject alternative name) must be `ID`"},
		&cli.StringFlag{Name: "certificate-identity-regexp", Usage: "keyless: the certificate's identity must match `REGEXP`"},
		&cli.StringFlag{Name: "certificate-oidc-issuer", Usage: "keyless: the certificate's OIDC issuer must be `URL`"},
		&cli.StringFlag{Name: "certificate-oidc-issuer-regexp", Usage: "keyless: the certificate's OIDC issuer must match `REGEXP`"},
		&cli.StringFlag{Name: "trusted-root", Usage: "keyless: the sigstore trusted_root.json in `FILE` (certificate authorities, transparency logs, timestamp authorities); the log proof or timestamp in a signature is checked against it offline, nothing is fetched"},
	}
}

// trustOptions are the trust flags as given; --trusted-root given for the images' signers
// alone (--image-certificate-identity) is not the bundle's.
func trustOptions(cx *cli.Context) bundlesig.TrustOptions {
	o := bundlesig.TrustOptions{
		Keys:           cx.StringSlice("key"),
		Identity:       cx.String("certificate-identity"),
		IdentityRegexp: cx.String("certificate-identity-regexp"),
		Issuer:         cx.String("certificate-oidc-issuer"),
		IssuerRegexp:   cx.String("certificate-oidc-issuer-regexp"),
		TrustedRoot:    cx.String("trusted-root"),
	}
	if o.Empty() && !imageKeyless(cx).Empty() {
		o.TrustedRoot = ""
	}
	return o
}

// loadTrust loads the trust flags, or when none is given the site policy (BALE_POLICY, else
// /etc/bale/policy.yaml when it exists), which makes verification mandatory: nil when there is
// neither; a usage error when the flags do not go together.
func loadTrust(cx *cli.Context) (*bundlesig.Trust, error) {
	o := trustOptions(cx)
	if o.Empty() && o.TrustedRoot == "" {
		p, path, ok, err := bundlesig.LoadPolicy()
		if err != nil {
			return nil, err
		}
		if ok {
			t, err := bundlesig.LoadTrust(p)
			if err != nil {
				return nil, fmt.Errorf("site policy %s: %w", path, err)
			}
			return t, nil
		}
	}
	t, err := bundlesig.LoadTrust(o)
	if errors.Is(err, bundlesig.ErrOptions) {
		return nil, usagef("%s: %v (see bale %s --help)", cx.Command.Name, err, cx.Command.Name)
	}
	return t, err
}

// checkBundleTrust verifies the signatures of each bundle of paths (a base and its patches:
// every link of the chain) before anything else is read: with signers given, each must be
// signed and every signature found must verify with one of them; without, a signature found
// must still be over its bundle. It prints who signed each to w. An error wraps
// bundlesig.ErrUntrusted (exit 6).
func checkBundleTrust(cx *cli.Context, w io.Writer, paths []string) error {
	t, err := loadTrust(cx)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if t == nil { // no signers: only signatures found (in it or beside it) are checked
			if signed, err := bundlesig.Signed(p); err != nil || !signed {
				continue
			}
		}
		_, sigs, err := verifyTrusted(p, t)
		if err != nil {
			return fmt.Errorf("%s: nothing was read from it: %w", p, err)
		}
		for _, s := range sigs {
			note := ""
			if !s.Trusted {
				note = " (not checked: no --key or identity given)"
			}
			fmt.Fprintf(w, "%s: signed by %s%s%s\n", p, s.Signer(), note, timeNote(s))
		}
	}
	return nil
}

// verifyTrusted is bundlesig.VerifyFile, with one rule of bale's: when signers are required (t
// set) and the catalog they would vouch for is damaged (a flipped byte fails its id), the
// bundle is as untrusted as one with a bad signature (exit 6, not 4).
func verifyTrusted(path string, t *bundlesig.Trust) (*catalog.Catalog, []bundlesig.Signature, error) {
	c, sigs, err := bundlesig.VerifyFile(path, t)
	if err != nil && t != nil && isDamaged(err) {
		return c, sigs, fmt.Errorf("it cannot be checked against its signers: %v: %w", err, bundlesig.ErrUntrusted)
	}
	return c, sigs, err
}

// unsigned reports whether the bundle at path has no signature in its head nor beside it
// (false when that cannot be told: whoever reads it next says why).
func unsigned(path string) bool {
	signed, err := bundlesig.Signed(path)
	return err == nil && !signed
}

// timeNote is ", at TIME" when the signature has a verified time.
func timeNote(s bundlesig.Signature) string {
	if s.Time == nil {
		return ""
	}
	return ", at " + s.Time.Format("2006-01-02T15:04:05Z")
}

// coversNote says what a signature covers, for people.
func coversNote(cv bundlesig.Covers) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bundle %s", cv.ID)
	if len(cv.Bases) > 0 {
		fmt.Fprintf(&b, ", a patch of %s", strings.Join(cv.Bases, ", "))
	}
	if len(cv.Volumes) > 0 {
		fmt.Fprintf(&b, ", %d volume(s)", len(cv.Volumes))
	}
	return b.String()
}

// printSignatures prints, one a line, each signature's source, signer, time and what it
// covers; or that there is none.
func printSignatures(w io.Writer, sigs []bundlesig.Signature) {
	if len(sigs) == 0 {
		fmt.Fprintln(w, "signatures: none (bale sign --key KEY BUNDLE signs it)")
		return
	}
	for _, s := range sigs {
		note := ""
		if !s.Trusted {
			note = " (not checked against a trusted signer: no --key or identity given)"
		}
		fmt.Fprintf(w, "signature %s: signed by %s%s%s; covers %s\n", s.Source, s.Signer(), note, timeNote(s), coversNote(s.Covers))
	}
}

// bundleSignatures checks the signatures of the bundle at path, whose catalog c was read,
// against the trust flags (see checkBundleTrust); for list.
func bundleSignatures(cx *cli.Context, path string, c *catalog.Catalog) ([]bundlesig.Signature, error) {
	t, err := loadTrust(cx)
	if err != nil {
		return nil, err
	}
	sigs, err := signaturesOf(path, c, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sigs, nil
}

// signaturesOf checks every signature of the bundle at path, whose catalog c was read, in it
// and beside it, against t (nil: each must still be over this bundle).
func signaturesOf(path string, c *catalog.Catalog, t *bundlesig.Trust) ([]bundlesig.Signature, error) {
	found, err := bundlesig.FindAll(path, c)
	if err != nil {
		return nil, err
	}
	return bundlesig.Verify(c, found, t)
}

// notBundleTrust is the usage error of trust flags given for a location that is no bundle.
func notBundleTrust(cx *cli.Context, loc location) error {
	if trustOptions(cx).Empty() {
		return nil
	}
	return usagef("%s: --key and --certificate-identity check a bundle's signatures; %s is not a bundle", cx.Command.Name, loc)
}
