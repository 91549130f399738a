package listing

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
)

// ErrMember reports a list member that is not what Render writes.
var ErrMember = errors.New("malformed list member")

// Header is the first line of the list member: what bale list prints besides the rows, what
// the signed statement names (ID, Format, Bases, Volumes), how many rows of each kind follow,
// and the widths of the text cells, so that the tables are printed aligned, and fitted to a
// terminal, as the rows are read.
type Header struct {
	ID           string           `json:"id"`
	Format       int              `json:"format"`
	Created      time.Time        `json:"created"`
	Bale         string           `json:"bale"`
	Blobs        int              `json:"blobs"`
	Bytes        int64            `json:"bytes"`
	CarriedBlobs int              `json:"carriedBlobs"`
	CarriedBytes int64            `json:"carriedBytes"`
	Bases        []Base           `json:"bases,omitempty"`
	Removed      []string         `json:"removedTags,omitempty"`
	Additive     bool             `json:"additive,omitempty"`
	Volumes      []catalog.Volume `json:"volumes,omitempty"`
	// Counts are how many rows of each kind follow, in the order of Kinds.
	Counts Counts `json:"counts"`
	// Widths are, per table, the widest cell of each column (Cells), header not included.
	Widths Widths `json:"widths"`
}

// Base is a patch's base in the header: its id, its name as given to --base, its order.
type Base struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Order int    `json:"order"`
}

// CatalogBases are bases as catalog.Base records.
func CatalogBases(bases []Base) []catalog.Base {
	var out []catalog.Base
	for _, b := range bases {
		out = append(out, catalog.Base{ID: b.ID, Name: b.Name, Order: b.Order})
	}
	return out
}

// Counts are how many rows of each kind a list member holds.
type Counts struct {
	Images int `json:"images"`
	Charts int `json:"charts"`
	Files  int `json:"files"`
}

// Of is the count of kind k.
func (c Counts) Of(k layout.Kind) int {
	switch k {
	case layout.KindChart:
		return c.Charts
	case layout.KindFile:
		return c.Files
	}
	return c.Images
}

// Widths are the widest cells of the image, chart and file tables.
type Widths struct {
	Image TableWidths `json:"image"`
	Chart TableWidths `json:"chart"`
	File  TableWidths `json:"file"`
}

// Of is the widths of the table of kind k.
func (w *Widths) Of(k layout.Kind) *TableWidths {
	switch k {
	case layout.KindChart:
		return &w.Chart
	case layout.KindFile:
		return &w.File
	}
	return &w.Image
}

// TableWidths are the widest cell of each column of one table (in runes, Width), with every
// digest whole (Wide) and with digests in their short form (Short, as on a terminal). A
// REFERRERS width of 0 means no row of the table has referrers.
type TableWidths struct {
	Wide  []int `json:"wide"`
	Short []int `json:"short"`
}

// Width is the number of columns s takes on a terminal: one per rune.
func Width(s string) int { return utf8.RuneCountInString(s) }

// Cells are the text cells of im in its table: IMAGE (REPOSITORY, TAG, DIGEST, TYPE,
// PLATFORMS, SIZE, REFERRERS), CHART (CHART, VERSION, REPOSITORY, DIGEST, SIZE, REFERRERS) or
// FILE (FILE, TAG, DIGEST, SIZE, REFERRERS); short shows the digest in its short form.
func Cells(im Image, short bool) []string {
	dg := im.Digest
	if short {
		dg = ShortDigest(dg)
	}
	size, refs := units.Bytes(im.Size), ReferrersCell(im.Kinds)
	switch im.Kind {
	case layout.KindChart:
		return []string{im.Name, cellOr(im.Version, "<pinned>"), im.Repo, dg, size, refs}
	case layout.KindFile:
		return []string{im.Name, cellOr(im.Tag, "<pinned>"), dg, size, refs}
	}
	ps := strings.Join(im.Platforms, ",")
	if im.Absent > 0 {
		ps += fmt.Sprintf(" (sparse: %d of %d platforms)", len(im.Platforms), len(im.Platforms)+im.Absent)
	}
	return []string{im.Repo, cellOr(im.Tag, "<pinned>"), dg, ShortType(im.MediaType), ps, size, refs}
}

// cellOr is s, or instead when s is empty.
func cellOr(s, instead string) string {
	if s == "" {
		return instead
	}
	return s
}

