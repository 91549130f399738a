// What makes a catalog whole: the bundle id of its content, and its consistency.

package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// ComputeID returns the bundle id: the sha256 of a canonical text of every entry and blob
// (docs/bundle-format.md §6), so equal content gives an equal id; from format 4, the ids of
// the bases follow, in order.
func (c *Catalog) ComputeID() string {
	h := sha256.New()
	for _, e := range c.Entries() {
		fmt.Fprintf(h, "ref %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	for _, b := range c.sortedRecords() {
		if b.Base != "" {
			fmt.Fprintf(h, "blob %s %d base %s\n", b.digest, b.Size, b.Base)
		} else if b.NotCarried {
			fmt.Fprintf(h, "blob %s %d notcarried\n", b.digest, b.Size)
		} else {
			fmt.Fprintf(h, "blob %s %d\n", b.digest, b.Size)
		}
	}
	for _, e := range c.Removals() {
		fmt.Fprintf(h, "removed %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	if c.Meta.Format >= formatAdditive {
		// An additive patch means nothing without its bases: its id binds them, in order.
		for _, b := range c.Bases {
			fmt.Fprintf(h, "base %s\n", b.ID)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
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

// Validate checks that the catalog is self-consistent: every digest valid, every tag and pin
// names a manifest of its repo, every manifest's children and blobs are known, the children of
// an index are in the same repo, and every blob is used. It settles (Settle) a catalog images
// were added to since it was last settled.
func (c *Catalog) Validate() error {
	c.settle()
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
