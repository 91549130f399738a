package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
)

// diffOutput is the JSON document of `bale diff --json`.
type diffOutput struct {
	Old string `json:"old"`
	New string `json:"new"`
	*catalog.Diff
	// PatchSize is the predicted size of the patch file (Diff.PatchBytes of blobs).
	PatchSize int64 `json:"patchSize"`
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "compare two bundles, catalogs or locations: tags, blobs, and the size of the patch between them",
		ArgsUsage: "OLD NEW",
		Description: `OLD and NEW are bundles (only their catalogs are read), catalog files, or registry:/dir:
locations. Prints the tags added, removed and changed (old and new digest), the blobs added and
removed, the referrers (signatures, attestations, SBOMs: what 'bale list' counts under each
image) added, removed and changed (a cosign tag that names another manifest), and what a
patch from OLD to NEW ('bale pack --base OLD ... NEW') would carry, with
its predicted file size: the blob bytes plus the compressed catalog plus tar overhead.
Compressed layers (gzip, zstd) do not shrink further, so the prediction is close for them;
uncompressed layers make the real patch smaller than predicted.

` + exitCodesHelp,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON document"}},
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 2, "OLD NEW"); err != nil {
				return err
			}
			oldLoc, oldC, err := loadCatalogArg(cx, cx.Args().Get(0))
			if err != nil {
				return err
			}
			newLoc, newC, err := loadCatalogArg(cx, cx.Args().Get(1))
			if err != nil {
				return err
			}
			if newC, err = composeDiffNew(oldLoc, oldC, newLoc, newC); err != nil {
				return err
			}
			d, err := catalog.Compare(oldC, newC)
			if err != nil {
				return err
			}
			size, err := archive.PredictSize(d.Patch)
			if err != nil {
				return err
			}
			out := diffOutput{Old: oldLoc.String(), New: newLoc.String(), Diff: d, PatchSize: size}
			if cx.Bool("json") {
				enc := json.NewEncoder(cx.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			w := cx.App.Writer
			for _, t := range out.Added {
				fmt.Fprintf(w, "+ %s:%s %s\n", t.Repo, t.Tag, t.New)
			}
			for _, t := range out.Removed {
				fmt.Fprintf(w, "- %s:%s %s\n", t.Repo, t.Tag, t.Old)
			}
			for _, t := range out.Changed {
				fmt.Fprintf(w, "~ %s:%s %s -> %s\n", t.Repo, t.Tag, t.Old, t.New)
			}
			for _, r := range out.ReferrersAdded {
				fmt.Fprintf(w, "+ referrer %s %s of %s (%s)\n", r.Repo, cmp.Or(r.Tag, r.New), r.Subject, r.Kind)
			}
			for _, r := range out.ReferrersRemoved {
				fmt.Fprintf(w, "- referrer %s %s of %s (%s)\n", r.Repo, cmp.Or(r.Tag, r.Old), r.Subject, r.Kind)
			}
			for _, r := range out.ReferrersChanged {
				fmt.Fprintf(w, "~ referrer %s:%s %s -> %s (%s)\n", r.Repo, r.Tag, r.Old, r.New, r.Kind)
			}
			for _, p := range out.Platforms {
				fmt.Fprintf(w, "± %s:%s %s (same index): platforms %s -> %s\n", p.Repo, p.Tag, p.Digest,
					strings.Join(p.Old, ","), strings.Join(p.New, ","))
			}
			fmt.Fprintf(w, "tags: %d added, %d removed, %d changed; referrers: %d added, %d removed, %d changed; blobs: %d added (%s), %d removed (%s)\n",
				len(out.Added), len(out.Removed), len(out.Changed),
				len(out.ReferrersAdded), len(out.ReferrersRemoved), len(out.ReferrersChanged),
				len(out.BlobsAdded), units.Bytes(out.BytesAdded), len(out.BlobsRemoved), units.Bytes(out.BytesRemoved))
			fmt.Fprintf(w, "a patch from OLD to NEW carries %s of blobs; predicted size %s\n", units.Bytes(out.PatchBytes), units.Bytes(out.PatchSize))
			return nil
		},
	}
}

// composeDiffNew returns what NEW holds as a release. A format-4 patch records only what it
// adds to its bases, so as NEW it is composed over OLD, which must be what it was made
// against (its base, or a patch or catalog of its bases); as OLD it is refused.
func composeDiffNew(oldLoc location, oldC *catalog.Catalog, newLoc location, newC *catalog.Catalog) (*catalog.Catalog, error) {
	if oldC.Additive() {
		return nil, fmt.Errorf("OLD %s is a format-4 patch, which records only what it adds to its bases: give the bundle, catalog or location it was applied to (bale catalog of the unpacked storage): %w",
			oldLoc, layout.ErrInvalid)
	}
	if !newC.Additive() {
		return newC, nil
	}
	held := map[string]bool{oldC.Meta.ID: true}
	for _, b := range oldC.Bases {
		held[b.ID] = true
	}
	for _, b := range newC.Bases {
		if !held[b.ID] {
			return nil, fmt.Errorf("NEW %s is a format-4 patch of %s (%s), which OLD %s is not: give its base as OLD: %w",
				newLoc, b.Name, b.ID, oldLoc, layout.ErrInvalid)
		}
	}
	return catalog.Compose(oldC, newC)
}
