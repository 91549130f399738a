package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// Source is bundles (a base, then its patches in order) read as one layout.Source, straight
// from the files (OpenRandom: each blob decompresses only the frames that hold it): later
// bundles win for tags, a patch's tag removals apply, and a blob is read from the bundle that
// carries it, verified by its digest as it is read. It lists the images, pinned digests and
// referrers the catalogs record, and answers referrers (layout.ReferrerLister) from them.
type Source struct {
	bundles   []*Bundle
	refs      map[layout.Ref]digest.Digest // every tag, pinned digest and referrer
	owner     map[digest.Digest]*Bundle    // blob -> the bundle that carries it
	referrers map[layout.Ref][]layout.Descriptor
}

var (
	_ layout.Source         = (*Source)(nil)
	_ layout.ReferrerLister = (*Source)(nil)
	_ layout.TagLister      = (*Source)(nil)
)

// OpenSource opens the bundles at paths (each a file or the first volume of a split bundle)
// as one Source. Every blob a patch expects must be carried by an earlier bundle of the list,
// or it fails naming them. Close it.
func OpenSource(ctx context.Context, paths []string) (*Source, error) {
	s := &Source{refs: map[layout.Ref]digest.Digest{}, owner: map[digest.Digest]*Bundle{},
		referrers: map[layout.Ref][]layout.Descriptor{}}
	for _, p := range paths {
		b, err := OpenRandom(ctx, p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.bundles = append(s.bundles, b)
		if err := s.add(b); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// add lays bundle b over what the bundles before it hold.
func (s *Source) add(b *Bundle) error {
	c := b.Catalog
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
	for _, e := range c.Entries() {
		s.refs[e.Ref()] = e.Digest
		if e.Subject != "" {
			s.addReferrer(c, e)
		}
	}
	for _, e := range c.Removals() {
		if r := e.Ref(); s.refs[r] == e.Digest {
			delete(s.refs, r)
		}
	}
	return nil
}

// addReferrer records referrer e under its subject.
func (s *Source) addReferrer(c *catalog.Catalog, e catalog.Entry) {
	k := layout.Ref{Repo: e.Repo, Digest: e.Subject}
	for _, d := range c.Referrers(e.Repo, e.Subject) {
		if d.Digest == e.Digest && d.MediaType != "" && !slices.ContainsFunc(s.referrers[k], func(x layout.Descriptor) bool { return x.Digest == d.Digest }) {
			s.referrers[k] = append(s.referrers[k], d)
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
	var out []string
	for r := range s.refs {
		if r.Repo == repo && r.Tag != "" {
			out = append(out, r.Tag)
		}
	}
	slices.Sort(out)
	return out, nil
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

// Referrers lists the referrers of manifest d of repo the bundles record.
func (s *Source) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	out := slices.Clone(s.referrers[layout.Ref{Repo: repo, Digest: d}])
	slices.SortFunc(out, func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}
