package layout

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ReferrerOptions choose which referrers travel with their images.
type ReferrerOptions struct {
	// None leaves every referrer out (--no-referrers).
	None bool
	// Types keeps only referrers of these artifact types (--referrers-type); cosign's tagged
	// signatures, attestations and SBOMs match "sig", "att" and "sbom".
	Types []string
}

// ReferrerTagger is a Sink that keeps the referrers tag schema for clients of registries
// without the referrers API: after the referrers are written, it points sha256-<hex> at an
// index listing them, merged with what that tag lists already.
type ReferrerTagger interface {
	TagReferrers(repo string, subject digest.Digest, refs []Descriptor) error
}

// Wrapper is a Source that wraps another (to count its bytes, say): referrer discovery asks
// the wrapped one for tags and referrers.
type Wrapper interface {
	Unwrap() Source
}

// unwrap returns the innermost source of src.
func unwrap(src Source) Source {
	for {
		w, ok := src.(Wrapper)
		if !ok {
			return src
		}
		src = w.Unwrap()
	}
}

// repoDigest names one manifest of one repository.
type repoDigest struct {
	repo string
	d    digest.Digest
}

// finder walks the referrers of the manifests it is given, recursively.
type finder struct {
	src  Source
	opt  ReferrerOptions
	tags map[string][]string // per repository, sorted; nil until asked
	// listedAll: src.Refs() filled tags for every repository (src is no TagLister)
	listedAll bool
	seen      map[repoDigest]bool // manifests carried (images, referrers)
	refs      map[string]bool     // refs carried, as Ref.String()
	queue     []repoDigest
	out       []Resolved
}

// FindReferrers returns the referrers of every manifest of images (tag targets and every
// manifest below an index) that src holds, and theirs (a signature on an SBOM), found by
// cosign's tags, the referrers tag schema and subject (ReferrerLister), as images to carry:
// cosign tags and referrers tags by tag, the others by digest with Referrer set. A referrers
// tag is carried only when every referrer it lists is; a sink that is a ReferrerTagger writes
// one for the others. The result is in a fixed order.
func FindReferrers(src Source, images []Resolved, opt ReferrerOptions) ([]Resolved, error) {
	if opt.None {
		return nil, nil
	}
	f := &finder{src: unwrap(src), opt: opt, tags: map[string][]string{}, seen: map[repoDigest]bool{}, refs: map[string]bool{}}
	for _, r := range images {
		f.refs[r.Ref.String()] = true
		f.enqueue(r.Ref.Repo, r.Image)
	}
	for len(f.queue) > 0 {
		k := f.queue[0]
		f.queue = f.queue[1:]
		if err := f.visit(k.repo, k.d); err != nil {
			return nil, err
		}
	}
	return f.out, nil
}

// enqueue marks every manifest of img as carried and queues it for its own referrers.
func (f *finder) enqueue(repo string, img *Image) {
	for _, m := range img.Manifests() {
		k := repoDigest{repo, m.Digest}
		if !f.seen[k] {
			f.seen[k] = true
			f.queue = append(f.queue, k)
		}
	}
}

// repoTags lists the tags of repo, once: from the source's tag list of the repository, or,
// for a source that cannot list one repository, from one listing of every tag.
func (f *finder) repoTags(repo string) ([]string, error) {
	if ts, ok := f.tags[repo]; ok {
		return ts, nil
	}
	tl, ok := f.src.(TagLister)
	if !ok {
		if f.listedAll {
			return nil, nil // a repository without tags
		}
		all, err := f.src.Refs()
		if err != nil {
			return nil, fmt.Errorf("listing tags for referrers: %w", err)
		}
		for _, r := range all {
			if r.Tag != "" {
				f.tags[r.Repo] = append(f.tags[r.Repo], r.Tag)
			}
		}
		for _, ts := range f.tags {
			slices.Sort(ts)
		}
		f.listedAll = true
		return f.tags[repo], nil
	}
	ts, err := tl.Tags(repo)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("listing the tags of %s for referrers: %w", repo, err)
	}
	ts = slices.Clone(ts)
	slices.Sort(ts)
	f.tags[repo] = ts
	return ts, nil
}

