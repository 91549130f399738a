// Adding images to a catalog: tags, pins and referrers, with their manifests and blobs, recorded
// the same whatever the order they come in.

package catalog

import (
	"maps"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Add records img in repo under tag, or as pinned by digest when tag is "". platforms gives
// the os/architecture of image manifests that are not children of an index (from their
// configs); it may be nil. It leaves the format and sparse indexes to Settle.
func (c *Catalog) Add(repo, tag string, img *layout.Image, platforms map[digest.Digest]layout.Platform) {
	c.unsettled = true
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
// by digest, listed by Referrers). It leaves the format to Settle.
func (c *Catalog) AddReferrer(repo string, img *layout.Image, platforms map[digest.Digest]layout.Platform) {
	c.unsettled = true
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

// MarkNotCarried records that no bundle carries blob d: a non-distributable layer the
// source does not hold (layout.SkipAbsent). It leaves the format to Settle.
func (c *Catalog) MarkNotCarried(d digest.Digest) {
	if b := c.Blobs[d]; b != nil {
		b.NotCarried, b.Base = true, ""
		c.unsettled = true
	}
}

// RemoveTag records that a patch removes repo:tag if it still points at d.
func (c *Catalog) RemoveTag(repo, tag string, d digest.Digest) {
	r := c.repo(repo)
	if r.Removed == nil {
		r.Removed = map[string]digest.Digest{}
	}
	r.Removed[tag] = d
}
