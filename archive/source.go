package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// Source is bundles (a base, then its patches in order) read as one layout.Source, straight
// from the files (OpenRandom: each blob decompresses only the frames that hold it): later
// bundles win for tags, a patch's tag removals apply, and a blob is read from the bundle that
// carries it, verified by its digest as it is read. It lists the images, pinned digests and
// referrers the catalogs record, and answers referrers (layout.ReferrerLister) from them.
// bale serve serves one (archive/serve), copy and unpack read one.
type Source struct {
	bundles   []*Bundle
	refs      map[layout.Ref]digest.Digest                       // every tag, pinned digest and referrer
	owner     map[digest.Digest]*Bundle                          // blob -> the bundle that carries it
	repos     map[string]map[digest.Digest]bool                  // repo -> the manifests and blobs recorded under it
	media     map[digest.Digest]string                           // manifest -> media type
	referrers map[layout.Ref]map[digest.Digest]layout.Descriptor // subject -> its referrers
	created   time.Time                                          // of the newest bundle
	tags      map[string][]string                                // repo -> its tags, sorted (Tags), made once
	tagsOnce  sync.Once
	ahead     aheadStore // blobs read ahead (ReadAhead)
}

var (
	_ layout.Source         = (*Source)(nil)
	_ layout.ReferrerLister = (*Source)(nil)
	_ layout.TagLister      = (*Source)(nil)
)

// OpenSource opens the bundles at paths (each a file or the first volume of a split bundle)
// as one Source. Every blob a patch expects must be carried by an earlier bundle of the list,
// or it fails naming them (layout.ErrNotFound). Close it.
func OpenSource(ctx context.Context, paths []string) (*Source, error) {
	var bundles []*Bundle
	for _, p := range paths {
		b, err := OpenRandom(ctx, p)
		if err != nil {
			for _, b := range bundles {
				b.Close()
			}
			return nil, err
		}
		bundles = append(bundles, b)
	}
	s, err := NewSource(bundles...)
	if err != nil {
		for _, b := range bundles {
			b.Close()
		}
		return nil, err
	}
	return s, nil
}

// NewSource lays bundles (a base, then its patches in order) over each other as one Source;
// the Source's Close closes them. Only their catalogs are read here. It fails (layout.ErrNotFound)
// when a patch expects a blob no bundle before it carries.
func NewSource(bundles ...*Bundle) (*Source, error) {
	s := &Source{refs: map[layout.Ref]digest.Digest{}, owner: map[digest.Digest]*Bundle{},
		repos: map[string]map[digest.Digest]bool{}, media: map[digest.Digest]string{},
		referrers: map[layout.Ref]map[digest.Digest]layout.Descriptor{}}
	for _, b := range bundles {
		if err := s.add(b); err != nil {
			return nil, err
		}
		s.bundles = append(s.bundles, b)
	}
	return s, nil
}

// add lays bundle b over what the bundles before it hold.
func (s *Source) add(b *Bundle) error {
	c := b.Catalog
	if c.Additive() && len(s.bundles) == 0 {
		return fmt.Errorf("%s is a patch recording only what it adds to its bases (first %s, %s); give its base first: %w",
			b.Path, c.Bases[0].Name, c.Bases[0].ID, layout.ErrNotFound)
	}
	var missing []string
	for _, d := range c.ExpectedBlobs() {
		if s.owner[d] == nil {
			missing = append(missing, d.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s is a patch: %d blob(s) it expects are in none of the bundles before it (first %s); give its base first: %w",
			b.Path, len(missing), missing[0], layout.ErrNotFound)
	}
	for _, d := range c.CarriedBlobs() {
		if s.owner[d] == nil {
			s.owner[d] = b
		}
	}
	for d, m := range c.Manifests {
		s.media[d] = m.MediaType
	}
	for _, name := range c.RepoNames() {
		held := s.repos[name]
		if held == nil {
			held = map[digest.Digest]bool{}
			s.repos[name] = held
		}
		for _, d := range c.Repos[name].Manifests {
			held[d] = true
		}
		for _, d := range c.RepoLayers(name) {
			held[d] = true
		}
		s.addReferrers(c, name)
	}
	for _, e := range c.Entries() {
		s.refs[e.Ref()] = e.Digest
	}
	for _, e := range c.Removals() {
		if r := e.Ref(); s.refs[r] == e.Digest {
			delete(s.refs, r)
		}
	}
	if c.Meta.Created.After(s.created) {
		s.created = c.Meta.Created
	}
	return nil
}

// addReferrers records the referrers c holds in repo (tagged or not) under their subjects;
// a later bundle's record of one replaces an earlier one's.
func (s *Source) addReferrers(c *catalog.Catalog, repo string) {
	subjects := map[digest.Digest]bool{}
	for _, rr := range c.Repos[repo].Referrers {
		subjects[rr.Subject] = true
	}
	for subject := range subjects {
		k := layout.Ref{Repo: repo, Digest: subject}
		for _, d := range c.Referrers(repo, subject) {
			if d.MediaType == "" {
				continue // no manifest record: nothing to read
			}
			if s.referrers[k] == nil {
				s.referrers[k] = map[digest.Digest]layout.Descriptor{}
			}
			s.referrers[k][d.Digest] = d
		}
	}
}

// Close closes the bundles.
func (s *Source) Close() error {
	for _, b := range s.bundles {
		b.Close()
	}
	return nil
}

// Refs lists every tag, pinned digest and referrer of the bundles, as patched, sorted.
func (s *Source) Refs() ([]layout.Ref, error) {
	out := make([]layout.Ref, 0, len(s.refs))
	for r := range s.refs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b layout.Ref) int {
		if c := strings.Compare(a.Repo, b.Repo); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	return out, nil
}

// Tags lists the tags of repo, sorted.
func (s *Source) Tags(repo string) ([]string, error) {
	return slices.Clone(s.tagIndex()[repo]), nil
}

// tagIndex is the tags of each repository, sorted, made on first use.
func (s *Source) tagIndex() map[string][]string {
	s.tagsOnce.Do(func() {
		s.tags = map[string][]string{}
		for r := range s.refs {
			if r.Tag != "" {
				s.tags[r.Repo] = append(s.tags[r.Repo], r.Tag)
			}
		}
		for _, ts := range s.tags {
			slices.Sort(ts)
		}
	})
	return s.tags
}

// Resolve returns the manifest ref names: a tag's target, or a digest the bundles hold in
// that repository.
func (s *Source) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref.Tag != "" {
		if d, ok := s.refs[layout.Ref{Repo: ref.Repo, Tag: ref.Tag}]; ok && (ref.Digest == "" || ref.Digest == d) {
			return d, nil
		}
	} else if _, ok := s.refs[ref]; ok {
		return ref.Digest, nil
	} else if ref.Digest != "" && s.owner[ref.Digest] != nil {
		for r, d := range s.refs {
			if b := s.owner[d]; b != nil && r.Repo == ref.Repo && slices.Contains(b.Catalog.ManifestClosure(d), ref.Digest) {
				return ref.Digest, nil
			}
		}
	}
	return "", fmt.Errorf("%s in the bundles: %w", ref, layout.ErrNotFound)
}

