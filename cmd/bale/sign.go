package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/catalog"
)

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign bundles already written (only their catalogs are read), or print the statement stock cosign signs",
		ArgsUsage: "BUNDLE...",
		Description: `Signs what a bundle holds: a statement (in-toto, canonical JSON) that bale rebuilds from the
catalog alone, naming the bundle id (every tag, manifest and blob digest and size), a patch's
bases and a split bundle's volumes. The signature is a sigstore bundle, written beside the
bundle as BUNDLE.sigstore.json (another signer: BUNDLE.2.sigstore.json, ...; a split bundle
is signed through its first volume, BUNDLE.001.sigstore.json); signing again with the same
key replaces its file. Every bale command finds these files by name, and the signature that
bale pack --sign-key writes inside a bundle (its member bale/signatures/1.sigstore.json):
all of them count.

   bale sign --key cosign.key release.tar.zst

KEY is a cosign key (cosign generate-key-pair; its password from COSIGN_PASSWORD, else asked
on the terminal) or a PEM PKCS#8 ECDSA P-256/P-384, Ed25519 or RSA private key.

KMS, hardware keys and keyless (Fulcio) signing go through stock cosign over the statement:

   bale sign --statement release.tar.zst > statement.json
   cosign sign-blob --new-bundle-format --bundle sig.json statement.json   # any cosign signer
   bale sign --attach sig.json release.tar.zst

and stock cosign checks a bale signature (a key, no transparency log):

   cosign verify-blob --new-bundle-format --bundle release.tar.zst.sigstore.json --key cosign.pub \
       --trusted-root empty-root.json --insecure-ignore-tlog statement.json

(empty-root.json: {"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}).
At the site: bale verify --key cosign.pub release.tar.zst.

` + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "sign with the private key in `FILE` (cosign.key, or PEM PKCS#8 ECDSA, Ed25519, RSA)"},
			&cli.BoolFlag{Name: "statement", Usage: "print the statement of BUNDLE (what to sign with stock cosign sign-blob) and write nothing"},
			&cli.StringFlag{Name: "attach", Usage: "check that the sigstore bundle in `FILE` (cosign sign-blob --new-bundle-format) is over BUNDLE's statement, and write it beside BUNDLE"},
		},
		Action: func(cx *cli.Context) error {
			modes := 0
			for _, set := range []bool{cx.IsSet("key"), cx.Bool("statement"), cx.IsSet("attach")} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return usagef("sign takes exactly one of --key, --statement and --attach (see bale sign --help)")
			}
			if cx.NArg() == 0 {
				return usagef("sign takes BUNDLE... (see bale sign --help)")
			}
			switch {
			case cx.Bool("statement"):
				if err := checkArgs(cx, 1, "one BUNDLE with --statement"); err != nil {
					return err
				}
				return printStatement(cx, cx.Args().First())
			case cx.IsSet("attach"):
				if err := checkArgs(cx, 1, "one BUNDLE with --attach"); err != nil {
					return err
				}
				return attachSignature(cx, cx.String("attach"), cx.Args().First())
			}
			s, err := bundlesig.LoadSigner(cx.String("key"), readPassword)
			if err != nil {
				return err
			}
			for _, p := range cx.Args().Slice() {
				if err := signBundle(cx, s, p); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// signBundle signs the bundle at path (its catalog, read from the file) with s and writes the
// signature beside it; for bale sign and pack --sign-key.
func signBundle(cx *cli.Context, s *bundlesig.Signer, path string) error {
	c, err := archive.ReadCatalog(path)
	if err != nil {
		return err
	}
	sig, err := bundlesig.SignCatalog(cx.Context, s, c)
	if err != nil {
		return err
	}
	out, err := bundlesig.WriteFile(path, sig)
	if err != nil {
		return err
	}
	fmt.Fprintf(cx.App.ErrWriter, "signed %s (bundle %s) with key %s (%s): %s\n", path, c.Meta.ID, s.Fingerprint(), s.Name(), out)
	return nil
}

// inFileSigner signs, for pack --sign-key, the statement of the catalog about to be written:
// the signature becomes the bundle's member bale/signatures/1.sigstore.json.
func inFileSigner(cx *cli.Context, s *bundlesig.Signer) func(*catalog.Catalog) ([][]byte, error) {
	return func(c *catalog.Catalog) ([][]byte, error) {
		sig, err := bundlesig.SignCatalog(cx.Context, s, c)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cx.App.ErrWriter, "signed bundle %s with key %s (%s): its member %s\n", c.Meta.ID, s.Fingerprint(), s.Name(), archive.SignatureName(1))
		return [][]byte{sig}, nil
	}
}

// packSigner is the signer of pack --sign-key, loaded before anything is packed (a wrong
// password fails first); nil without the flag.
func packSigner(cx *cli.Context) (*bundlesig.Signer, error) {
	if cx.String("sign-key") == "" {
		return nil, nil
	}
	return bundlesig.LoadSigner(cx.String("sign-key"), readPassword)
}

// printStatement prints the statement of the bundle at path.
func printStatement(cx *cli.Context, path string) error {
	c, err := archive.ReadCatalog(path)
	if err != nil {
		return err
	}
	stmt, err := bundlesig.Statement(c)
	if err != nil {
		return err
	}
	_, err = cx.App.Writer.Write(stmt)
	return err
}

// attachSignature checks that the signature in sigPath is over the statement of the bundle at
// path (and, when it carries a certificate, made by its key) and writes it beside the bundle.
// Who made it is checked where the bundle is used (verify --key or --certificate-identity).
func attachSignature(cx *cli.Context, sigPath, path string) error {
	c, err := archive.ReadCatalog(path)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(sigPath)
	if err != nil {
		return err
	}
	sigs, err := bundlesig.Verify(c, []bundlesig.Found{{Name: sigPath, Raw: raw}}, nil)
	if err != nil {
		return fmt.Errorf("--attach: nothing was written: %w", err)
	}
	out, err := bundlesig.WriteFile(path, raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(cx.App.ErrWriter, "attached %s to %s (bundle %s; it names its signer as %s, checked where the bundle is used): %s\n", sigPath, path, c.Meta.ID, sigs[0].Signer(), out)
	return nil
}

// readPassword reads a cosign key's password as cosign does: COSIGN_PASSWORD when set (even
// empty), else from the terminal, else all of standard input.
func readPassword() ([]byte, error) {
	if pw, ok := os.LookupEnv(bundlesig.PasswordEnv); ok {
		return []byte(pw), nil
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprint(os.Stderr, "Enter password for private key: ")
		pw, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		return pw, err
	}
	return io.ReadAll(os.Stdin)
}
