package registry

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
)

// Store is a registry storage root directory.
type Store struct {
	root string
	mu   sync.Mutex // guards Copied while PutImage calls overlap
	// placing places each blob once while PutImage calls overlap.
	placing par.Flight[digest.Digest]
	// Copied counts blobs PutImage had to copy because linking was impossible.
	Copied int
	// subjects caches, per repository, the referrers its revisions hold (see Referrers);
	// LinkImage drops a repository's entry.
	subjects SubjectCache
	// snap, in a Store made by Snapshot, keeps the links and manifests read.
	snap *snapshot
}

var (
	_ layout.FileSource = (*Store)(nil)
	_ layout.Sink       = (*Store)(nil)
	_ ServedStorage     = (*Store)(nil)
)

// Is reports whether root holds registry storage (a docker/registry/v2 directory).
func Is(root string) bool {
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(StoragePrefix)))
	return err == nil && fi.IsDir()
}

// Open opens existing registry storage at root.
func Open(root string) (*Store, error) {
	if !Is(root) {
		return nil, fmt.Errorf("%s: no %s directory, not registry storage: %w", root, StoragePrefix, layout.ErrNotFound)
	}
	return &Store{root: root}, nil
}

// Create opens registry storage at root, creating the blobs/ and repositories/ directories the
// registry's garbage collector requires.
func Create(root string) (*Store, error) {
	s := New(root)
	if err := s.Init(); err != nil {
		return nil, err
	}
	return s, nil
}

// New names registry storage at root, existing or not, without touching the file system;
// writes create what they need, and Init the directories the registry requires.
func New(root string) *Store { return &Store{root: root} }

// Init creates the blobs/ and repositories/ directories the registry's garbage collector
// requires.
func (s *Store) Init() error {
	for _, spec := range []PathSpec{Blobs{}, Repositories{}} {
		if err := os.MkdirAll(s.mustPath(spec), fsutil.DirMode); err != nil {
			return fmt.Errorf("creating registry storage: %w", err)
		}
	}
	return nil
}

// Root is the storage root directory.
func (s *Store) Root() string { return s.root }

// Path returns the OS path of spec under the root.
func (s *Store) Path(spec PathSpec) (string, error) {
	p, err := PathFor(spec)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(p)), nil
}

func (s *Store) mustPath(spec PathSpec) string {
	p, err := s.Path(spec)
	if err != nil {
		panic(err) // only for specs without names or digests
	}
	return p
}

// ReadLink reads a link file and returns the digest it holds; ErrNotFound if it is absent.
func (s *Store) ReadLink(spec PathSpec) (digest.Digest, error) {
	if d, ok := s.snap.link(spec); ok {
		return d, nil
	}
	p, err := s.Path(spec)
	if err != nil {
		return "", err
	}
	// One read of the size fstat gave (links are replaced by rename, never rewritten), not
	// ReadAll's read and read-to-EOF: links are most of the files a command reads (#19).
	b, err := readLinkFile(p, 256)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", p, layout.ErrNotFound)
	}
	if errors.Is(err, layout.ErrInvalid) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("link %s: %w", p, err)
	}
	d := digest.Digest(b)
	if err := layout.ValidateDigest(d); err != nil {
		return "", fmt.Errorf("link %s: %w", p, err)
	}
	if want := LinkDigest(spec); want != "" && want != d {
		return "", fmt.Errorf("link %s holds %s: %w", p, d, layout.ErrInvalid)
	}
	s.snap.keepLink(spec, d)
	return d, nil
}

// HasLink reports whether the link file of spec exists and is valid.
func (s *Store) HasLink(spec PathSpec) bool {
	_, err := s.ReadLink(spec)
	return err == nil
}

