package catalog

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// FormatVersion is the newest catalog and bundle format this package reads and writes: 2 adds
// sparse indexes (ManifestRecord.Absent); 3 adds referrers (Repo.Referrers) and indexes whose
// children are indexes; 4 lays the repositories out flat (one bucket per kind of record, keyed
// <repo>\x00<name>, instead of buckets per repository), which halves the bytes a tag takes,
// and adds additive patches (a patch records only what it adds to its bases, and its id binds
// them); 5 is format 4 in a bundle that carries the list member (bale/list.jsonl, recorded in
// meta/list) right after the catalog. Every catalog bale builds is format 4 (FormatCatalog),
// and every bundle bale writes is format 5 (older bales refuse it rather than misread it);
// formats 1 to 4 are still read.
const FormatVersion = 5

// FormatCatalog is the format of every catalog bale builds (and of a catalog file written by
// bale catalog -o); the bundle writer makes it format 5 when it adds the list member.
const FormatCatalog = 4

// The first format with sparse indexes, the first with referrers and nested indexes, and the
// first with the flat layout and additive patches.
const (
	formatSparse    = 2
	formatReferrers = 3
	formatFlat      = 4
	formatAdditive  = 4
	formatList      = 5
)

// ErrNotFound reports a tag, manifest or blob the catalog does not hold.
var ErrNotFound = layout.ErrNotFound

// ErrInconsistent reports a catalog whose parts contradict each other (a tag pointing at an
// unknown manifest, a manifest naming a blob the catalog lacks, an unreferenced blob).
var ErrInconsistent = errors.New("inconsistent catalog")

// Meta describes a bundle as a whole.
type Meta struct {
	Format      int       `json:"format"`
	Created     time.Time `json:"created"`
	BaleVersion string    `json:"bale"`
	ID          string    `json:"id"`
	// Volumes are the files after the first of a bundle split into volumes (bale pack
	// --volume-size), but the last, which holds only the seek table; empty for one file.
	Volumes []Volume `json:"volumes,omitempty"`
	// Signatures are the sizes of the signature members that follow the catalog member
	// (bale/signatures/<n>.sigstore.json, n from 1; bale pack --sign-key), in order; empty
	// when the bundle carries none. Like Volumes, outside the id and the signed statement.
	Signatures []int64 `json:"signatures,omitempty"`
	// List is the size and sha256 of the list member that follows the catalog member
	// (bale/list.jsonl, format 5): what bale list prints, rendered from this catalog. Like
	// Signatures, outside the id; the signed statement names it.
	List *ListMember `json:"list,omitempty"`
}

// ListMember records the list member of a format-5 bundle: its size and sha256.
type ListMember struct {
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
}

// Volume is one file of a split bundle: its name (without directory), size and sha256.
type Volume struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
}

// Repo is what one repository holds.
type Repo struct {
	Tags      map[string]digest.Digest `json:"tags,omitempty"`
	Pinned    []digest.Digest          `json:"pinned,omitempty"`
	Manifests []digest.Digest          `json:"manifests"`
	// Removed are tags a patch removes, with the digest they must still point at to be removed.
	Removed map[string]digest.Digest `json:"removed,omitempty"`
	// Referrers are the manifests carried by digest because they name a carried manifest as
	// their subject (OCI 1.1 referrers; format 3). Cosign's tagged signatures are tags.
	Referrers map[digest.Digest]*ReferrerRecord `json:"referrers,omitempty"`
}

