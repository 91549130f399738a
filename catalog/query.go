// Questions asked of a catalog: its entries, the manifests and blobs under an image, and which
// blobs a bundle carries.

package catalog

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

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

// Platforms returns the platforms of manifest m, sorted: an image manifest's own, or those of
// the children of an index that the catalog holds (the present ones of a sparse index); an
// unknown/unknown platform (a BuildKit attestation manifest) is no platform and is left out.
func (c *Catalog) Platforms(m *ManifestRecord) []string {
	var ps []string
	if !layout.IsUnknownPlatform(m.Platform) && len(m.Children) == 0 {
		ps = append(ps, m.Platform.String())
	}
	for _, ch := range m.Children {
		if cm := c.Manifests[ch]; cm != nil && !layout.IsUnknownPlatform(cm.Platform) { // an attestation is no platform
			ps = append(ps, cm.Platform.String())
		}
	}
	sort.Strings(ps)
	return ps
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

// Carried reports whether the bundle itself carries blob d.
func (c *Catalog) Carried(d digest.Digest) bool {
	b := c.Blobs[d]
	return b != nil && b.Carried()
}

// CarriedBlobs returns the digests of the blobs the bundle carries, sorted.
func (c *Catalog) CarriedBlobs() []digest.Digest {
	return c.sortedWhere((*BlobRecord).Carried)
}

// CarriedCount is len(c.CarriedBlobs()), without listing and sorting them.
func (c *Catalog) CarriedCount() int {
	n := 0
	for _, b := range c.Blobs {
		if b.Carried() {
			n++
		}
	}
	return n
}

// ExpectedBlobs returns the digests of the blobs a patch expects from its bases, sorted.
func (c *Catalog) ExpectedBlobs() []digest.Digest {
	return c.sortedWhere(func(b *BlobRecord) bool { return b.Base != "" })
}

// blobEntry is a blob's digest with its record.
type blobEntry struct {
	digest digest.Digest
	*BlobRecord
}

// sortedRecords returns every blob with its record, sorted by digest.
func (c *Catalog) sortedRecords() []blobEntry {
	out := make([]blobEntry, 0, len(c.Blobs))
	for d, b := range c.Blobs {
		out = append(out, blobEntry{d, b})
	}
	slices.SortFunc(out, func(a, b blobEntry) int { return strings.Compare(string(a.digest), string(b.digest)) })
	return out
}

// sortedWhere returns the digests of the blobs keep accepts, sorted. It walks the map once
// and sorts what it kept, rather than looking every digest up again in sorted order: at
// 20,000 tags (100,000 blobs) those lookups miss the processor's caches (#19).
func (c *Catalog) sortedWhere(keep func(*BlobRecord) bool) []digest.Digest {
	var out []digest.Digest
	for d, b := range c.Blobs {
		if keep(b) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// CarriedBytes is the sum of the sizes of the blobs the bundle carries.
func (c *Catalog) CarriedBytes() int64 {
	var n int64
	for _, b := range c.Blobs {
		if b.Carried() {
			n += b.Size
		}
	}
	return n
}

// NotCarriedBlobs returns the digests of the non-distributable layers no bundle carries,
// sorted.
func (c *Catalog) NotCarriedBlobs() []digest.Digest {
	return c.sortedWhere(func(b *BlobRecord) bool { return b.NotCarried })
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
	slices.Sort(out)
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

func slicesContains(s []digest.Digest, d digest.Digest) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i] >= d })
	return i < len(s) && s[i] == d
}
