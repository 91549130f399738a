package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/listview"
)

// listImage and listOutput are the rows and the --json document of `bale list`
// (package listing: the writer renders the list member of a bundle from them).
type (
	listImage  = listing.Image
	listOutput = listing.Output
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "list the images of a bundle, registry storage dir or skopeo dir tree",
		ArgsUsage: "BUNDLE|CATALOG|LOCATION",
		Description: `Prints one line per tag (and per image pinned by digest): repository, tag, manifest digest,
media type, platforms, size (every manifest and blob of the image, each counted once) and
referrers: how many signatures, attestations, SBOMs and other artifacts of each kind belong to
the image (cosign's tags sha256-<hex>.sig/.att/.sbom count by their suffix, OCI 1.1 referrers
by artifact type; those of a manifest below an index, and a signature on an SBOM, count for
the image). --json lists each of them under its image ("referrers", "referrerKinds").
Helm charts (a config of Helm's media type: CHART, VERSION) and file artifacts (under files/,
not a container image: FILE, TAG) follow in tables of their own; --json gives every entry a
"kind" (image, chart or file) and a chart's "name" and "version", a file's "name", and lists
them in the order of the tables (images, then charts, then files).
For a bundle of format 5 only its list member (bale/list.jsonl, right after the catalog, found
by the seek table) is read: when it is signed or signers are required, once to hash it and
check the signatures against the statement naming it, then again to print its rows as they
come, so the first line comes at once and memory stays flat at any size; the catalog is not
read (verify and unpack check the member against it; unsigned, a rewritten member is trusted
as far as the zstd checksums go, and a damaged one fails, exit 4, where the damage is found).
Such a bundle, unsigned and listed with no option but --json and --wide and no site policy, is
listed before the rest of bale initialises (Helm, sigstore, the S3 SDK), the same output in a
fraction of the start; BALE_QUICKLIST=0 turns that off. A bundle of format 4, or one
without a seek table, is listed from the catalog at the head of the file (format 4: in place,
one repository at a time, never whole; its id is checked before anything is printed, and a
mismatch prints nothing). Its signatures (bale sign) are checked
and shown; --key or --certificate-identity refuse it (exit 6, nothing printed) unless signed
by one of them.

On a terminal the lines fit its width (the window size, else $COLUMNS, else 80): DIGEST shows
sha256: and 12 hex digits, as docker shows an IMAGE ID, and the widest of REPOSITORY, TAG and
PLATFORMS is cut first, with "…": names and tags in the middle (their head and their tail
stay), platforms at the end (a sparse note stays). TYPE and SIZE stay whole. --wide prints
every column whole; so does any output that is not a terminal (a pipe or a file: nothing is
cut there, as with kubectl). --json is always whole.

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
			&cli.BoolFlag{Name: "wide", Usage: "print every column whole (the full digest, names and tags), even on a terminal"},
			// The catalog path for a format-5 bundle too: what the tests compare the list member with.
			&cli.BoolFlag{Name: "from-catalog", Hidden: true, Usage: "list a bundle from its catalog, not its list member"},
		}, trustFlags()...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "BUNDLE|LOCATION"); err != nil {
				return err
			}
			loc, err := parseLocation(cx.Args().First(), true)
			if err != nil {
				return err
			}
			// A bundle of format 5 is listed from its list member (listHead); one of format 4,
			// or without a seek table, from its catalog read in place, one repository at a time
			// (listStream); older ones, and every other location, are read whole.
			if loc.Kind == kindBundle && !cx.Bool("from-catalog") {
				if done, err := listHead(cx, loc); done || err != nil {
					return err
				}
			}
			var out listOutput
			var c *catalog.Catalog
			if loc.Kind == kindBundle {
				c, out, err = listStream(loc)
			}
			if c == nil && err == nil {
				if c, err = loadCatalog(cx, loc); err == nil {
					out = listOf(loc, c)
				}
			}
			if err != nil {
				return err
			}
			var sigs []bundlesig.Signature
			if loc.Kind == kindBundle {
				// Its signatures, checked against the catalog (exit 6 before anything is shown).
				if sigs, err = bundleSignatures(cx, loc.Path, c); err != nil {
					return err
				}
				// Only the catalog was read: say which volumes are not there to be read.
				if err := archive.CheckVolumes(loc.Path, c); err != nil {
					return err
				}
			} else if err := notBundleTrust(cx, loc); err != nil {
				return err
			}
			if len(sigs) > 0 {
				out.Signatures = sigs
			}
			if cx.Bool("json") {
				enc := json.NewEncoder(cx.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			counts, err := listview.WriteTables(cx.App.Writer, out.Images, listview.OutputWidth(cx.App.Writer, cx.Bool("wide")))
			if err != nil {
				return err
			}
			printListSummary(cx.App.Writer, loc, out, counts, sigs)
			return nil
		},
	}
}

// printListSummary prints the lines after the tables of `bale list` (listview.Summary), then
// the signatures that verified.
func printListSummary(w io.Writer, loc location, out listOutput, counts string, sigs []bundlesig.Signature) {
	listview.Summary(w, loc.Kind, out, counts)
	if len(sigs) > 0 {
		printSignatures(w, sigs)
	}
}

func listOf(loc location, c *catalog.Catalog) listOutput {
	out := listing.Of(c)
	out.Location = loc.String()
	if loc.Kind != kindBundle && loc.Kind != kindCatalog {
		out.Format, out.Created, out.Bale = 0, nil, ""
	}
	return out
}

// imagesSummary says how many images c holds and, when there are any, how many referrers
// (signatures, SBOMs, ... and their tags) belong to them: "12 images and 30 referrers".
func imagesSummary(c *catalog.Catalog) string {
	images, attached := c.ImageAttachments()
	n := 0
	for _, as := range attached {
		n += len(as)
	}
	s := fmt.Sprintf("%d images", len(images))
	if n > 0 {
		s += fmt.Sprintf(" and %d referrers", n)
	}
	return s
}
