package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Store is registry v2 storage in an S3 bucket (see the package documentation).
type Store struct {
	cfg      Config
	client   *s3.Client
	endpoint string // "" for AWS's
	region   string
	ctx      context.Context
	prefix   string        // cfg.Root + "/", or ""
	sem      chan struct{} // one per request body in flight (blobs and parts)
	bufs     chan []byte   // part buffers, cfg.jobs()+2 of cfg.partSize()

	// placing uploads each blob once while PutImage calls overlap.
	placing par.Flight[digest.Digest]
	// subjects caches, per repository, the referrers its revisions hold.
	subjects registry.SubjectCache

	// blobSizes, once Prepare has listed the bucket's blobs (an unpack, holding the lock),
	// is the size of each blob object: StatBlob answers from it, not with a HEAD request a
	// blob, and WriteBlob adds to it. nil: ask the bucket.
	blobMu    sync.Mutex
	blobSizes map[digest.Digest]int64
}

var (
	_ layout.Source         = (*Store)(nil)
	_ layout.TagLister      = (*Store)(nil)
	_ layout.ConcurrentSink = (*Store)(nil)
	_ layout.Remover        = (*Store)(nil)
)

// Open connects to the bucket of cfg and checks that it can be listed (so that wrong
// credentials, a missing bucket or an endpoint that does not answer fail here, each named).
// ctx bounds every request the Store makes.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, endpoint, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, client: client, endpoint: endpoint, region: client.Options().Region, ctx: ctx}
	if cfg.Root != "" {
		s.prefix = cfg.Root + "/"
	}
	s.sem = make(chan struct{}, cfg.jobs())
	s.bufs = make(chan []byte, cfg.jobs()+2)
	for range cap(s.bufs) {
		s.bufs <- nil // allocated on first use
	}
	if _, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &cfg.Bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1)}); err != nil {
		return nil, s.explain("listing", "", err)
	}
	return s, nil
}

// String is the location, s3://BUCKET[/ROOT].
func (s *Store) String() string { return s.cfg.String() }

// Jobs is how many blobs the Store uploads at once.
func (s *Store) Jobs() int { return s.cfg.jobs() }

// key is the object key of spec: the root prefix and registry.PathFor.
func (s *Store) key(spec registry.PathSpec) (string, error) {
	p, err := registry.PathFor(spec)
	if err != nil {
		return "", err
	}
	return s.prefix + p, nil
}

// get reads the object at key whole, at most limit bytes.
func (s *Store) get(key string, limit int64) ([]byte, error) {
	out, err := s.client.GetObject(s.ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return nil, s.explain("reading", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, s.explain("reading", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("s3://%s/%s: more than %d bytes: %w", s.cfg.Bucket, key, limit, layout.ErrInvalid)
	}
	return b, nil
}

// put writes b at key in one request.
func (s *Store) put(key string, b []byte) error {
	_, err := s.client.PutObject(s.ctx, &s3.PutObjectInput{Bucket: &s.cfg.Bucket, Key: &key, Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))})
	return s.explain("writing", key, err)
}