// ShortDigest is the algorithm and the first 12 hex digits of d, as docker shows an image ID:
// sha256:7ad081014c69.
func ShortDigest(d string) string {
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

// ReferrersCell is the REFERRERS cell of an image: how many of each kind, e.g.
// "2 sig, 1 att, 1 spdx+json".
func ReferrersCell(kinds []catalog.KindCount) string {
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

// ShortType is the TYPE cell of a media type: docker, docker-list, oci, oci-index, or the
// media type itself.
func ShortType(mt string) string {
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

// widen makes w as wide as the cells of im.
func (w *TableWidths) widen(im Image) {
	for short, ws := range map[bool]*[]int{false: &w.Wide, true: &w.Short} {
		cells := Cells(im, short)
		if len(*ws) == 0 {
			*ws = make([]int, len(cells))
		}
		for i, c := range cells {
			(*ws)[i] = max((*ws)[i], Width(c))
		}
	}
}

// HeaderOf is the header of the list member of catalog c, whose rows are images (Of).
func HeaderOf(c *catalog.Catalog, out Output) Header {
	// Created as the catalog records it (RFC 3339, seconds), bases in their order as a catalog
	// read back has them: the member rendered again from the bundle's catalog is the same.
	h := Header{ID: out.ID, Format: c.Meta.Format, Created: c.Meta.Created.UTC().Truncate(time.Second), Bale: c.Meta.BaleVersion,
		Blobs: out.Blobs, Bytes: out.Bytes, CarriedBlobs: out.CarriedBlobs, CarriedBytes: out.CarriedBytes,
		Removed: out.Removed, Additive: out.Additive, Volumes: c.Meta.Volumes}
	for _, b := range out.Bases {
		h.Bases = append(h.Bases, Base{ID: b.ID, Name: b.Name, Order: b.Order})
	}
	slices.SortStableFunc(h.Bases, func(a, b Base) int { return cmp.Compare(a.Order, b.Order) })
	h.Counts, h.Widths = Measure(out.Images)
	return h
}

// Measure counts images by kind and finds the widest cell of each column of each table.
func Measure(images []Image) (Counts, Widths) {
	var counts Counts
	var widths Widths
	for _, k := range Kinds {
		w := widths.Of(k)
		w.widen(Image{Kind: k}) // every column, even in an empty table
		for i := range w.Wide {
			w.Wide[i], w.Short[i] = 0, 0
		}
	}
	for _, im := range images {
		switch im.Kind {
		case layout.KindChart:
			counts.Charts++
		case layout.KindFile:
			counts.Files++
		default:
			counts.Images++
		}
		widths.Of(im.Kind).widen(im)
	}
	return counts, widths
}

// Render is the list member of catalog c: its header (HeaderOf) on the first line, then one
// row per line, compact JSON, in the order of Of (grouped by kind). Equal catalogs give equal
// bytes.
func Render(c *catalog.Catalog) ([]byte, error) {
	out := Of(c)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(HeaderOf(c, out)); err != nil {
		return nil, fmt.Errorf("list member of bundle %s: %w", c.Meta.ID, err)
	}
	for _, im := range out.Images {
		if err := enc.Encode(im); err != nil {
			return nil, fmt.Errorf("list member of bundle %s: %w", c.Meta.ID, err)
		}
	}
	return buf.Bytes(), nil
}

// ParseHeader parses the first line of a list member.
func ParseHeader(line []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return h, fmt.Errorf("list member header: %v: %w", err, ErrMember)
	}
	if h.ID == "" || h.Counts.Images < 0 || h.Counts.Charts < 0 || h.Counts.Files < 0 {
		return h, fmt.Errorf("list member header without an id or with negative counts: %w", ErrMember)
	}
	for _, k := range Kinds {
		w := h.Widths.Of(k)
		n := len(Cells(Image{Kind: k}, false))
		if len(w.Wide) != n || len(w.Short) != n {
			return h, fmt.Errorf("list member header: %s widths for %d/%d columns, want %d: %w", k, len(w.Wide), len(w.Short), n, ErrMember)
		}
	}
	return h, nil
}

// ParseRow parses one row line of a list member.
func ParseRow(line []byte) (Image, error) {
	var im Image
	if err := json.Unmarshal(line, &im); err != nil {
		return im, fmt.Errorf("list member row: %v: %w", err, ErrMember)
	}
	if kindRank(im.Kind) == len(Kinds) {
		return im, fmt.Errorf("list member row of kind %q: %w", im.Kind, ErrMember)
	}
	return im, nil
}