// ReferrerRecord describes one referrer: the manifest it refers to, and what a referrers
// index lists of it besides its media type and size (which its ManifestRecord holds).
type ReferrerRecord struct {
	Subject      digest.Digest     `json:"subject"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// ManifestRecord describes one manifest.
type ManifestRecord struct {
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Platform is the child's platform in its index, or the config's os/architecture for an
	// image manifest, when known.
	Platform *layout.Platform `json:"platform,omitempty"`
	// Children are the manifests of an index, in index order.
	Children []digest.Digest `json:"children,omitempty"`
	// Blobs are the config then the layers of an image manifest.
	Blobs []digest.Digest `json:"blobs,omitempty"`
	// Absent are the children of a sparse index that the catalog does not hold (format 2): the
	// index is kept byte for byte, with only some platforms' images.
	Absent []digest.Digest `json:"absent,omitempty"`

	fromIndex bool // Platform came from an index descriptor (while building only)
}

// BlobRecord describes one blob.
type BlobRecord struct {
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"`
	// Base, in a patch, is the id of the base that holds the blob, which the patch does not
	// carry; "" means the bundle carries it.
	Base string `json:"base,omitempty"`
	// NotCarried marks a non-distributable layer the source did not hold (format 3): no
	// bundle carries it and no target is expected to hold it, as registries do not; clients
	// fetch it from the urls its manifest names.
	NotCarried bool `json:"notCarried,omitempty"`
}

// Carried reports whether the bundle itself carries the blob: not from a base, and not a
// non-distributable layer left out.
func (b *BlobRecord) Carried() bool { return b.Base == "" && !b.NotCarried }

// Base describes a bundle, catalog or location a patch was made against.
type Base struct {
	ID    string `json:"-"`
	Name  string `json:"name"`  // as given to --base, informative
	Order int    `json:"order"` // position among the bases, from 0
}

// Catalog is everything a bundle or layout holds.
type Catalog struct {
	Meta      Meta
	Repos     map[string]*Repo
	Manifests map[digest.Digest]*ManifestRecord
	Blobs     map[digest.Digest]*BlobRecord
	// Bases of a patch, in --base order; nil for a full bundle.
	Bases []Base

	unsettled bool // images were added since the format and sparse indexes were settled
	additive  bool // a patch recording only what it adds to its bases (format 4)
}

// New returns an empty catalog of the current format.
func New() *Catalog {
	return &Catalog{
		Meta:      Meta{Format: FormatCatalog},
		Repos:     map[string]*Repo{},
		Manifests: map[digest.Digest]*ManifestRecord{},
		Blobs:     map[digest.Digest]*BlobRecord{},
	}
}

func (c *Catalog) repo(name string) *Repo {
	r := c.Repos[name]
	if r == nil {
		r = &Repo{Tags: map[string]digest.Digest{}}
		c.Repos[name] = r
	}
	return r
}

// IsPatch reports whether the catalog is a patch's: some blobs are expected from bases, or
// it names bases.
func (c *Catalog) IsPatch() bool { return len(c.Bases) > 0 }

// Additive reports whether the catalog is a format-4 patch's: it records only the tags, pins
// and referrers it adds to (or moves in) the composed view of its bases, so it means nothing
// without them. A format-3 patch records the whole release.
func (c *Catalog) Additive() bool { return c.additive && len(c.Bases) > 0 }

// Clone returns a deep copy of c.
func (c *Catalog) Clone() *Catalog {
	out := New()
	out.Meta = c.Meta
	out.unsettled, out.additive = c.unsettled, c.additive
	out.Bases = append([]Base(nil), c.Bases...)
	for name, r := range c.Repos {
		nr := &Repo{Tags: maps.Clone(r.Tags), Pinned: slices.Clone(r.Pinned), Manifests: slices.Clone(r.Manifests), Removed: maps.Clone(r.Removed)}
		if r.Referrers != nil {
			nr.Referrers = map[digest.Digest]*ReferrerRecord{}
			for d, rr := range r.Referrers {
				nrr := *rr
				nrr.Annotations = maps.Clone(rr.Annotations)
				nr.Referrers[d] = &nrr
			}
		}
		if nr.Tags == nil {
			nr.Tags = map[string]digest.Digest{}
		}
		out.Repos[name] = nr
	}
	for d, m := range c.Manifests {
		nm := *m
		nm.Children, nm.Blobs = slices.Clone(m.Children), slices.Clone(m.Blobs)
		if m.Platform != nil {
			p := *m.Platform
			nm.Platform = &p
		}
		out.Manifests[d] = &nm
	}
	for d, b := range c.Blobs {
		nb := *b
		out.Blobs[d] = &nb
	}
	return out
}