// visit finds the referrers of manifest d of repo.
func (f *finder) visit(repo string, d digest.Digest) error {
	tags, err := f.repoTags(repo)
	if err != nil {
		return err
	}
	schemaTag := ReferrersTag(d)
	// cosign's tags: sha256-<hex>.sig, .att, .sbom (any suffix), each carried as it is.
	i, _ := slices.BinarySearch(tags, schemaTag+".")
	for ; i < len(tags) && strings.HasPrefix(tags[i], schemaTag+"."); i++ {
		_, suffix, ok := ParseReferrerTag(tags[i])
		if !ok {
			continue
		}
		ref := Ref{Repo: repo, Tag: tags[i]}
		img, err := f.load(ref)
		if err != nil {
			return err
		}
		if MatchesReferrerType(f.opt.Types, img.Manifest.ReferrerDescriptor().ArtifactType, suffix) {
			f.add(Resolved{Ref: ref, Image: img})
		}
	}
	// OCI 1.1 referrers: by subject where the source can tell, and the tag schema's index.
	var descs []Descriptor
	if rl, ok := f.src.(ReferrerLister); ok {
		if descs, err = rl.Referrers(repo, d); err != nil {
			return fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
	}
	var schema *Image
	if _, found := slices.BinarySearch(tags, schemaTag); found {
		if schema, err = f.load(Ref{Repo: repo, Tag: schemaTag}); err != nil {
			return err
		}
		if schema.Manifest.IsIndex() {
			descs = append(descs, schema.Manifest.Manifests...)
		} else {
			schema = nil // not a referrers index: an ordinary tag that looks like one
		}
	}
	slices.SortStableFunc(descs, func(a, b Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	all := true // every referrer the schema index lists is carried
	for i, rd := range descs {
		if i > 0 && descs[i-1].Digest == rd.Digest {
			continue
		}
		if !MatchesReferrerType(f.opt.Types, rd.ArtifactType, "") {
			all = false
			continue
		}
		k := repoDigest{repo, rd.Digest}
		if f.seen[k] {
			continue
		}
		img, err := LoadImage(f.src, repo, rd.Digest)
		if errors.Is(err, ErrNotFound) {
			all = false // listed by a stale referrers index, gone from the source
			continue
		}
		if err != nil {
			return fmt.Errorf("referrer %s of %s@%s: %w", rd.Digest, repo, d, err)
		}
		if img.Manifest.Subject == nil || img.Manifest.Subject.Digest != d {
			all = false // the schema index lists a manifest that does not refer to d
			continue
		}
		f.add(Resolved{Ref: Ref{Repo: repo, Digest: rd.Digest}, Image: img, Referrer: true})
	}
	if schema != nil && all && !schema.Sparse() {
		f.add(Resolved{Ref: Ref{Repo: repo, Tag: schemaTag}, Image: schema})
	}
	return nil
}

// load resolves and loads ref.
func (f *finder) load(ref Ref) (*Image, error) {
	d, err := f.src.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("referrers: %w", err)
	}
	img, err := LoadImage(f.src, ref.Repo, d)
	if err != nil {
		return nil, fmt.Errorf("referrers: %s: %w", ref, err)
	}
	return img, nil
}

// add carries r (once) and queues its manifests for their own referrers.
func (f *finder) add(r Resolved) {
	if f.refs[r.Ref.String()] {
		return
	}
	f.refs[r.Ref.String()] = true
	f.out = append(f.out, r)
	f.enqueue(r.Ref.Repo, r.Image)
}

// ReferrerGroups groups the referrers (Resolved.Referrer) of images by repository and subject,
// in a fixed order, for a ReferrerTagger.
func ReferrerGroups(images []Resolved) []ReferrerGroup {
	byKey := map[repoDigest]*ReferrerGroup{}
	var keys []repoDigest
	for _, r := range images {
		if !r.Referrer || r.Image.Manifest.Subject == nil {
			continue
		}
		k := repoDigest{r.Ref.Repo, r.Image.Manifest.Subject.Digest}
		g := byKey[k]
		if g == nil {
			g = &ReferrerGroup{Repo: k.repo, Subject: k.d}
			byKey[k] = g
			keys = append(keys, k)
		}
		g.Referrers = append(g.Referrers, r.Image.Manifest.ReferrerDescriptor())
	}
	slices.SortFunc(keys, func(a, b repoDigest) int {
		if c := strings.Compare(a.repo, b.repo); c != 0 {
			return c
		}
		return strings.Compare(string(a.d), string(b.d))
	})
	out := make([]ReferrerGroup, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}

// ReferrerGroup is the referrers of one subject in one repository.
type ReferrerGroup struct {
	Repo      string
	Subject   digest.Digest
	Referrers []Descriptor
}

// TagReferrers has dst, if it is a ReferrerTagger, keep the referrers tag schema for every
// group.
func TagReferrers(dst Sink, groups []ReferrerGroup) error {
	t, ok := dst.(ReferrerTagger)
	if !ok {
		return nil
	}
	for _, g := range groups {
		if err := t.TagReferrers(g.Repo, g.Subject, g.Referrers); err != nil {
			return fmt.Errorf("referrers tag of %s@%s: %w", g.Repo, g.Subject, err)
		}
	}
	return nil
}
