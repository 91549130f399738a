package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// FormatVersion is the newest catalog and bundle format this package reads and writes: 2 adds
// sparse indexes (ManifestRecord.Absent); 3 adds referrers (Repo.Referrers) and indexes whose
// children are indexes. A bundle is written in the oldest format that holds it: 1, which
// bale 0.1 reads, 2 or 3, which older bales refuse rather than misread.
const FormatVersion = 3

// The first format with sparse indexes, and the first with referrers and nested indexes.
const (
	formatSparse    = 2
	formatReferrers = 3
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
}

// Volume is one file of a split bundle: its name (without directory), size and sha256.
type Volume struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
}

// Validate checks that v names a plain file name beside the first volume, with a size and a
// sha256 digest.
func (v Volume) Validate() error {
	if v.Name == "" || v.Name == "." || v.Name == ".." || strings.ContainsAny(v.Name, "/\\\x00") || len(v.Name) > 255 {
		return fmt.Errorf("volume name %q is not a file name: %w", v.Name, ErrInconsistent)
	}
	if v.Size <= 0 {
		return fmt.Errorf("volume %s of %d bytes: %w", v.Name, v.Size, ErrInconsistent)
	}
	if err := layout.ValidateDigest(v.Digest); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return nil
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
}

// New returns an empty catalog of the current format.
func New() *Catalog {
	return &Catalog{
		Meta:      Meta{Format: 1},
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

// Carried reports whether the bundle itself carries blob d.
func (c *Catalog) Carried(d digest.Digest) bool {
	b := c.Blobs[d]
	return b != nil && b.Base == "" && !b.NotCarried
}

// CarriedBlobs returns the digests of the blobs the bundle carries, sorted.
func (c *Catalog) CarriedBlobs() []digest.Digest {
	var out []digest.Digest
	for _, d := range c.SortedBlobs() {
		if c.Carried(d) {
			out = append(out, d)
		}
	}
	return out
}

// ExpectedBlobs returns the digests of the blobs a patch expects from its bases, sorted.
func (c *Catalog) ExpectedBlobs() []digest.Digest {
	var out []digest.Digest
	for _, d := range c.SortedBlobs() {
		if c.Blobs[d].Base != "" {
			out = append(out, d)
		}
	}
	return out
}

// CarriedBytes is the sum of the sizes of the blobs the bundle carries.
func (c *Catalog) CarriedBytes() int64 {
	var n int64
	for _, b := range c.Blobs {
		if b.Base == "" && !b.NotCarried {
			n += b.Size
		}
	}
	return n
}

// MarkNotCarried records that no bundle carries blob d: a non-distributable layer the
// source does not hold (layout.SkipAbsent).
func (c *Catalog) MarkNotCarried(d digest.Digest) {
	if b := c.Blobs[d]; b != nil {
		b.NotCarried, b.Base = true, ""
		c.settleFormat()
	}
}

// NotCarriedBlobs returns the digests of the non-distributable layers no bundle carries,
// sorted.
func (c *Catalog) NotCarriedBlobs() []digest.Digest {
	var out []digest.Digest
	for _, d := range c.SortedBlobs() {
		if c.Blobs[d].NotCarried {
			out = append(out, d)
		}
	}
	return out
}

// RemoveTag records that a patch removes repo:tag if it still points at d.
func (c *Catalog) RemoveTag(repo, tag string, d digest.Digest) {
	r := c.repo(repo)
	if r.Removed == nil {
		r.Removed = map[string]digest.Digest{}
	}
	r.Removed[tag] = d
}

// Removals lists the tags a patch removes, sorted, as entries holding the digest the tag must
// still point at.
func (c *Catalog) Removals() []Entry {
	var out []Entry
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		for _, t := range slices.Sorted(maps.Keys(r.Removed)) {
			out = append(out, Entry{Repo: name, Tag: t, Digest: r.Removed[t]})
		}
	}
	return out
}

// UsedBy returns the entries whose images need blob or manifest d, for error messages.
func (c *Catalog) UsedBy(d digest.Digest) []Entry {
	var out []Entry
	for _, e := range c.Entries() {
		for _, md := range c.ManifestClosure(e.Digest) {
			m := c.Manifests[md]
			if md == d || (m != nil && slices.Contains(m.Blobs, d)) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// Add records img in repo under tag, or as pinned by digest when tag is "". platforms gives
// the os/architecture of image manifests that are not children of an index (from their
// configs); it may be nil.
func (c *Catalog) Add(repo, tag string, img *layout.Image, platforms map[digest.Digest]layout.Platform) {
	defer c.settleFormat()
	r := c.repo(repo)
	if tag != "" {
		r.Tags[tag] = img.Digest()
	} else {
		r.Pinned = addSorted(r.Pinned, img.Digest())
	}
	if img.Manifest.Subject != nil {
		// A tagged manifest that names a subject is a referrer too: the referrers API lists it.
		c.addReferrerRecord(r, img.Manifest)
	}
	c.addManifests(r, img, platforms)
}

// AddReferrer records img, a manifest that names its subject, as a referrer in repo (carried
// by digest, listed by Referrers).
func (c *Catalog) AddReferrer(repo string, img *layout.Image, platforms map[digest.Digest]layout.Platform) {
	defer c.settleFormat()
	r := c.repo(repo)
	if img.Manifest.Subject == nil {
		r.Pinned = addSorted(r.Pinned, img.Digest())
	} else {
		c.addReferrerRecord(r, img.Manifest)
	}
	c.addManifests(r, img, platforms)
}

// addReferrerRecord records m, which names a subject, among r's referrers.
func (c *Catalog) addReferrerRecord(r *Repo, m *layout.Manifest) {
	if r.Referrers == nil {
		r.Referrers = map[digest.Digest]*ReferrerRecord{}
	}
	rd := m.ReferrerDescriptor()
	r.Referrers[m.Digest] = &ReferrerRecord{Subject: m.Subject.Digest, ArtifactType: rd.ArtifactType, Annotations: maps.Clone(rd.Annotations)}
}

// addManifests records every manifest and blob of img as held by r.
func (c *Catalog) addManifests(r *Repo, img *layout.Image, platforms map[digest.Digest]layout.Platform) {
	childPlatform := map[digest.Digest]*layout.Platform{}
	for _, m := range img.Manifests() {
		for _, d := range m.Manifests {
			if d.Platform != nil && childPlatform[d.Digest] == nil {
				childPlatform[d.Digest] = d.Platform
			}
		}
	}
	// What is recorded must not depend on the order images are added in: where two images
	// describe the same blob or manifest differently, a fixed rule picks one.
	for _, m := range img.Manifests() {
		r.Manifests = addSorted(r.Manifests, m.Digest)
		c.addBlob(m.Descriptor())
		rec := c.Manifests[m.Digest]
		if rec == nil {
			rec = &ManifestRecord{MediaType: m.MediaType, Size: int64(len(m.Raw))}
			for _, cd := range m.Manifests {
				rec.Children = append(rec.Children, cd.Digest)
			}
			for _, b := range m.Blobs() {
				rec.Blobs = append(rec.Blobs, b.Digest)
				c.addBlob(b)
			}
			c.Manifests[m.Digest] = rec
		}

		// An index's word on a child's platform beats the config's; else the smallest wins.
		if p := childPlatform[m.Digest]; p != nil {
			if rec.Platform == nil || !rec.fromIndex || p.String() < rec.Platform.String() {
				pc := *p
				rec.Platform, rec.fromIndex = &pc, true
			}
		} else if p, ok := platforms[m.Digest]; ok && !rec.fromIndex {
			if rec.Platform == nil || p.String() < rec.Platform.String() {
				rec.Platform = &p
			}
		}
	}
}

// settleFormat settles sparse indexes (settleAbsent) and sets the format to the oldest that
// holds the catalog: 3 with referrers or nested indexes, 2 with sparse indexes, else 1.
func (c *Catalog) settleFormat() {
	sparse := c.settleAbsent()
	switch {
	case c.needsFormat3():
		c.Meta.Format = formatReferrers
	case sparse:
		c.Meta.Format = formatSparse
	default:
		c.Meta.Format = 1
	}
}

// needsFormat3 reports whether c holds referrers or an index with an index child.
func (c *Catalog) needsFormat3() bool {
	for _, r := range c.Repos {
		if len(r.Referrers) > 0 {
			return true
		}
	}
	for _, b := range c.Blobs {
		if b.NotCarried {
			return true
		}
	}
	for _, m := range c.Manifests {
		for _, ch := range m.Children {
			if cm := c.Manifests[ch]; cm != nil && layout.IsIndexType(cm.MediaType) {
				return true
			}
		}
	}
	return false
}

// Referrers returns the descriptors of the referrers repo holds for subject, sorted by
// digest: what the referrers API answers (media type, digest, size, artifact type,
// annotations). It is empty, not nil, for a subject without referrers.
func (c *Catalog) Referrers(repo string, subject digest.Digest) []layout.Descriptor {
	out := []layout.Descriptor{}
	r := c.Repos[repo]
	if r == nil {
		return out
	}
	for _, d := range slices.Sorted(maps.Keys(r.Referrers)) {
		rr := r.Referrers[d]
		if rr.Subject != subject {
			continue
		}
		desc := layout.Descriptor{Digest: d, ArtifactType: rr.ArtifactType, Annotations: maps.Clone(rr.Annotations)}
		if m := c.Manifests[d]; m != nil {
			desc.MediaType, desc.Size = m.MediaType, m.Size
		}
		out = append(out, desc)
	}
	return out
}

// ReferrerGroups lists, per repository and subject, the referrers the catalog holds, for a
// layout.ReferrerTagger.
func (c *Catalog) ReferrerGroups() []layout.ReferrerGroup {
	var out []layout.ReferrerGroup
	for _, name := range c.RepoNames() {
		subjects := map[digest.Digest]bool{}
		for _, rr := range c.Repos[name].Referrers {
			subjects[rr.Subject] = true
		}
		for _, s := range slices.Sorted(maps.Keys(subjects)) {
			out = append(out, layout.ReferrerGroup{Repo: name, Subject: s, Referrers: c.Referrers(name, s)})
		}
	}
	return out
}

// settleAbsent sets every index record's Absent to its children that a repository holding
// the index does not hold, and reports whether any index is sparse: what is recorded does not
// depend on the order images were added in.
func (c *Catalog) settleAbsent() bool {
	absent := map[digest.Digest]map[digest.Digest]bool{}
	for _, r := range c.Repos {
		for _, d := range r.Manifests {
			rec := c.Manifests[d]
			if rec == nil {
				continue
			}
			for _, ch := range rec.Children {
				if !slicesContains(r.Manifests, ch) {
					if absent[d] == nil {
						absent[d] = map[digest.Digest]bool{}
					}
					absent[d][ch] = true
				}
			}
		}
	}
	sparse := false
	for d, rec := range c.Manifests {
		rec.Absent = nil
		for _, ch := range rec.Children {
			if absent[d][ch] {
				rec.Absent = append(rec.Absent, ch)
			}
		}
		sparse = sparse || len(rec.Absent) > 0
	}
	return sparse
}

// SparseIndexes counts the index records with absent children.
func (c *Catalog) SparseIndexes() int {
	n := 0
	for _, m := range c.Manifests {
		if len(m.Absent) > 0 {
			n++
		}
	}
	return n
}

// addBlob records d; of two media types for one blob the smaller non-empty one is kept.
func (c *Catalog) addBlob(d layout.Descriptor) {
	b := c.Blobs[d.Digest]
	if b == nil {
		c.Blobs[d.Digest] = &BlobRecord{Size: d.Size, MediaType: d.MediaType}
		return
	}
	if d.MediaType != "" && (b.MediaType == "" || d.MediaType < b.MediaType) {
		b.MediaType = d.MediaType
	}
}

func addSorted(s []digest.Digest, d digest.Digest) []digest.Digest {
	i := sort.Search(len(s), func(i int) bool { return s[i] >= d })
	if i < len(s) && s[i] == d {
		return s
	}
	s = append(s, "")
	copy(s[i+1:], s[i:])
	s[i] = d
	return s
}

// RepoNames returns the repository names, sorted.
func (c *Catalog) RepoNames() []string {
	names := make([]string, 0, len(c.Repos))
	for n := range c.Repos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Entry is one top-level image of the catalog: a tag, or a manifest pinned by digest, or a
// referrer (carried by digest).
type Entry struct {
	Repo   string
	Tag    string // "" for a pinned digest or a referrer
	Digest digest.Digest
	// Subject is set for a referrer: the manifest it refers to.
	Subject digest.Digest
}

// Ref is the entry as a reference.
func (e Entry) Ref() layout.Ref {
	if e.Tag == "" {
		return layout.Ref{Repo: e.Repo, Digest: e.Digest}
	}
	return layout.Ref{Repo: e.Repo, Tag: e.Tag}
}

// Entries lists every tag, pinned digest and referrer, sorted by repo, then tags, pins and
// referrers (by digest).
func (c *Catalog) Entries() []Entry {
	var out []Entry
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		for _, t := range slices.Sorted(maps.Keys(r.Tags)) {
			out = append(out, Entry{Repo: name, Tag: t, Digest: r.Tags[t]})
		}
		for _, d := range r.Pinned {
			out = append(out, Entry{Repo: name, Digest: d})
		}
		tagged := map[digest.Digest]bool{}
		for _, d := range r.Tags {
			tagged[d] = true
		}
		for _, d := range slices.Sorted(maps.Keys(r.Referrers)) {
			if !slicesContains(r.Pinned, d) && !tagged[d] { // else an entry already
				out = append(out, Entry{Repo: name, Digest: d, Subject: r.Referrers[d].Subject})
			}
		}
	}
	return out
}

// ManifestClosure returns manifest d followed by every manifest below it (for an index: its
// children, depth first, each once).
func (c *Catalog) ManifestClosure(d digest.Digest) []digest.Digest {
	out := []digest.Digest{d}
	seen := map[digest.Digest]bool{d: true}
	var walk func(d digest.Digest, depth int)
	walk = func(d digest.Digest, depth int) {
		m := c.Manifests[d]
		if m == nil || depth > layout.MaxIndexDepth {
			return
		}
		for _, ch := range m.Children {
			if !seen[ch] {
				seen[ch] = true
				out = append(out, ch)
				walk(ch, depth+1)
			}
		}
	}
	walk(d, 1)
	return out
}

// ImageBlobs returns the config and layer digests of manifest d and of its children, each once.
func (c *Catalog) ImageBlobs(d digest.Digest) []digest.Digest {
	var out []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, md := range c.ManifestClosure(d) {
		if m := c.Manifests[md]; m != nil {
			for _, b := range m.Blobs {
				if !seen[b] {
					seen[b] = true
					out = append(out, b)
				}
			}
		}
	}
	return out
}

// ImageSize is the bytes of every manifest and blob of image d, each counted once.
func (c *Catalog) ImageSize(d digest.Digest) int64 {
	var n int64
	for _, md := range c.ManifestClosure(d) {
		if b := c.Blobs[md]; b != nil {
			n += b.Size
		}
	}
	for _, b := range c.ImageBlobs(d) {
		if r := c.Blobs[b]; r != nil {
			n += r.Size
		}
	}
	return n
}

// BlobRepos maps each blob (manifests included) to the first repository, in name order, that
// holds it: where to open it in sources that care about the repository.
func (c *Catalog) BlobRepos() map[digest.Digest]string {
	out := map[digest.Digest]string{}
	for _, name := range c.RepoNames() {
		for _, md := range c.Repos[name].Manifests {
			if _, ok := out[md]; !ok {
				out[md] = name
			}
			if m := c.Manifests[md]; m != nil {
				for _, b := range m.Blobs {
					if _, ok := out[b]; !ok {
						out[b] = name
					}
				}
			}
		}
	}
	return out
}

// RepoLayers returns the config and layer digests of every manifest of repo, sorted: the
// repository's _layers links.
func (c *Catalog) RepoLayers(repo string) []digest.Digest {
	r := c.Repos[repo]
	if r == nil {
		return nil
	}
	var out []digest.Digest
	for _, md := range r.Manifests {
		if m := c.Manifests[md]; m != nil {
			for _, b := range m.Blobs {
				if br := c.Blobs[b]; br == nil || !br.NotCarried {
					out = addSorted(out, b)
				}
			}
		}
	}
	return out
}

// Descriptor returns the descriptor of blob d.
func (c *Catalog) Descriptor(d digest.Digest) (layout.Descriptor, error) {
	b := c.Blobs[d]
	if b == nil {
		return layout.Descriptor{}, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return layout.Descriptor{MediaType: b.MediaType, Digest: d, Size: b.Size}, nil
}

// SortedBlobs returns every blob digest, sorted.
func (c *Catalog) SortedBlobs() []digest.Digest {
	out := make([]digest.Digest, 0, len(c.Blobs))
	for d := range c.Blobs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TotalBlobBytes is the sum of the sizes of every blob.
func (c *Catalog) TotalBlobBytes() int64 {
	var n int64
	for _, b := range c.Blobs {
		n += b.Size
	}
	return n
}

// ComputeID returns the bundle id: the sha256 of a canonical text of every entry and blob
// (docs/bundle-format.md), so equal content gives an equal id.
func (c *Catalog) ComputeID() string {
	h := sha256.New()
	for _, e := range c.Entries() {
		fmt.Fprintf(h, "ref %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	for _, d := range c.SortedBlobs() {
		if b := c.Blobs[d]; b.Base != "" {
			fmt.Fprintf(h, "blob %s %d base %s\n", d, b.Size, b.Base)
		} else if b.NotCarried {
			fmt.Fprintf(h, "blob %s %d notcarried\n", d, b.Size)
		} else {
			fmt.Fprintf(h, "blob %s %d\n", d, b.Size)
		}
	}
	for _, e := range c.Removals() {
		fmt.Fprintf(h, "removed %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Validate checks that the catalog is self-consistent: every digest valid, every tag and pin
// names a manifest of its repo, every manifest's children and blobs are known, the children of
// an index are in the same repo, and every blob is used.
func (c *Catalog) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(a, ErrInconsistent)...))
	}
	if c.Meta.Format < 1 || c.Meta.Format > FormatVersion {
		bad("format %d", c.Meta.Format)
	}
	used := map[digest.Digest]bool{}
	bases := map[string]bool{}
	for _, b := range c.Bases {
		if !strings.HasPrefix(b.ID, "sha256:") || layout.ValidateDigest(digest.Digest(b.ID)) != nil {
			bad("base id %q", b.ID)
		}
		bases[b.ID] = true
	}
	for _, name := range c.RepoNames() {
		if err := layout.ValidateRepo(name); err != nil {
			errs = append(errs, err)
			continue
		}
		r := c.Repos[name]
		inRepo := map[digest.Digest]bool{}
		for _, d := range r.Manifests {
			inRepo[d] = true
			used[d] = true
			m := c.Manifests[d]
			if m == nil {
				bad("repository %s lists manifest %s the catalog lacks", name, d)
				continue
			}
			for _, ch := range m.Children {
				if !slicesContains(r.Manifests, ch) && !slices.Contains(m.Absent, ch) {
					bad("repository %s: index %s has child %s not in the repository", name, d, ch)
				}
			}
		}
		for t, d := range r.Tags {
			if err := layout.ValidateTag(t); err != nil {
				errs = append(errs, err)
			}
			if !inRepo[d] {
				bad("tag %s:%s points at %s, not a manifest of the repository", name, t, d)
			}
		}
		for _, d := range r.Pinned {
			if !inRepo[d] {
				bad("pinned %s@%s is not a manifest of the repository", name, d)
			}
		}
		for d, rr := range r.Referrers {
			if !inRepo[d] {
				bad("referrer %s@%s is not a manifest of the repository", name, d)
			}
			if err := layout.ValidateDigest(rr.Subject); err != nil {
				errs = append(errs, fmt.Errorf("referrer %s@%s: subject: %w", name, d, err))
			}
			if c.Meta.Format < formatReferrers {
				bad("referrer %s@%s in a format %d catalog", name, d, c.Meta.Format)
			}
		}
		for t, d := range r.Removed {
			if err := layout.ValidateTag(t); err != nil {
				errs = append(errs, err)
			}
			if err := layout.ValidateDigest(d); err != nil {
				errs = append(errs, err)
			}
			if _, ok := r.Tags[t]; ok {
				bad("tag %s:%s is both set and removed", name, t)
			}
			if len(c.Bases) == 0 {
				bad("tag %s:%s is removed by a bundle that is not a patch", name, t)
			}
		}
	}
	for d, m := range c.Manifests {
		if err := layout.ValidateDigest(d); err != nil {
			errs = append(errs, err)
			continue
		}
		if b := c.Blobs[d]; b == nil || b.Size != m.Size {
			bad("manifest %s has no blob record of size %d", d, m.Size)
		}
		if m.Size > layout.MaxManifestSize {
			bad("manifest %s of %d bytes exceeds %d", d, m.Size, layout.MaxManifestSize)
		}
		if !layout.IsManifestType(m.MediaType) {
			bad("manifest %s has media type %q", d, m.MediaType)
		}
		for _, ch := range m.Children {
			if c.Manifests[ch] == nil && !slices.Contains(m.Absent, ch) {
				bad("index %s names child %s the catalog lacks", d, ch)
			}
			if c.Manifests[ch] != nil {
				used[ch] = true
			}
		}
		for _, ch := range m.Absent {
			if !slices.Contains(m.Children, ch) {
				bad("index %s lists %s as absent, which is not one of its children", d, ch)
			}
			if c.Meta.Format < formatSparse {
				bad("index %s is sparse in a format %d catalog", d, c.Meta.Format)
			}
		}
		for _, b := range m.Blobs {
			if c.Blobs[b] == nil {
				bad("manifest %s names blob %s the catalog lacks", d, b)
			}
			used[b] = true
		}
	}
	for d, b := range c.Blobs {
		if err := layout.ValidateDigest(d); err != nil {
			errs = append(errs, err)
			continue
		}
		if b.Size < 0 {
			bad("blob %s has negative size", d)
		}
		if b.NotCarried && (b.Base != "" || c.Manifests[d] != nil || c.Meta.Format < formatReferrers) {
			bad("blob %s is marked not carried, which only a layer of a format 3 catalog may be", d)
		}
		if b.Base != "" && !bases[b.Base] {
			bad("blob %s is expected from base %s, which is not a base of the bundle", d, b.Base)
		}
		if !used[d] {
			bad("blob %s is not referenced by any manifest", d)
		}
	}
	return errors.Join(errs...)
}

func slicesContains(s []digest.Digest, d digest.Digest) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i] >= d })
	return i < len(s) && s[i] == d
}

// Clone returns a deep copy of c.
func (c *Catalog) Clone() *Catalog {
	out := New()
	out.Meta = c.Meta
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
