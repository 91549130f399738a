package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
)

// diffTag is one tag in `bale diff` output.
type diffTag struct {
	Repo string `json:"repo"`
	Tag  string `json:"tag"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// diffReferrer is one referrer, cosign tag or referrers tag in `bale diff` output.
type diffReferrer struct {
	Repo    string `json:"repo"`
	Tag     string `json:"tag,omitempty"`
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// diffPlatforms is a tag whose index holds other platforms' images in NEW than in OLD.
type diffPlatforms struct {
	Repo   string   `json:"repo"`
	Tag    string   `json:"tag"`
	Digest string   `json:"digest"`
	Old    []string `json:"old"`
	New    []string `json:"new"`
}

// diffOutput is the JSON document of `bale diff --json`.
type diffOutput struct {
	Old     string    `json:"old"`
	New     string    `json:"new"`
	Added   []diffTag `json:"added"`
	Removed []diffTag `json:"removed"`
	Changed []diffTag `json:"changed"`
	// Platforms are tags naming the same index in both whose present platforms differ (sparse
	// indexes, bale pack with several --platform).
	Platforms []diffPlatforms `json:"platformsChanged,omitempty"`
	// Referrers that belong to the images (bale list's "referrers"), by repository and tag
	// (cosign's tags, referrers tags) or digest: added, removed, and tags that name another
	// manifest (cosign appends a signature to its .sig manifest).
	ReferrersAdded   []diffReferrer `json:"referrersAdded"`
	ReferrersRemoved []diffReferrer `json:"referrersRemoved"`
	ReferrersChanged []diffReferrer `json:"referrersChanged"`
	BlobsAdded       []string       `json:"blobsAdded"`
	BlobsRemoved     []string       `json:"blobsRemoved"`
	BytesAdded       int64          `json:"bytesAdded"`
	BytesRemoved     int64          `json:"bytesRemoved"`
	// PatchBytes is what `bale pack --base OLD NEW` would carry (blobs NEW has and OLD lacks),
	// and PatchSize the predicted size of that patch file.
	PatchBytes int64 `json:"patchBytes"`
	PatchSize  int64 `json:"patchSize"`
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
			oldLoc, oldC, err := loadCatalogArg(cx.Args().Get(0))
			if err != nil {
				return err
			}
			newLoc, newC, err := loadCatalogArg(cx.Args().Get(1))
			if err != nil {
				return err
			}
			out, err := diffCatalogs(oldC, newC)
			if err != nil {
				return err
			}
			out.Old, out.New = oldLoc.String(), newLoc.String()
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

func diffCatalogs(oldC, newC *catalog.Catalog) (*diffOutput, error) {
	out := &diffOutput{Added: []diffTag{}, Removed: []diffTag{}, Changed: []diffTag{}, BlobsAdded: []string{}, BlobsRemoved: []string{},
		ReferrersAdded: []diffReferrer{}, ReferrersRemoved: []diffReferrer{}, ReferrersChanged: []diffReferrer{}}
	tags := func(c *catalog.Catalog) (map[[2]string]digest.Digest, map[[2]string]catalog.Attachment) {
		m, refs := map[[2]string]digest.Digest{}, map[[2]string]catalog.Attachment{}
		images, attached := c.ImageAttachments()
		for _, e := range images {
			if e.Tag != "" {
				m[[2]string{e.Repo, e.Tag}] = e.Digest
			}
		}
		for _, as := range attached {
			for _, a := range as {
				refs[[2]string{a.Repo, cmp.Or(a.Tag, string(a.Digest))}] = a
			}
		}
		return m, refs
	}
	ot, oldRefs := tags(oldC)
	nt, newRefs := tags(newC)
	for k, a := range newRefs {
		r := diffReferrer{Repo: a.Repo, Tag: a.Tag, Subject: string(a.Subject), Kind: a.Kind, New: string(a.Digest)}
		if o, ok := oldRefs[k]; !ok {
			out.ReferrersAdded = append(out.ReferrersAdded, r)
		} else if o.Digest != a.Digest {
			r.Old = string(o.Digest)
			out.ReferrersChanged = append(out.ReferrersChanged, r)
		}
	}
	for k, a := range oldRefs {
		if _, ok := newRefs[k]; !ok {
			out.ReferrersRemoved = append(out.ReferrersRemoved, diffReferrer{Repo: a.Repo, Tag: a.Tag, Subject: string(a.Subject), Kind: a.Kind, Old: string(a.Digest)})
		}
	}
	for _, l := range [][]diffReferrer{out.ReferrersAdded, out.ReferrersRemoved, out.ReferrersChanged} {
		sort.Slice(l, func(i, j int) bool {
			return l[i].Repo+" "+l[i].Tag+l[i].Old+l[i].New < l[j].Repo+" "+l[j].Tag+l[j].Old+l[j].New
		})
	}
	for k, d := range nt {
		if od, ok := ot[k]; !ok {
			out.Added = append(out.Added, diffTag{Repo: k[0], Tag: k[1], New: string(d)})
		} else if od != d {
			out.Changed = append(out.Changed, diffTag{Repo: k[0], Tag: k[1], Old: string(od), New: string(d)})
		}
	}
	for k, d := range ot {
		if _, ok := nt[k]; !ok {
			out.Removed = append(out.Removed, diffTag{Repo: k[0], Tag: k[1], Old: string(d)})
		}
	}
	for k, d := range nt {
		om, nm := oldC.Manifests[d], newC.Manifests[d]
		if ot[k] != d || om == nil || nm == nil || len(nm.Children) == 0 {
			continue
		}
		op, np := platformsOf(oldC, om), platformsOf(newC, nm)
		if strings.Join(op, ",") != strings.Join(np, ",") {
			out.Platforms = append(out.Platforms, diffPlatforms{Repo: k[0], Tag: k[1], Digest: string(d), Old: op, New: np})
		}
	}
	sort.Slice(out.Platforms, func(i, j int) bool {
		return out.Platforms[i].Repo+":"+out.Platforms[i].Tag < out.Platforms[j].Repo+":"+out.Platforms[j].Tag
	})
	for _, l := range [][]diffTag{out.Added, out.Removed, out.Changed} {
		sort.Slice(l, func(i, j int) bool { return l[i].Repo+":"+l[i].Tag < l[j].Repo+":"+l[j].Tag })
	}
	for _, d := range newC.SortedBlobs() {
		if oldC.Blobs[d] == nil {
			out.BlobsAdded = append(out.BlobsAdded, string(d))
			out.BytesAdded += newC.Blobs[d].Size
		}
	}
	for _, d := range oldC.SortedBlobs() {
		if newC.Blobs[d] == nil {
			out.BlobsRemoved = append(out.BlobsRemoved, string(d))
			out.BytesRemoved += oldC.Blobs[d].Size
		}
	}
	patch := newC.Clone()
	patch.MakePatch(catalog.View([]catalog.NamedCatalog{{Name: "OLD", Catalog: oldC}}), false)
	if err := patch.Finish(); err != nil {
		return nil, err
	}
	out.PatchBytes = patch.CarriedBytes()
	size, err := archive.PredictSize(patch)
	if err != nil {
		return nil, err
	}
	out.PatchSize = size
	return out, nil
}