// list calls f with every key under prefix and its size, in key order.
func (s *Store) list(prefix string, f func(key string, size int64) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(s.ctx)
		if err != nil {
			return s.explain("listing", prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key == nil {
				continue
			}
			if err := f(*o.Key, aws.ToInt64(o.Size)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadLink reads the link object of spec and returns the digest it holds; ErrNotFound if it
// is absent.
func (s *Store) ReadLink(spec registry.PathSpec) (digest.Digest, error) {
	key, err := s.key(spec)
	if err != nil {
		return "", err
	}
	b, err := s.get(key, 256)
	if err != nil {
		return "", err
	}
	d := digest.Digest(b)
	if err := layout.ValidateDigest(d); err != nil {
		return "", fmt.Errorf("link s3://%s/%s: %w", s.cfg.Bucket, key, err)
	}
	if want := registry.LinkDigest(spec); want != "" && want != d {
		return "", fmt.Errorf("link s3://%s/%s holds %s: %w", s.cfg.Bucket, key, d, layout.ErrInvalid)
	}
	return d, nil
}

// HasLink reports whether the link object of spec exists and is valid.
func (s *Store) HasLink(spec registry.PathSpec) bool {
	_, err := s.ReadLink(spec)
	return err == nil
}

// listSpecs lists the link objects under the directory spec dir (registry.Repositories or
// one of a repository's), parsed back with registry.ParsePath; keys that are not bale's
// links (a registry's _uploads, foreign objects) are skipped.
func (s *Store) listSpecs(dir registry.PathSpec, f func(registry.PathSpec)) error {
	p, err := s.key(dir)
	if err != nil {
		return err
	}
	return s.list(p+"/", func(key string, _ int64) error {
		if spec, ok := parseKey(s.prefix, key); ok {
			f(spec)
		}
		return nil
	})
}

// parseKey is the spec of an object key under prefix, when it is one of registry storage's
// blob or link keys exactly as PathFor writes it.
func parseKey(prefix, key string) (registry.PathSpec, bool) {
	rel, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return nil, false
	}
	spec, err := registry.ParsePath(rel)
	return spec, err == nil
}

// Repos lists every repository (one with a link object), sorted.
func (s *Store) Repos() ([]string, error) {
	seen := map[string]bool{}
	err := s.listSpecs(registry.Repositories{}, func(spec registry.PathSpec) {
		if r := specRepo(spec); r != "" {
			seen[r] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	repos := make([]string, 0, len(seen))
	for r := range seen {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	return repos, nil
}

// specRepo is the repository of a link spec.
func specRepo(spec registry.PathSpec) string {
	switch x := spec.(type) {
	case registry.LayerLink:
		return x.Repo
	case registry.RevisionLink:
		return x.Repo
	case registry.TagCurrent:
		return x.Repo
	case registry.TagIndex:
		return x.Repo
	}
	return ""
}

// Tags lists the tags of repo that have a current link, sorted.
func (s *Store) Tags(repo string) ([]string, error) {
	var tags []string
	err := s.listSpecs(registry.TagsDir{Repo: repo}, func(spec registry.PathSpec) {
		if t, ok := spec.(registry.TagCurrent); ok && t.Repo == repo {
			tags = append(tags, t.Tag)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(tags)
	return tags, nil
}

// Refs lists every tag of every repository.
func (s *Store) Refs() ([]layout.Ref, error) {
	var refs []layout.Ref
	err := s.listSpecs(registry.Repositories{}, func(spec registry.PathSpec) {
		if t, ok := spec.(registry.TagCurrent); ok {
			refs = append(refs, layout.Ref{Repo: t.Repo, Tag: t.Tag})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].Repo != refs[j].Repo {
			return refs[i].Repo < refs[j].Repo
		}
		return refs[i].Tag < refs[j].Tag
	})
	return refs, nil
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
	d, err := s.ReadLink(registry.TagCurrent{Repo: ref.Repo, Tag: ref.Tag})
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return d, nil
}

// hasManifest reports whether repo links manifest d; like registry 2.8, a _layers link counts.
func (s *Store) hasManifest(repo string, d digest.Digest) bool {
	return s.HasLink(registry.RevisionLink{Repo: repo, Digest: d}) || s.HasLink(registry.LayerLink{Repo: repo, Digest: d})
}

// ReadManifest reads manifest d of repo, which must be linked in repo, and verifies it.
func (s *Store) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	if err := layout.ValidateDigest(d); err != nil {
		return nil, err
	}
	if !s.hasManifest(repo, d) {
		return nil, fmt.Errorf("manifest %s is not linked in repository %s: %w", d, repo, layout.ErrNotFound)
	}
	return s.readManifestBlob(d, layout.MaxManifestSize)
}

// ReadBlobManifest reads blob d as a manifest, whichever repository links it, verifying it.
func (s *Store) ReadBlobManifest(d layout.Descriptor) (*layout.Manifest, error) {
	if d.Size > layout.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes: %w", d.Digest, d.Size, layout.ErrInvalid)
	}
	m, err := s.readManifestBlob(d.Digest, d.Size)
	if err == nil && m.Descriptor().Size != d.Size {
		return nil, fmt.Errorf("manifest %s: %d bytes, not %d: %w", d.Digest, m.Descriptor().Size, d.Size, layout.ErrDigestMismatch)
	}
	return m, err
}

// readManifestBlob reads blob d (at most limit bytes), checks its digest and parses it.
func (s *Store) readManifestBlob(d digest.Digest, limit int64) (*layout.Manifest, error) {
	key, err := s.key(registry.BlobData{Digest: d})
	if err != nil {
		return nil, err
	}
	b, err := s.get(key, limit)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("manifest s3://%s/%s holds %s: %w", s.cfg.Bucket, key, got, layout.ErrDigestMismatch)
	}
	return layout.ParseManifest(b)
}

// OpenBlob opens blob d for reading; the caller verifies what it reads.
func (s *Store) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	key, err := s.key(registry.BlobData{Digest: d.Digest})
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(s.ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, s.explain("reading", key, err))
	}
	return out.Body, nil
}

// StatBlob reports whether blob d is in the bucket with the right size (its content is not
// read).
func (s *Store) StatBlob(d layout.Descriptor) bool {
	key, err := s.key(registry.BlobData{Digest: d.Digest})
	if err != nil {
		return false
	}
	s.blobMu.Lock()
	if s.blobSizes != nil {
		size, ok := s.blobSizes[d.Digest]
		s.blobMu.Unlock()
		return ok && size == d.Size
	}
	s.blobMu.Unlock()
	out, err := s.client.HeadObject(s.ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	return err == nil && aws.ToInt64(out.ContentLength) == d.Size
}

// listBlobs lists every blob object of the bucket once (a thousand keys a request), so that
// StatBlob need not ask for each blob: an unpack into a bucket asks for every blob of the
// bundle, most of which a new bucket lacks and an updated one holds.
func (s *Store) listBlobs() error {
	dir, err := s.key(registry.Blobs{})
	if err != nil {
		return err
	}
	sizes := map[digest.Digest]int64{}
	if err := s.list(dir+"/", func(key string, size int64) error {
		if spec, ok := parseKey(s.prefix, key); ok {
			if b, ok := spec.(registry.BlobData); ok {
				sizes[b.Digest] = size
			}
		}
		return nil
	}); err != nil {
		return err
	}
	s.blobMu.Lock()
	s.blobSizes = sizes
	s.blobMu.Unlock()
	return nil
}

// wroteBlob records blob d, now in the bucket whole, when the blobs are listed.
func (s *Store) wroteBlob(d layout.Descriptor) {
	s.blobMu.Lock()
	if s.blobSizes != nil {
		s.blobSizes[d.Digest] = d.Size
	}
	s.blobMu.Unlock()
}

// HasBlob reports whether blob d need not be uploaded again: an object is in the bucket
// whole or not at all, written only after its content verified, so the right size is
// enough (bale verify reads and hashes every blob).
func (s *Store) HasBlob(d layout.Descriptor) bool { return s.StatBlob(d) }

// VerifyBlob reads blob d and checks it against its digest and size.
func (s *Store) VerifyBlob(d layout.Descriptor) error {
	rc, err := s.OpenBlob("", d)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, layout.NewVerifier(rc, d))
	return err
}