// Repos lists every repository (a directory with a _manifests or _layers child), sorted.
func (s *Store) Repos() ([]string, error) {
	root := s.mustPath(Repositories{})
	var repos []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "_") {
			if d.Name() == "_manifests" || d.Name() == "_layers" {
				rel, _ := filepath.Rel(root, filepath.Dir(p))
				rel = filepath.ToSlash(rel)
				if len(repos) == 0 || repos[len(repos)-1] != rel {
					repos = append(repos, rel)
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

// Tags lists the tags of repo that have a current link, sorted.
func (s *Store) Tags(repo string) ([]string, error) {
	if tags, ok := s.snap.repoTags(repo); ok {
		return tags, nil
	}
	listed, err := s.ListedTags(repo)
	if err != nil {
		return nil, err
	}
	tags := slices.DeleteFunc(listed, func(tag string) bool { return !s.HasLink(TagCurrent{Repo: repo, Tag: tag}) })
	s.snap.keepTags(repo, tags)
	return tags, nil
}

// ListedTags lists every entry of repo's _manifests/tags/ directory that is a valid tag,
// with a current link or not, sorted: the tags registry 2.8 lists (it lists every entry).
func (s *Store) ListedTags(repo string) ([]string, error) {
	dir, err := s.Path(TagsDir{Repo: repo})
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, e := range ents {
		if layout.ValidateTag(e.Name()) == nil {
			tags = append(tags, e.Name())
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// Refs lists every tag of every repository.
func (s *Store) Refs() ([]layout.Ref, error) {
	repos, err := s.Repos()
	if err != nil {
		return nil, err
	}
	valid := repos[:0]
	for _, r := range repos {
		if layout.ValidateRepo(r) == nil {
			valid = append(valid, r)
		}
	}
	return layout.TagRefs(s, valid)
}

// Resolve returns the manifest digest of ref: the tag's current link, or the digest if the
// repository holds that manifest.
func (s *Store) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref.Digest != "" {
		if !s.hasManifest(ref.Repo, ref.Digest) {
			return "", fmt.Errorf("%s: %w", ref, layout.ErrNotFound)
		}
		return ref.Digest, nil
	}
	d, err := s.ReadLink(TagCurrent{Repo: ref.Repo, Tag: ref.Tag})
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return d, nil
}

// hasManifest reports whether repo links manifest d; like registry 2.8, a _layers link counts.
func (s *Store) hasManifest(repo string, d digest.Digest) bool {
	return s.HasLink(RevisionLink{Repo: repo, Digest: d}) || s.HasLink(LayerLink{Repo: repo, Digest: d})
}

// ReadManifest reads manifest d of repo, which must be linked in repo, and verifies it.
func (s *Store) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	if err := layout.ValidateDigest(d); err != nil {
		return nil, err
	}
	if !s.hasManifest(repo, d) {
		return nil, fmt.Errorf("manifest %s is not linked in repository %s: %w", d, repo, layout.ErrNotFound)
	}
	m, err := layout.ReadManifest(s.mustBlob(d), d, fmt.Sprintf("manifest %s of %s", d, repo))
	if err == nil {
		s.snap.keepManifest(m)
	}
	return m, err
}

func (s *Store) mustBlob(d digest.Digest) string { return s.mustPath(BlobData{Digest: d}) }

// ReadBlobManifest reads blob d as a manifest, whichever repository links it, verifying it.
func (s *Store) ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error) {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return nil, err
	}
	return layout.ReadManifestBlob(p, d)
}

// Untag removes repo:tag (its current link and index) if it still points at d, and reports
// whether it did. Manifests and blobs stay (the registry's garbage collector removes what no
// tag needs).
func (s *Store) Untag(repo, tag string, d digest.Digest) (bool, error) {
	defer s.snap.forget()
	cur, err := s.ReadLink(TagCurrent{Repo: repo, Tag: tag})
	if errors.Is(err, layout.ErrNotFound) || (err == nil && cur != d) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p, err := s.Path(TagDir{Repo: repo, Tag: tag})
	if err != nil {
		return false, err
	}
	return true, fsutil.RemoveDir(p)
}

// BlobPath returns the data file of blob d (which must be a valid digest).
func (s *Store) BlobPath(_ string, d layout.Descriptor) (string, error) {
	return s.Path(BlobData{Digest: d.Digest})
}

// OpenBlob opens the data file of blob d.
func (s *Store) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return nil, err
	}
	f, _, err := layout.OpenRegularReader(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return f, err
}

// StatBlob reports whether blob d is present as a regular file of the right size (its content
// is not read).
func (s *Store) StatBlob(d layout.Descriptor) bool {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// VerifyBlob hashes blob d and checks it against its digest and size.
func (s *Store) VerifyBlob(d layout.Descriptor) error {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	if err := layout.VerifyFile(p, d); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
		}
		return err
	}
	return nil
}

