package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/imagesig"
)

// imageKeyFlag is --image-key on the commands that read images at the site (and pack).
var imageKeyFlag = &cli.StringSliceFlag{Name: "image-key", Usage: "refuse (exit 6, nothing written) unless every image has a valid cosign signature, carried with it, by the public key in `FILE` (cosign.pub, or a PEM ECDSA, Ed25519 or RSA public key; repeatable: any of them may have signed); see \"Image signatures at the site\" in the README"}

// The keyless image signers (with --trusted-root, a trust flag), on the commands that read
// images at the site.
var (
	imageIdentityFlag       = &cli.StringFlag{Name: "image-certificate-identity", Usage: "keyless image signatures: refuse (exit 6) unless every image has a valid cosign signature whose certificate names `ID` (with --image-certificate-oidc-issuer[-regexp] and --trusted-root; or an --image-key)"}
	imageIdentityRegexpFlag = &cli.StringFlag{Name: "image-certificate-identity-regexp", Usage: "keyless image signatures: the certificate's identity must match `REGEXP`"}
	imageIssuerFlag         = &cli.StringFlag{Name: "image-certificate-oidc-issuer", Usage: "keyless image signatures: the certificate's OIDC issuer must be `URL`"}
	imageIssuerRegexpFlag   = &cli.StringFlag{Name: "image-certificate-oidc-issuer-regexp", Usage: "keyless image signatures: the certificate's OIDC issuer must match `REGEXP`"}
)

// imageKeyless is the keyless image signer of the flags; empty when none is given.
func imageKeyless(cx *cli.Context) imagesig.Keyless {
	return imagesig.Keyless{
		Identity:       cx.String("image-certificate-identity"),
		IdentityRegexp: cx.String("image-certificate-identity-regexp"),
		Issuer:         cx.String("image-certificate-oidc-issuer"),
		IssuerRegexp:   cx.String("image-certificate-oidc-issuer-regexp"),
		TrustedRoot:    cx.String("trusted-root"),
	}
}

// imageSigning reports whether image signers are given (--image-key or an identity).
func imageSigning(cx *cli.Context) bool {
	return len(cx.StringSlice("image-key")) > 0 || !imageKeyless(cx).Empty()
}

// imageKeys loads the --image-key keys and the keyless image signer; nil when none is given.
func imageKeys(cx *cli.Context) (*imagesig.Keys, error) {
	k, err := imagesig.LoadSigners(cx.StringSlice("image-key"), imageKeyless(cx))
	if errors.Is(err, imagesig.ErrOptions) {
		return nil, usagef("%s: %v (see bale %s --help)", cx.Command.Name, err, cx.Command.Name)
	}
	return k, err
}

// checkImageSignatures, with --image-key or an image identity, checks that every image of refs
// in src (every image when refs is empty) has a valid signature by one of them, before
// anything is written:
// an *imagesig.Error (exit 6) names the others.
func checkImageSignatures(cx *cli.Context, src layout.Source, refs []layout.Ref) error {
	keys, err := imageKeys(cx)
	if keys == nil || err != nil {
		return err
	}
	signed, err := keys.Check(src, refs)
	if err != nil {
		return fmt.Errorf("image signatures: nothing was written: %w", err)
	}
	fmt.Fprintf(cx.App.ErrWriter, "image signatures: %d image(s), each signed by one of %s\n", len(signed), strings.Join(keys.Names(), ", "))
	return nil
}

// checkBundleSignatures is checkImageSignatures over bundles (a base and its patches, in order),
// read straight from the files, for the images of the --images lists when given.
func checkBundleSignatures(cx *cli.Context, bundles []string) error {
	if !imageSigning(cx) {
		return nil
	}
	src, err := archive.OpenSource(cx.Context, bundles)
	if err != nil {
		return err
	}
	defer src.Close()
	return checkSourceSignatures(cx, src)
}

// checkSourceSignatures is checkBundleSignatures over bundles already open as src.
func checkSourceSignatures(cx *cli.Context, src *archive.Source) error {
	if !imageSigning(cx) {
		return nil
	}
	var refs []layout.Ref
	if cx.IsSet("images") {
		sel, err := imagesFlag(cx)
		if err != nil {
			return err
		}
		if refs, err = expandImages(sel, src); err != nil {
			return err
		}
	}
	return checkImageSignatures(cx, src, refs)
}

// verifySignatures is bale verify --image-key: one problem per image without a valid signature
// (errors.Is ErrUnsigned), or the error that kept the check from running.
func verifySignatures(cx *cli.Context, loc location) []error {
	keys, err := imageKeys(cx)
	if keys == nil || err != nil {
		return errs(err)
	}
	var src layout.Source
	if loc.Kind == kindBundle {
		s, err := archive.OpenSource(cx.Context, []string{loc.Path})
		if err != nil {
			return errs(err)
		}
		defer s.Close()
		src = s
	} else if src, err = openSource(cx, loc); err != nil {
		return errs(err)
	}
	_, err = keys.Check(src, nil)
	var ie *imagesig.Error
	if !errors.As(err, &ie) {
		return errs(err)
	}
	var out []error
	for _, f := range ie.Failures {
		out = append(out, fmt.Errorf("image %s: %w", f, imagesig.ErrUnsigned))
	}
	return out
}

// errs is err as a list of problems: none when nil.
func errs(err error) []error {
	if err == nil {
		return nil
	}
	return []error{err}
}

// packSigned is pack --image-key: the images of refs (every image of src when empty) that
// have a valid signature. Without --keep-going any other refuses the pack; with it, they are
// left out and returned as skipped, to be named at the end (exit 5).
func packSigned(cx *cli.Context, src layout.Source, refs []layout.Ref) (keep []layout.Ref, skipped error, err error) {
	keys, err := imageKeys(cx)
	if keys == nil || err != nil {
		return refs, nil, err
	}
	signed, err := keys.Check(src, refs)
	var ie *imagesig.Error
	if err == nil || !errors.As(err, &ie) || !cx.Bool("keep-going") || len(signed) == 0 {
		if err != nil {
			return nil, nil, fmt.Errorf("image signatures: nothing was written: %w", err)
		}
		return refs, nil, nil
	}
	for _, s := range signed {
		keep = append(keep, s.Ref)
	}
	return keep, ie, nil
}
