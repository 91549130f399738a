package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check that every tag resolves, every blob is present with the right size and sha256, and (registry storage) every link the registry serves them through",
		ArgsUsage: "BUNDLE|LOCATION",
		Description: `For a bundle: reads it whole, checking the catalog, every member's name, type and order, and
every blob's size and sha256.
For a registry storage dir or a skopeo dir tree: every tag resolves, every manifest parses and
matches its digest, every referenced blob is present with the right size and sha256. In
registry storage (registry:PATH, s3://BUCKET) every tag the registry lists is checked as
Distribution serves it: the tag's current link and index link, a revision link for every
manifest (index children included), a _layers link for every config and layer, each holding
the digest it must; a tag directory without a current link (listed, but 404) is a problem.
With --image-key, every image must also carry a valid cosign signature by one of the keys
(exit 6 names those that do not); --image-certificate-identity[-regexp] with
--image-certificate-oidc-issuer[-regexp] and --trusted-root accepts keyless ones (offline).
A bundle's own signatures (BUNDLE.sigstore.json beside it, see bale sign) are checked first,
from the catalog alone: with --key or --certificate-identity the bundle must be signed and
every signature must verify with one of the signers given; without, a signature found must
still be over this bundle. Either way a signature that fails refuses the bundle (exit 6)
before its content is read. Each signature's signer, time and what it covers are shown.
With no such flag, the site policy (the file BALE_POLICY names, else /etc/bale/policy.yaml
when it exists) gives the signers; see "Signed bundles" in the README.
Prints every problem found and exits non-zero if there is any.

` + exitCodesHelp,
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON document (problems included) on standard output"}, imageKeyFlag, imageIdentityFlag, imageIdentityRegexpFlag, imageIssuerFlag, imageIssuerRegexpFlag}, trustFlags()...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "BUNDLE|LOCATION"); err != nil {
				return err
			}
			loc, err := parseLocation(cx.Args().First(), true)
			if err != nil {
				return err
			}
			var (
				c        *catalog.Catalog
				problems []error
				sigs     []bundlesig.Signature
			)
			if loc.Kind != kindBundle && !trustOptions(cx).Empty() {
				return usagef("verify: --key and --certificate-identity check a bundle's signatures; %s is not a bundle (--image-key checks images)", loc)
			}
			switch loc.Kind {
			case kindCatalog:
				return usagef("%s is a catalog file: it holds no content to verify", loc.Path)
			case kindBundle:
				// The bundle's signatures first, from its catalog: refused, nothing else is read.
				t, err := loadTrust(cx)
				if err != nil {
					return err
				}
				if t == nil && unsigned(loc.Path) {
					// No signer asked for and no signature in its head or beside it: the
					// catalog is read once, by the content check, not twice (#19: 5.6 to 4.9 s
					// of CPU at 20,000 tags). Should the verified catalog still record
					// signatures, they are checked after it, each over this bundle.
					c, problems = archive.VerifyFile(cx.Context, loc.Path)
					if len(problems) == 0 && len(c.Meta.Signatures) > 0 {
						if sigs, err = signaturesOf(loc.Path, c, nil); err != nil {
							problems = []error{err}
						}
					}
					break
				}
				var sc *catalog.Catalog
				sc, sigs, err = verifyTrusted(loc.Path, t)
				if err != nil {
					c, problems = sc, []error{err}
					break
				}
				c, problems = archive.VerifyFile(cx.Context, loc.Path)
			default:
				c, problems = verifyLocation(cx, loc)
			}
			if len(problems) == 0 { // --image-key: each image without a valid signature (exit 6)
				problems = verifySignatures(cx, loc)
			}
			if cx.Bool("json") {
				if err := printVerifyJSON(cx, loc, c, sigs, problems); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintf(cx.App.ErrWriter, "problem: %v\n", p)
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s: %d problem(s) found: %w", loc, len(problems), errors.Join(problems...))
			}
			if cx.Bool("json") {
				return nil
			}
			fmt.Fprintf(cx.App.Writer, "%s: OK, %s, %d blobs (%s) verified\n",
				loc, imagesSummary(c), c.CarriedCount(), units.Bytes(c.CarriedBytes()))
			if n := c.SparseIndexes(); n > 0 {
				fmt.Fprintf(cx.App.Writer, "sparse: %d index(es) hold only some of their platforms' images (bale list shows which)\n", n)
			}
			if n := len(c.ExpectedBlobs()); n > 0 {
				fmt.Fprintf(cx.App.Writer, "patch: %d more blobs are expected from its bases (checked when it is unpacked)\n", n)
			}
			if loc.Kind == kindBundle {
				printSignatures(cx.App.Writer, sigs)
			}
			return nil
		},
	}
}

func verifyLocation(cx *cli.Context, loc location) (*catalog.Catalog, []error) {
	src, err := openSource(cx, loc)
	if err != nil {
		return nil, []error{err}
	}
	if sn, ok := src.(interface{ Snapshot() layout.Source }); ok {
		// One read view for the catalog and the link checks: the links the catalog read
		// (every tag's current link, every revision link) are not read again (#19).
		src = sn.Snapshot()
	}
	c, problems := catalog.VerifySource(src)
	if st, ok := src.(registry.ServedStorage); ok {
		// Every tag the registry lists, as it serves it (also those no current link resolves),
		// then the images held by digest only.
		problems = append(problems, registry.CheckTags(st)...)
		if c != nil {
			for _, e := range c.Entries() {
				if e.Tag != "" {
					continue
				}
				if img, err := layout.LoadImage(st, e.Repo, e.Digest); err == nil {
					problems = append(problems, registry.CheckLinks(st, e.Repo, "", img)...)
				}
			}
		}
	}
	return c, problems
}

// verifyOutput is the JSON document of bale verify --json.
type verifyOutput struct {
	Location string   `json:"location"`
	OK       bool     `json:"ok"`
	ID       string   `json:"id,omitempty"`
	Images   int      `json:"images"`
	Blobs    int      `json:"blobs"`
	Bytes    int64    `json:"bytes"`
	Expected int      `json:"expectedFromBases,omitempty"`
	Sparse   int      `json:"sparseIndexes,omitempty"`
	Problems []string `json:"problems"`

	// Signatures are the bundle's signatures that verified (see bale sign).
	Signatures []bundlesig.Signature `json:"signatures,omitempty"`
}

func printVerifyJSON(cx *cli.Context, loc location, c *catalog.Catalog, sigs []bundlesig.Signature, problems []error) error {
	out := verifyOutput{Location: loc.String(), OK: len(problems) == 0, Signatures: sigs, Problems: []string{}}
	if c != nil {
		out.ID, out.Images, out.Blobs, out.Bytes, out.Expected = c.Meta.ID, len(c.Entries()), c.CarriedCount(), c.CarriedBytes(), len(c.ExpectedBlobs())
		out.Sparse = c.SparseIndexes()
	}
	for _, p := range problems {
		out.Problems = append(out.Problems, p.Error())
	}
	enc := json.NewEncoder(cx.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
