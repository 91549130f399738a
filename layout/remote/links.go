package remote

import (
	"crypto/sha256"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
)

// A registry keeps, in each repository, a link per blob and per manifest it holds
// (Distribution: _layers/sha256/<hex>/link, _manifests/revisions/sha256/<hex>/link), and it
// writes that link again on every blob upload or mount and on every PUT of a manifest, by
// digest or by tag. docker-registry 2.8's filesystem driver writes it in place, truncate then
// write, so a request that reads the link meanwhile finds it empty: an index PUT then fails,
// DIGEST_INVALID; MANIFEST_BLOB_UNKNOWN, for a child the registry holds, and an image
// manifest PUT with BLOB_UNKNOWN. Images pushed at once share such links: an index that is
// tagged itself and is the child of another index, the layers of images in one repository.
//
// So, within a run, per repository:
//   - each blob and each manifest is made present once (links.once): the first image that
//     needs it does the work, the others wait until it is complete, and nothing writes its
//     link again, except the tag PUT of a manifest;
//   - a tag PUT, which writes its manifest's link again and reads those of its children,
//     runs alone (links.tagging); every other manifest PUT, and the HEAD that checks it,
//     runs beside the others (links.putting): none of those writes a link another reads,
//     since an index is put only once each manifest it names is complete.
//
// A tag PUT holds its repository's lock and waits for nothing else; a once that waits (for
// that lock, or for the first push of a blob to another repository) waits for work that never
// waits for it: nothing here can deadlock.
type links struct {
	flight par.Flight[linkKey]
	mu     sync.Mutex
	done   map[linkKey]bool
	repos  map[string]*sync.RWMutex
}

// linkKey is one blob or manifest in one repository (its full name, HOST/PATH): the sha256 of
// both, so that the set of what a run made present, an entry for each blob and manifest of
// each repository of a release, holds neither name (#19).
type linkKey [sha256.Size]byte

// keyOf is the linkKey of d in repo.
func keyOf(repo string, d digest.Digest) linkKey {
	h := sha256.New()
	h.Write([]byte(repo))
	h.Write([]byte{0})
	h.Write([]byte(d))
	var k linkKey
	h.Sum(k[:0])
	return k
}

func newLinks() *links {
	return &links{done: map[linkKey]bool{}, repos: map[string]*sync.RWMutex{}}
}

// once runs work to make d present in repo, unless this run has done it already; a caller
// that finds another doing it waits for that to end, and tries itself if that failed.
func (l *links) once(repo string, d digest.Digest, work func() error) error {
	k := keyOf(repo, d)
	return l.flight.Do(k, func() bool { return l.isDone(k) }, func() error {
		if err := work(); err != nil {
			return err
		}
		l.mu.Lock()
		l.done[k] = true
		l.mu.Unlock()
		return nil
	})
}

func (l *links) isDone(k linkKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[k]
}

func (l *links) repo(repo string) *sync.RWMutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	rw := l.repos[repo]
	if rw == nil {
		rw = &sync.RWMutex{}
		l.repos[repo] = rw
	}
	return rw
}

// putting runs a PUT of a manifest by digest (and the HEAD that checks it) in repo, beside
// other such PUTs but never beside a tag PUT.
func (l *links) putting(repo string, put func() error) error {
	rw := l.repo(repo)
	rw.RLock()
	defer rw.RUnlock()
	return put()
}

// tagging runs a tag PUT in repo alone: it writes its manifest's link again.
func (l *links) tagging(repo string, put func() error) error {
	rw := l.repo(repo)
	rw.Lock()
	defer rw.Unlock()
	return put()
}