// WriteBlob stores blob d from r, verifying it; the data file appears only if it matches.
func (s *Store) WriteBlob(d layout.Descriptor, r io.Reader) error {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	return layout.WriteVerified(p, d, r, fsutil.BlobMode)
}

// LinkBlob stores blob d as a hard link to file src, which the caller has verified. The error
// satisfies fsutil.IsCrossDevice when src is on another file system.
func (s *Store) LinkBlob(d layout.Descriptor, src string) error {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	return fsutil.Link(src, p)
}

// WriteLink writes the link file of spec holding d, unless it already holds d.
func (s *Store) WriteLink(spec PathSpec, d digest.Digest) error {
	if err := layout.ValidateDigest(d); err != nil {
		return err
	}
	if got, err := s.ReadLink(spec); err == nil && got == d {
		return nil
	}
	p, err := s.Path(spec)
	if err != nil {
		return err
	}
	defer s.snap.forget()
	return fsutil.WriteFile(p, []byte(d), fsutil.FileMode)
}

// LinkImage writes the repository links of img in repo (LinkImageIn) after the repository's
// _layers directory. The blobs must already be stored.
func (s *Store) LinkImage(repo string, img *layout.Image) error {
	if err := s.EnsureRepo(repo); err != nil {
		return err
	}
	s.subjects.Drop(repo)
	return LinkImageIn(s, repo, img)
}

// EnsureRepo creates repo's _layers directory, which registry 2.8 needs to list and keep it.
func (s *Store) EnsureRepo(repo string) error {
	p, err := s.Path(LayersDir{Repo: repo})
	if err != nil {
		return err
	}
	return os.MkdirAll(p, fsutil.DirMode)
}

// Tag points repo:tag at manifest d: the tag's index entry first, then its current link, as
// the registry's tagStore.Tag does (TagIn).
func (s *Store) Tag(repo, tag string, d digest.Digest) error { return TagIn(s, repo, tag, d) }

// ConcurrentPut reports that PutImage calls for different refs may overlap: blobs are placed
// by a hard link or a rename, links written through a temporary name, all with the content
// their path names.
func (s *Store) ConcurrentPut() bool { return true }

// PutImage stores img in repo: every manifest and blob not yet present (hard-linked from a
// file-backed src on the same file system, else copied and verified), then the repository
// links, then the tag if ref has one.
func (s *Store) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	return PutImageIn(s, ref, img, src, func(d layout.Descriptor) error { return s.placeOnce(d, ref.Repo, src) })
}

// placeOnce stores blob d from src unless it is there; while PutImage calls overlap, a blob
// that several images share is fetched once: the others wait for that and find it stored.
func (s *Store) placeOnce(d layout.Descriptor, repo string, src layout.Source) error {
	return s.placing.Do(d.Digest, func() bool { return s.StatBlob(d) }, func() error { return s.place(d, repo, src) })
}

func (s *Store) place(d layout.Descriptor, repo string, src layout.Source) error {
	p, err := s.Path(BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	copied, err := layout.Place(p, src, repo, d)
	if copied {
		s.mu.Lock()
		s.Copied++
		s.mu.Unlock()
	}
	return err
}

// RemoveImage removes the tag of ref if it still points at d (see Untag); an untagged ref is
// left alone.
func (s *Store) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	if ref.Tag == "" {
		return false, nil
	}
	return s.Untag(ref.Repo, ref.Tag, d)
}
