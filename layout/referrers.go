package layout

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Referrers are manifests that belong to another manifest, their subject: signatures,
// attestations, SBOMs. They are found three ways (OCI distribution-spec 1.1 and cosign):
//
//	<repo>:sha256-<hex>            the referrers tag schema: an OCI index of the referrers of
//	                               sha256:<hex>, kept by clients on registries without the API
//	<repo>:sha256-<hex>.<suffix>   cosign's tags: .sig, .att, .sbom (a manifest without subject)
//	subject field                  a manifest of <repo> whose "subject" is the digest (what a
//	                               registry with the referrers API indexes and keeps untagged)

// ReferrerLister is a Source that can list the manifests of a repository that name a subject
// (the OCI 1.1 referrers of that manifest), however the layout keeps them.
type ReferrerLister interface {
	// Referrers returns the descriptors of the manifests of repo whose subject is d, each
	// with its artifact type and annotations (Manifest.ReferrerDescriptor), sorted by digest.
	Referrers(repo string, d digest.Digest) ([]Descriptor, error)
}

// ReferrersTag is the tag of the referrers tag schema for subject d: "sha256-<hex>".
func ReferrersTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// ParseReferrerTag splits a tag of the referrers tag schema ("sha256-<hex>", suffix "") or a
// cosign tag ("sha256-<hex>.sig", suffix "sig") into the subject digest and suffix; ok is
// false for any other tag.
func ParseReferrerTag(tag string) (subject digest.Digest, suffix string, ok bool) {
	rest, found := strings.CutPrefix(tag, "sha256-")
	if !found || len(rest) < 64 {
		return "", "", false
	}
	hex, suffix := rest[:64], rest[64:]
	if suffix != "" {
		if suffix[0] != '.' || len(suffix) == 1 {
			return "", "", false
		}
		suffix = suffix[1:]
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if d.Validate() != nil {
		return "", "", false
	}
	return d, suffix, true
}

// ReferrersIndex returns the referrers index for the tag schema listing the descriptors of
// old (an existing referrers index, or nil) followed by those of add it lacks, sorted by
// digest, and whether it differs from old. A new index is written deterministically: an OCI
// index, its descriptors sorted by digest, no annotations of its own.
func ReferrersIndex(old *Manifest, add []Descriptor) (raw []byte, changed bool, err error) {
	var descs []Descriptor
	have := map[digest.Digest]bool{}
	if old != nil {
		for _, d := range old.Manifests {
			have[d.Digest] = true
		}
		descs = slices.Clone(old.Manifests)
	}
	var extra []Descriptor
	for _, d := range add {
		if !have[d.Digest] {
			have[d.Digest] = true
			extra = append(extra, referrerEntry(d))
		}
	}
	if old != nil && len(extra) == 0 {
		return old.Raw, false, nil
	}
	slices.SortFunc(extra, func(a, b Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	descs = append(descs, extra...)
	if descs == nil {
		descs = []Descriptor{}
	}
	raw, err = json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []Descriptor `json:"manifests"`
	}{2, MediaTypeOCIIndex, descs})
	if err != nil {
		return nil, false, fmt.Errorf("referrers index: %w", err)
	}
	return raw, true, nil
}

// referrerEntry keeps the fields of d a referrers index lists.
func referrerEntry(d Descriptor) Descriptor {
	return Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType, Annotations: d.Annotations}
}

// MatchesReferrerType reports whether a referrer of artifact type at, found by the cosign tag
// suffix suffix ("" when found by subject), is one of types (every type when types is empty):
// types name artifact types, or cosign's suffixes ("sig", "att", "sbom").
func MatchesReferrerType(types []string, at, suffix string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == at || (suffix != "" && t == suffix) {
			return true
		}
	}
	return false
}
