package layout

import (
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Union reads two sources as one: every repository the overlay holds from the overlay, every
// other from the base (bale pack --release: the images from SOURCE, the charts from their
// stage). It answers tag lists and referrers from the source of each repository.
type Union struct {
	base, over Source
	overRepos  map[string]bool

	once    sync.Once
	baseAll []Ref
	baseErr error
}

// fileUnion is a Union of two FileSources: its blobs are files too.
type fileUnion struct{ *Union }

var (
	_ TagLister      = (*Union)(nil)
	_ ReferrerLister = (*Union)(nil)
	_ FileSource     = fileUnion{}
)

// NewUnion is base with the repositories of over laid on it (over's Refs, read once now). It
// is a FileSource when both are.
func NewUnion(base, over Source) (Source, error) {
	refs, err := over.Refs()
	if err != nil {
		return nil, err
	}
	u := &Union{base: base, over: over, overRepos: map[string]bool{}}
	for _, r := range refs {
		u.overRepos[r.Repo] = true
	}
	_, bf := base.(FileSource)
	_, of := over.(FileSource)
	if bf && of {
		return fileUnion{u}, nil
	}
	return u, nil
}

// String names both sources.
func (u *Union) String() string { return fmt.Sprintf("%v and %v", u.base, u.over) }

// pick is the source of repo.
func (u *Union) pick(repo string) Source {
	if u.overRepos[repo] {
		return u.over
	}
	return u.base
}

// Refs are the base's, less the repositories of the overlay, then the overlay's.
func (u *Union) Refs() ([]Ref, error) {
	base, err := u.baseRefs()
	if err != nil {
		return nil, err
	}
	over, err := u.over.Refs()
	if err != nil {
		return nil, err
	}
	var out []Ref
	for _, r := range base {
		if !u.overRepos[r.Repo] {
			out = append(out, r)
		}
	}
	return append(out, over...), nil
}

// baseRefs lists the base once.
func (u *Union) baseRefs() ([]Ref, error) {
	u.once.Do(func() { u.baseAll, u.baseErr = u.base.Refs() })
	return u.baseAll, u.baseErr
}

// Resolve resolves ref in the source of its repository.
func (u *Union) Resolve(ref Ref) (digest.Digest, error) { return u.pick(ref.Repo).Resolve(ref) }

// ReadManifest reads from the source of repo.
func (u *Union) ReadManifest(repo string, d digest.Digest) (*Manifest, error) {
	return u.pick(repo).ReadManifest(repo, d)
}

// OpenBlob opens from the source of repo.
func (u *Union) OpenBlob(repo string, d Descriptor) (io.ReadCloser, error) {
	return u.pick(repo).OpenBlob(repo, d)
}

// Tags lists repo's tags in its source: its own tag list, or its Refs.
func (u *Union) Tags(repo string) ([]string, error) {
	src := u.pick(repo)
	if tl, ok := src.(TagLister); ok {
		return tl.Tags(repo)
	}
	var refs []Ref
	var err error
	if src == u.base {
		refs, err = u.baseRefs()
	} else {
		refs, err = u.over.Refs()
	}
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, r := range refs {
		if r.Repo == repo && r.Tag != "" {
			tags = append(tags, r.Tag)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// Referrers asks the source of repo, when it can list referrers; none otherwise.
func (u *Union) Referrers(repo string, d digest.Digest) ([]Descriptor, error) {
	if rl, ok := u.pick(repo).(ReferrerLister); ok {
		return rl.Referrers(repo, d)
	}
	return nil, nil
}

// BlobPath is the path of the blob in the source of repo.
func (u fileUnion) BlobPath(repo string, d Descriptor) (string, error) {
	return u.pick(repo).(FileSource).BlobPath(repo, d)
}
