// Package listing makes the rows of bale list from a catalog: one row per tag (and per image
// pinned by digest) with its kind, platforms, size and referrers, the text cells of its table,
// and the list member (bale/list.jsonl) a format-5 bundle carries right after its catalog, so
// that bale list prints a bundle of any size without reading its catalog (docs/bundle-format.md
// §5, meta/list). The member is a pure function of the catalog: Render gives the same bytes
// for the same catalog on every machine.
package listing

import (
	"cmp"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// Image is one row of `bale list` (one object of its --json "images").
type Image struct {
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
	Referrers []Referrer `json:"referrers,omitempty"`
	// Kinds counts Referrers by kind, referrers tags left out.
	Kinds []catalog.KindCount `json:"referrerKinds,omitempty"`
}

// Referrer is one thing that belongs to an image in `bale list --json`.
type Referrer struct {
	Tag       string `json:"tag,omitempty"` // a cosign tag or a referrers tag
	Digest    string `json:"digest"`
	Subject   string `json:"subject"`
	Kind      string `json:"kind"` // artifact type, cosign suffix or "referrers-index"
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// Output is the JSON document of `bale list --json`.
type Output struct {
	Location string     `json:"location"`
	ID       string     `json:"id"`
	Format   int        `json:"format,omitempty"`
	Created  *time.Time `json:"created,omitempty"`
	Bale     string     `json:"bale,omitempty"`
	// Images are the rows, grouped by kind (Group): images, then charts, then files.
	Images []Image `json:"images"`
	Blobs  int     `json:"blobs"`
	Bytes  int64   `json:"bytes"`
	// Patch details: the bases, and what the bundle carries of its blobs.
	Bases        []catalog.Base `json:"bases,omitempty"`
	CarriedBlobs int            `json:"carriedBlobs"`
	CarriedBytes int64          `json:"carriedBytes"`
	Removed      []string       `json:"removedTags,omitempty"`

	// Signatures are a bundle's signatures that verified (see bale sign): the caller's
	// []bundlesig.Signature (this package cannot name the type: bundlesig imports archive,
	// which imports this package). Set only when there are some.
	Signatures any `json:"signatures,omitempty"`
	// Additive is set for a format-4 patch: Images are what it adds to or moves in its bases.
	Additive bool `json:"additive,omitempty"`
}

// KindOf is what manifest d tagged tag in repo is (catalog.Kind), with a chart's name and
// version or a file artifact's name.
func KindOf(c *catalog.Catalog, repo, tag string, d digest.Digest) (kind layout.Kind, name, version string) {
	switch kind = c.Kind(repo, d); kind {
	case layout.KindChart:
		name, version = layout.ChartName(repo, tag)
	case layout.KindFile:
		name = layout.FileName(repo)
	}
	return kind, name, version
}

// Images appends the rows of c's images to images, and says how many of them are images
// proper: those after are attachments whose subject c does not hold, listed last.
func Images(c *catalog.Catalog, images []Image) ([]Image, int) {
	entries, attached, owned := c.ImageAttachmentsSplit()
	owned += len(images)
	for i, e := range entries {
		m := c.Manifests[e.Digest]
		im := Image{Repo: e.Repo, Tag: e.Tag, Digest: string(e.Digest), Size: c.ImageSize(e.Digest)}
		im.Kind, im.Name, im.Version = KindOf(c, e.Repo, e.Tag, e.Digest)
		if m != nil {
			im.MediaType = m.MediaType
			im.Platforms = c.Platforms(m)
			im.Absent = len(m.Absent)
		}
		for _, a := range attached[i] {
			lr := Referrer{Tag: a.Tag, Digest: string(a.Digest), Subject: string(a.Subject), Kind: a.Kind}
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

// Kinds are the kinds of rows in the order bale list prints their tables.
var Kinds = []layout.Kind{layout.KindImage, layout.KindChart, layout.KindFile}

// kindRank is the place of k's table in Kinds.
func kindRank(k layout.Kind) int {
	if i := slices.Index(Kinds, k); i >= 0 {
		return i
	}
	return len(Kinds)
}

// Group sorts images by kind in print order (images, charts, files), keeping the order of the
// rows of one kind: the order of the text tables, of --json and of the list member.
func Group(images []Image) {
	slices.SortStableFunc(images, func(a, b Image) int { return cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)) })
}

// Of is the output of `bale list` for catalog c (Location and, for a catalog that is not a
// bundle's or a catalog file's, Format, Created and Bale left for the caller), its rows grouped.
func Of(c *catalog.Catalog) Output {
	out := Output{ID: c.Meta.ID, Blobs: len(c.Blobs), Bytes: c.TotalBlobBytes(), Images: []Image{},
		Bases: c.Bases, Additive: c.Additive(), CarriedBlobs: c.CarriedCount(), CarriedBytes: c.CarriedBytes(),
		Format: c.Meta.Format, Created: &c.Meta.Created, Bale: c.Meta.BaleVersion}
	for _, e := range c.Removals() {
		out.Removed = append(out.Removed, e.Repo+":"+e.Tag)
	}
	out.Images, _ = Images(c, out.Images)
	Group(out.Images)
	return out
}
