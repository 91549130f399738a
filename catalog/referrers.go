package catalog

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// KindReferrersIndex is the Kind of a referrers tag (sha256-<hex>): the index that lists a
// subject's referrers for clients of registries without the referrers API.
const KindReferrersIndex = "referrers-index"

// Attachment is an entry that belongs to an image: a referrer (carried by digest), a cosign
// tag (sha256-<hex>.sig, .att, .sbom) or a referrers tag.
type Attachment struct {
	Entry
	// Subject is the manifest it refers to: the image's, one below an index, or another
	// attachment's (a signature on an SBOM).
	Subject digest.Digest
	// Kind is the artifact type of a referrer, the suffix of a cosign tag ("sig", "att",
	// "sbom"), or KindReferrersIndex.
	Kind string
}

// ImageAttachments splits Entries into the images and what belongs to each: every referrer
// and cosign or referrers tag whose subject is a manifest of the image (at any depth), or of
// something already attached to it. Attachments whose subject the catalog does not hold in
// that repository stay images. attached[i] belongs to images[i], sorted by kind then digest.
func (c *Catalog) ImageAttachments() (images []Entry, attached [][]Attachment) {
	images, attached, _ = c.ImageAttachmentsSplit()
	return images, attached
}

// ImageAttachmentsSplit is ImageAttachments, and how many of the images come first: the
// images after them are attachments whose subject the catalog does not hold in their
// repository, each shown as an image of its own, in entry order. (A lister that goes one
// repository at a time puts those of every repository last, as ImageAttachments of the whole
// catalog does.)
func (c *Catalog) ImageAttachmentsSplit() (images []Entry, attached [][]Attachment, owned int) {
	type key struct {
		repo string
		d    digest.Digest
	}
	entries := c.Entries()
	owner := map[key]int{} // manifest -> index in images
	var pending []Attachment
	for _, e := range entries {
		a := Attachment{Entry: e, Subject: e.Subject}
		rr := c.Repos[e.Repo].Referrers[e.Digest]
		switch s, suffix, ok := layout.ParseReferrerTag(e.Tag); {
		case ok && slicesContains(c.Repos[e.Repo].Manifests, s):
			a.Subject, a.Kind = s, cmp.Or(suffix, KindReferrersIndex)
		case rr != nil && e.Subject != "" && slicesContains(c.Repos[e.Repo].Manifests, rr.Subject):
			// A referrer carried by digest. A tagged manifest that names a subject stays an
			// image of its own: someone named it (the referrers API lists it all the same).
			a.Subject, a.Kind = rr.Subject, rr.ArtifactType
		}
		if a.Subject != "" {
			pending = append(pending, a)
			continue
		}
		images = append(images, e)
		attached = append(attached, nil)
		for _, d := range c.ManifestClosure(e.Digest) {
			if _, ok := owner[key{e.Repo, d}]; !ok {
				owner[key{e.Repo, d}] = len(images) - 1
			}
		}
	}
	// Attach in rounds: a signature on an SBOM finds its owner once the SBOM has one.
	for progress := true; progress && len(pending) > 0; {
		progress = false
		rest := pending[:0]
		for _, a := range pending {
			i, ok := owner[key{a.Repo, a.Subject}]
			if !ok {
				rest = append(rest, a)
				continue
			}
			attached[i] = append(attached[i], a)
			for _, d := range c.ManifestClosure(a.Digest) {
				if _, ok := owner[key{a.Repo, d}]; !ok {
					owner[key{a.Repo, d}] = i
				}
			}
			progress = true
		}
		pending = rest
	}
	owned = len(images)
	for _, a := range pending { // subject not held: shown as an image of its own
		images = append(images, a.Entry)
		attached = append(attached, nil)
	}
	for _, as := range attached {
		slices.SortFunc(as, func(a, b Attachment) int {
			if c := strings.Compare(a.Kind, b.Kind); c != 0 {
				return c
			}
			return strings.Compare(string(a.Digest), string(b.Digest))
		})
	}
	return images, attached, owned
}

// CountKinds counts attachments by kind, leaving out referrers indexes, sorted by kind.
func CountKinds(as []Attachment) []KindCount {
	n := map[string]int{}
	for _, a := range as {
		if a.Kind != KindReferrersIndex {
			n[a.Kind]++
		}
	}
	var out []KindCount
	for _, k := range slices.Sorted(maps.Keys(n)) {
		out = append(out, KindCount{Kind: k, Count: n[k]})
	}
	return out
}

// KindCount is how many attachments of one kind an image has.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
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
