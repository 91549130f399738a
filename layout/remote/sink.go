package remote

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

var _ layout.ConcurrentSink = (*Registry)(nil)

// ConcurrentPut reports that several images may be pushed at once: each blob is pushed once
// per run (see blobs) and the registry stores what it receives under its digest.
func (r *Registry) ConcurrentPut() bool { return true }

// PutImage pushes img to ref's repository: every config and layer the registry lacks (a HEAD
// first; a blob this run already pushed to another repository is mounted from there, not
// uploaded again), Jobs at a time; then each child manifest by digest, then the top manifest
// by digest; each manifest is asked for again and checked before anything names it; the tag
// last.
func (r *Registry) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	nr, err := r.repo(ref.Repo)
	if err != nil {
		return err
	}
	if skip, err := r.skipReferrersTag(nr, ref, img); err != nil || skip {
		return err
	}
	descs := img.Blobs()
	if err := par.Each(r.ctx, len(descs), r.jobs, func(i int) error {
		if layout.SkipAbsent(src, ref.Repo, descs[i]) {
			return nil // a non-distributable layer the source lacks: the registry needs it not
		}
		return r.pushBlob(nr, ref.Repo, descs[i], src)
	}); err != nil {
		return err
	}
	for _, c := range childrenFirst(img) {
		if err := r.putManifest(nr, c); err != nil {
			return err
		}
	}
	err = r.putManifest(nr, img.Manifest)
	if err != nil && img.Sparse() {
		err = fmt.Errorf("%w\n(index %s is sparse: %d of its %d platforms are here; registries that check an index's children, as Distribution does, refuse it: push the whole index, or one --platform, whose image the tag then names)",
			err, img.Digest(), len(img.Children), len(img.Children)+len(img.Absent))
	}
	if err != nil || ref.Tag == "" {
		return err
	}
	return r.putTag(nr, ref.Tag, img.Manifest)
}

// putTag PUTs m's bytes under tag in nr, alone in nr (see links): the registry writes m's
// link again, which an index naming m, put meanwhile, would find empty.
func (r *Registry) putTag(nr name.Repository, tag string, m *layout.Manifest) error {
	return r.links.tagging(nr.String(), func() error {
		if err := r.cl.forRepo(nr.Name()).pusher.Put(r.ctx, nr.Tag(tag), rawManifest{m}); err != nil {
			return r.explain(fmt.Errorf("tagging manifest %s as %s: %w", m.Digest, nr.Tag(tag), err))
		}
		return nil
	})
}

// childrenFirst orders the manifests below img so that each comes after every manifest it
// lists: a registry that checks an index's children (Distribution refuses an index whose
// children it lacks) takes an index of indexes only bottom up. img.Children lists an index
// before its own children, and a child two indexes share once.
func childrenFirst(img *layout.Image) []*layout.Manifest {
	byDigest := make(map[digest.Digest]*layout.Manifest, len(img.Children))
	for _, c := range img.Children {
		byDigest[c.Digest] = c
	}
	out := make([]*layout.Manifest, 0, len(img.Children))
	done := map[digest.Digest]bool{img.Manifest.Digest: true}
	var visit func(m *layout.Manifest)
	visit = func(m *layout.Manifest) {
		for _, d := range m.Manifests {
			c := byDigest[d.Digest]
			if c == nil || done[c.Digest] {
				continue // absent (a sparse index), or placed already
			}
			done[c.Digest] = true
			visit(c)
			out = append(out, c)
		}
	}
	visit(img.Manifest)
	for _, c := range img.Children {
		if !done[c.Digest] { // not below the top manifest: kept, last
			done[c.Digest] = true
			out = append(out, c)
		}
	}
	return out
}

// ErrDamaged reports a registry whose stored copy of a manifest is not the bytes pushed: asked
// for it, the registry fails (5xx) or answers another length or digest.
var ErrDamaged = errors.New("the registry holds a damaged copy")

// putManifest makes m present in nr once per run (see links): the first image that needs it
// puts it, and every other waits until that is complete, so that no index is put while a
// manifest it names is being written.
func (r *Registry) putManifest(nr name.Repository, m *layout.Manifest) error {
	return r.links.once(nr.String(), m.Digest, func() error {
		return r.links.putting(nr.String(), func() error { return r.sendManifest(nr, m) })
	})
}

