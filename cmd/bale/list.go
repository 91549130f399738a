package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
)

// listImage is one row of `bale list`.
type listImage struct {
	// Kind is "image", "chart" (a Helm chart) or "file" (a file artifact under files/).
	Kind layout.Kind `json:"kind"`
	// Name and Version: a chart's name and version, or a file artifact's name (its tag is Tag).
	Name      string   `json:"name,omitempty"`
	Version   string   `json:"version,omitempty"`
	Repo      string   `json:"repo"`
	Tag       string   `json:"tag,omitempty"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Platforms []string `json:"platforms,omitempty"`
	// Absent, for a sparse index, counts the children (platforms) it names and does not hold.
	Absent int   `json:"absent,omitempty"`
	Size   int64 `json:"size"`
	// Referrers are what belongs to the image: signatures, attestations, SBOMs and other
	// referrers of it or of a manifest below it (and theirs), and its referrers tags.
	Referrers []listReferrer `json:"referrers,omitempty"`
	// Kinds counts Referrers by kind, referrers tags left out.
	Kinds []catalog.KindCount `json:"referrerKinds,omitempty"`
}

// listReferrer is one thing that belongs to an image in `bale list --json`.
type listReferrer struct {
	Tag       string `json:"tag,omitempty"` // a cosign tag or a referrers tag
	Digest    string `json:"digest"`
	Subject   string `json:"subject"`
	Kind      string `json:"kind"` // artifact type, cosign suffix or "referrers-index"
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// listOutput is the JSON document of `bale list --json`.
type listOutput struct {
	Location string      `json:"location"`
	ID       string      `json:"id"`
	Format   int         `json:"format,omitempty"`
	Created  *time.Time  `json:"created,omitempty"`
	Bale     string      `json:"bale,omitempty"`
	Images   []listImage `json:"images"`
	Blobs    int         `json:"blobs"`
	Bytes    int64       `json:"bytes"`
	// Patch details: the bases, and what the bundle carries of its blobs.
	Bases        []catalog.Base `json:"bases,omitempty"`
	CarriedBlobs int            `json:"carriedBlobs"`
	CarriedBytes int64          `json:"carriedBytes"`
	Removed      []string       `json:"removedTags,omitempty"`

	// Signatures are a bundle's signatures that verified (see bale sign).
	Signatures []bundlesig.Signature `json:"signatures,omitempty"`
	// Additive is set for a format-4 patch: Images are what it adds to or moves in its bases.
	Additive bool `json:"additive,omitempty"`
}

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
"kind" (image, chart or file) and a chart's "name" and "version", a file's "name".
For a bundle only the catalog at the head of the file is read (format 4: in place, one
repository at a time, never whole; its id is checked before anything is printed, and a
mismatch prints nothing), and its signatures (bale sign) are checked and shown; --key or
--certificate-identity refuse it (exit 6) unless signed by one
of them.

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
		}, trustFlags()...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "BUNDLE|LOCATION"); err != nil {
				return err
			}
			loc, err := parseLocation(cx.Args().First(), true)
			if err != nil {
				return err
			}
			// A bundle of format 4 is read in place, one repository at a time (listStream);
			// older ones, and every other location, are read whole.
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
			out.Signatures = sigs
			if cx.Bool("json") {
				enc := json.NewEncoder(cx.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			width := 0
			if !cx.Bool("wide") {
				width = outputWidth(cx.App.Writer)
			}
			counts, err := writeListTables(cx.App.Writer, out.Images, width)
			if err != nil {
				return err
			}
			fmt.Fprintf(cx.App.Writer, "%s, %d blobs, %s", counts, out.Blobs, units.Bytes(out.Bytes))
			if out.Format != 0 {
				fmt.Fprintf(cx.App.Writer, "; %s format %d, id %s, created %s by bale %s",
					loc.Kind, out.Format, out.ID, out.Created.Format(time.RFC3339), out.Bale)
			}
			fmt.Fprintln(cx.App.Writer)
			if len(out.Bases) > 0 {
				what := "patch:"
				if out.Additive {
					what = "patch: the images above are what it adds to or moves in its bases;"
				}
				fmt.Fprintf(cx.App.Writer, "%s carries %d of the blobs (%s); expects the others from:\n",
					what, out.CarriedBlobs, units.Bytes(out.CarriedBytes))
				for _, b := range out.Bases {
					fmt.Fprintf(cx.App.Writer, "  base %s  %s\n", b.ID, b.Name)
				}
				for _, r := range out.Removed {
					fmt.Fprintf(cx.App.Writer, "  removes tag %s\n", r)
				}
			}
			if len(sigs) > 0 {
				printSignatures(cx.App.Writer, sigs)
			}
			return nil
		},
	}
}

// listColumns are the columns of the text output of `bale list`. REPOSITORY, TAG and
// PLATFORMS shrink to fit the terminal; DIGEST is shortened by listRows, not by the fitting.
var listColumns = []column{
	{Header: "REPOSITORY", Min: 16, Shorten: shortenMiddle},
	{Header: "TAG", Min: 12, Shorten: shortenMiddle},
	{Header: "DIGEST"},
	{Header: "TYPE"},
	{Header: "PLATFORMS", Min: 11, Shorten: shortenPlatforms},
	{Header: "SIZE"},
	{Header: "REFERRERS", Min: 9, Shorten: shortenEnd},
}

// listRows are the cells of the text output, one row per image, in the order of
// listColumns; short shows each digest in its short form.
func listRows(images []listImage, short bool) [][]string {
	rows := make([][]string, 0, len(images))
	for _, im := range images {
		tag := im.Tag
		if tag == "" {
			tag = "<pinned>"
		}
		ps := strings.Join(im.Platforms, ",")
		if im.Absent > 0 {
			ps += fmt.Sprintf(" (sparse: %d of %d platforms)", len(im.Platforms), len(im.Platforms)+im.Absent)
		}
		dg := im.Digest
		if short {
			dg = shortDigest(dg)
		}
		rows = append(rows, []string{im.Repo, tag, dg, shortType(im.MediaType), ps, units.Bytes(im.Size), referrersCell(im.Kinds)})
	}
	return rows
}

// shortDigest is the algorithm and the first 12 hex digits of d, as docker shows an image ID:
// sha256:7ad081014c69.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		algo, hex = "", d
	} else {
		algo += ":"
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return algo + hex
}

// shortenPlatforms cuts the end of a list of platforms but keeps its sparse note whole, or
// else as "(sparse 1/2)", while there is room for it.
func shortenPlatforms(s string, width int) string {
	if runeWidth(s) <= width {
		return s
	}
	list, note, ok := strings.Cut(s, " (sparse: ")
	if !ok {
		return shortenEnd(s, width)
	}
	var have, all int
	if _, err := fmt.Sscanf(note, "%d of %d platforms)", &have, &all); err == nil {
		for _, n := range []string{" (sparse: " + note, fmt.Sprintf(" (sparse %d/%d)", have, all)} {
			if room := width - runeWidth(n); room >= 2 {
				return shortenEnd(list, room) + n
			}
		}
	}
	return shortenEnd(s, width)
}

func listOf(loc location, c *catalog.Catalog) listOutput {
	out := listOutput{Location: loc.String(), ID: c.Meta.ID, Blobs: len(c.Blobs), Bytes: c.TotalBlobBytes(), Images: []listImage{},
		Bases: c.Bases, Additive: c.Additive(), CarriedBlobs: len(c.CarriedBlobs()), CarriedBytes: c.CarriedBytes()}
	for _, e := range c.Removals() {
		out.Removed = append(out.Removed, e.Repo+":"+e.Tag)
	}
	if loc.Kind == kindBundle || loc.Kind == kindCatalog {
		out.Format, out.Created, out.Bale = c.Meta.Format, &c.Meta.Created, c.Meta.BaleVersion
	}
	out.Images, _ = listImages(c, out.Images)
	return out
}

// listImages appends the rows of c's images to images, and says how many of them are images
// proper: those after are attachments whose subject c does not hold, listed last.
func listImages(c *catalog.Catalog, images []listImage) ([]listImage, int) {
	entries, attached, owned := c.ImageAttachmentsSplit()
	owned += len(images)
	for i, e := range entries {
		m := c.Manifests[e.Digest]
		im := listImage{Repo: e.Repo, Tag: e.Tag, Digest: string(e.Digest), Size: c.ImageSize(e.Digest)}
		im.Kind, im.Name, im.Version = kindOf(c, e.Repo, e.Tag, e.Digest)
		if m != nil {
			im.MediaType = m.MediaType
			im.Platforms = c.Platforms(m)
			im.Absent = len(m.Absent)
		}
		for _, a := range attached[i] {
			lr := listReferrer{Tag: a.Tag, Digest: string(a.Digest), Subject: string(a.Subject), Kind: a.Kind}
			if am := c.Manifests[a.Digest]; am != nil {
				lr.MediaType, lr.Size = am.MediaType, am.Size
			}
			im.Referrers = append(im.Referrers, lr)
		}
		im.Kinds = catalog.CountKinds(attached[i])
		images = append(images, im)
	}
	return images, owned
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

// referrersCell is the REFERRERS cell of an image: how many of each kind, e.g.
// "2 sig, 1 att, 1 spdx+json".
func referrersCell(kinds []catalog.KindCount) string {
	var parts []string
	for _, k := range kinds {
		name := k.Kind
		if i := strings.LastIndex(name, "/"); i >= 0 {
			name = name[i+1:]
		}
		if name == "" {
			name = "referrer"
		}
		parts = append(parts, fmt.Sprintf("%d %s", k.Count, name))
	}
	return strings.Join(parts, ", ")
}

func shortType(mt string) string {
	switch mt {
	case layout.MediaTypeDockerManifest:
		return "docker"
	case layout.MediaTypeDockerManifestList:
		return "docker-list"
	case layout.MediaTypeOCIManifest:
		return "oci"
	case layout.MediaTypeOCIIndex:
		return "oci-index"
	}
	return mt
}