// ReadManifest reads manifest d out of the bundle that carries it, verifies and parses it.
func (s *Source) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	b := s.owner[d]
	if b == nil || b.Catalog.Manifests[d] == nil {
		return nil, fmt.Errorf("manifest %s of %s: %w", d, repo, layout.ErrNotFound)
	}
	if raw, ok := s.ahead.get(d); ok { // read ahead, and verified then
		m, err := layout.ParseManifest(raw)
		if err != nil {
			return nil, fmt.Errorf("manifest %s of %s in %s: %w", d, repo, b.Path, err)
		}
		return m, nil
	}
	rc, size, err := b.OpenBlob(d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s of %s in %s: %w", d, repo, b.Path, err)
	}
	defer rc.Close()
	if size > layout.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s of %s in %s: %d bytes: %w", d, repo, b.Path, size, layout.ErrInvalid)
	}
	raw, err := io.ReadAll(layout.NewVerifier(rc, layout.Descriptor{Digest: d, Size: size}))
	if err == nil {
		var m *layout.Manifest
		if m, err = layout.ParseManifest(raw); err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("manifest %s of %s in %s: %w", d, repo, b.Path, err)
}

// OpenBlob opens blob d out of the bundle that carries it; reading it to the end fails
// (layout.ErrDigestMismatch) unless it hashes to d.
func (s *Source) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	b := s.owner[d.Digest]
	if b == nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, layout.ErrNotFound)
	}
	if data, ok := s.ahead.get(d.Digest); ok {
		return aheadReader(data), nil
	}
	rc, _, err := b.OpenBlob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s in %s: %w", d.Digest, repo, b.Path, err)
	}
	return &namedBlob{rc, b.Path}, nil
}

// namedBlob names the bundle in the errors of a blob read out of it.
type namedBlob struct {
	io.ReadSeekCloser
	path string
}

// Read reads the blob, naming the bundle in an error.
func (n *namedBlob) Read(p []byte) (int, error) {
	k, err := n.ReadSeekCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: %w", n.path, err)
	}
	return k, err
}

// Referrers lists the referrers of manifest d of repo the bundles record, sorted by digest.
func (s *Source) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	m := s.referrers[layout.Ref{Repo: repo, Digest: d}]
	out := make([]layout.Descriptor, 0, len(m))
	for _, desc := range m {
		out = append(out, desc)
	}
	slices.SortFunc(out, func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// Repositories lists the repositories that hold a tag or any content, sorted.
func (s *Source) Repositories() []string {
	var out []string
	for name, held := range s.repos {
		if len(held) > 0 || s.hasTag(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Source) hasTag(repo string) bool {
	return len(s.tagIndex()[repo]) > 0
}

// HasRepository says whether any of the bundles records repo.
func (s *Source) HasRepository(repo string) bool {
	_, ok := s.repos[repo]
	return ok
}

// Holds says whether the bundles record manifest or blob d under repo: what a registry
// serving them answers for /v2/REPO/manifests/D or /v2/REPO/blobs/D. A tag removed by a
// patch does not take its manifest away.
func (s *Source) Holds(repo string, d digest.Digest) bool {
	return s.repos[repo][d]
}

// MediaType is the media type of manifest d, "" when d is no manifest the bundles record.
func (s *Source) MediaType(d digest.Digest) string {
	return s.media[d]
}

// Carrier is the bundle that carries blob (or manifest) d, nil when none does.
func (s *Source) Carrier(d digest.Digest) *Bundle {
	return s.owner[d]
}

// Created is the time the newest of the bundles was made.
func (s *Source) Created() time.Time {
	return s.created
}