// sendManifest PUTs m's bytes unchanged, with its own media type, by digest into nr, then asks
// for them back (HEAD: no body comes back, and Distribution reads and parses the stored copy
// to answer it): Distribution keeps a blob it already has without reading it, and its
// filesystem driver writes a manifest in place, so a registry killed mid-write keeps a cut
// copy that every later push leaves as it is and every pull of it fails on.
func (r *Registry) sendManifest(nr name.Repository, m *layout.Manifest) error {
	ref := nr.Digest(m.Digest.String())
	cl := r.cl.forRepo(nr.Name())
	if err := cl.pusher.Put(r.ctx, ref, rawManifest{m}); err != nil {
		return r.explain(fmt.Errorf("pushing manifest %s to %s: %w", m.Digest, ref, err))
	}
	desc, err := cl.puller.Head(r.ctx, ref)
	var te *transport.Error
	var why string
	switch {
	case err == nil && desc.Size == int64(len(m.Raw)) && desc.Digest.String() == m.Digest.String():
		return nil
	case err == nil:
		why = fmt.Sprintf("asked for it after the push, it answers %d bytes of %s (pushed: %d bytes)", desc.Size, desc.Digest, len(m.Raw))
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		// Not visible yet (a storage that is only eventually consistent): not a damaged copy,
		// and the tag's PUT carries the bytes again.
		return nil
	case errors.As(err, &te) && te.StatusCode >= 500:
		why = fmt.Sprintf("asked for it after the push, it fails: %v", err)
	default:
		return r.explain(fmt.Errorf("checking manifest %s at %s after the push: %w", m.Digest, ref, err))
	}
	data, _ := registry.PathFor(registry.BlobData{Digest: m.Digest})
	return fmt.Errorf("%w of manifest %s in %s: %s\n"+
		"(Distribution never rewrites a blob it already has, and a registry stopped while it wrote a manifest leaves it cut short: "+
		"delete %s under the registry's storage root, or that object from its bucket, and push again)",
		ErrDamaged, m.Digest, nr, why, data)
}

// pushBlob pushes blob d into nr once per run: the first image that needs it uploads it
// (unless the registry has it), the others wait for that and then mount it from there, once
// per repository (see links: a second mount would write the link again while the first
// image's manifest PUT reads it).
func (r *Registry) pushBlob(nr name.Repository, repo string, d layout.Descriptor, src layout.Source) error {
	return r.links.once(nr.String(), d.Digest, func() error { return r.placeBlob(nr, repo, d, src) })
}

// placeBlob makes d present in nr: uploaded by the first push of d in this run, else mounted
// from the repository that one went to once it is complete.
func (r *Registry) placeBlob(nr name.Repository, repo string, d layout.Descriptor, src layout.Source) error {
	first, from := r.pushed.claim(d, nr)
	if !first {
		if err := from.wait(); err != nil {
			return err
		}
	}
	err := r.upload(nr, repo, d, src, first, from)
	if first {
		r.pushed.done(from, err)
	}
	return err
}

// upload makes one blob present in nr: left alone if the registry has it, mounted from the
// repository this run first pushed it to, or uploaded. go-containerregistry asks whether the
// registry has it (HEAD) before it mounts or uploads; what the registry answered comes back in
// a blobAnswers (traceTransport), so bale asks nothing itself.
func (r *Registry) upload(nr name.Repository, repo string, d layout.Descriptor, src layout.Source, first bool, from *blobPush) error {
	cl := r.cl.forRepo(nr.Name())
	ctx, answers := withBlobAnswers(r.ctx)
	sl := &sourceLayer{src: src, repo: repo, d: d}
	var l v1.Layer = sl
	mount := !first && from.repo.String() != nr.String()
	if mount {
		l = &ggcr.MountableLayer{Layer: l, Reference: from.repo.Digest(d.Digest.String())}
	}
	err := cl.pusher.Upload(ctx, nr, l)
	if err != nil && answers.headFails.Load() {
		// docker-registry killed while it wrote a link leaves it empty, and then answers 500
		// for that blob in that repository: upload it again without asking, which rewrites
		// the link.
		ctx, answers = withBlobAnswers(r.ctx)
		err = cl.pusher.Upload(ctx, nr, &blindLayer{sourceLayer: sl})
	}
	if err != nil {
		return r.explain(fmt.Errorf("pushing blob %s to %s: %w", d.Digest, nr, err))
	}
	switch {
	case answers.existing.Load():
		r.count(&r.stats.Existing, 0)
	case answers.mounted.Load():
		r.count(&r.stats.Mounted, 0)
	default:
		r.count(&r.stats.Uploaded, d.Size)
	}
	return nil
}

// PushStats count the blobs PutImage made present, by how.
type PushStats struct {
	Existing int   // the registry had them
	Mounted  int   // mounted from another repository this run had pushed them to
	Uploaded int   // sent
	Bytes    int64 // bytes sent
}

// Stats returns what this Registry's pushes did so far.
func (r *Registry) Stats() PushStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Registry) count(n *int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*n++
	r.stats.Bytes += bytes
}

// blobs records, per digest, the first push of this run: while it runs, its blobPush, which
// the others wait on; once it succeeded, only the repository it went to (an index into repos),
// so that what a push of a whole release remembers is about 50 bytes a blob (#19).
type blobs struct {
	mu      sync.Mutex
	running map[blobKey]*blobPush
	pushed  map[blobKey]uint32 // index into repos
	repos   []name.Repository
	repoIdx map[string]uint32
}

// blobKey is a blob's digest as a fixed-size key (its sha256), which keeps no digest string
// of an image pushed long ago alive.
type blobKey [sha256.Size]byte

// blobPush is the first push of a blob in this run.
type blobPush struct {
	key  blobKey
	repo name.Repository
	fin  chan struct{}
	err  error
}

func newBlobs() *blobs {
	return &blobs{running: map[blobKey]*blobPush{}, pushed: map[blobKey]uint32{}, repoIdx: map[string]uint32{}}
}

// finished is the fin of a push that is complete.
var finished = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// claim returns the push of d, and whether the caller makes it (and then calls b.done).
func (b *blobs) claim(d layout.Descriptor, repo name.Repository) (bool, *blobPush) {
	k := blobKey(sha256.Sum256([]byte(d.Digest)))
	b.mu.Lock()
	defer b.mu.Unlock()
	if i, ok := b.pushed[k]; ok {
		return false, &blobPush{key: k, repo: b.repos[i], fin: finished}
	}
	if p, ok := b.running[k]; ok {
		return false, p
	}
	p := &blobPush{key: k, repo: repo, fin: make(chan struct{})}
	b.running[k] = p
	return true, p
}

// done ends the first push p with err: waiters go on; a success is remembered by its
// repository only, a failure as it is (the blob's later pushes fail the same way).
func (b *blobs) done(p *blobPush, err error) {
	b.mu.Lock()
	if err == nil {
		name := p.repo.String()
		i, ok := b.repoIdx[name]
		if !ok {
			i = uint32(len(b.repos))
			b.repos = append(b.repos, p.repo)
			b.repoIdx[name] = i
		}
		b.pushed[p.key] = i
		delete(b.running, p.key)
	}
	b.mu.Unlock()
	p.err = err
	close(p.fin)
}

// wait waits for the first push; if it failed, the caller's push fails the same way.
func (p *blobPush) wait() error {
	<-p.fin
	if p.err != nil {
		return fmt.Errorf("an earlier push of this blob failed: %w", p.err)
	}
	return nil
}

// rawManifest hands go-containerregistry a manifest's exact bytes and media type.
type rawManifest struct{ m *layout.Manifest }

func (m rawManifest) RawManifest() ([]byte, error)        { return m.m.Raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(m.m.MediaType), nil }

// sourceLayer is a blob of a bale layout as a go-containerregistry layer: only what an
// upload needs (digest, size, media type, the compressed bytes, verified while they stream).
type sourceLayer struct {
	src  layout.Source
	repo string
	d    layout.Descriptor
}

var errNotForUpload = errors.New("not available: bale pushes blobs as they are stored")

func (l *sourceLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.d.Digest.String()) }
func (l *sourceLayer) DiffID() (v1.Hash, error) { return v1.Hash{}, errNotForUpload }
func (l *sourceLayer) Size() (int64, error)     { return l.d.Size, nil }
func (l *sourceLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.d.MediaType), nil
}
func (l *sourceLayer) Uncompressed() (io.ReadCloser, error) { return nil, errNotForUpload }
func (l *sourceLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.src.OpenBlob(l.repo, l.d)
	if err != nil {
		return nil, err
	}
	return verifiedCloser{layout.NewVerifier(rc, l.d), rc}, nil
}

// blindLayer is a sourceLayer whose digest go-containerregistry learns only once it reads the
// content, so that it uploads without first asking the registry whether it has the blob.
type blindLayer struct {
	*sourceLayer
	opened atomic.Bool
}

// errNotYet is the error that makes go-containerregistry stream a layer of unknown digest.
var errNotYet = fmt.Errorf("digest known once the content is read: %w", stream.ErrNotComputed)

func (l *blindLayer) Digest() (v1.Hash, error) {
	if !l.opened.Load() {
		return v1.Hash{}, errNotYet
	}
	return l.sourceLayer.Digest()
}

func (l *blindLayer) Compressed() (io.ReadCloser, error) {
	l.opened.Store(true)
	return l.sourceLayer.Compressed()
}

type verifiedCloser struct {
	io.Reader
	io.Closer
}
