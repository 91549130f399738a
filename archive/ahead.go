package archive

import (
	"bytes"
	"cmp"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Reading ahead. A bundle lays its blobs out by digest, so the blobs of one image lie in
// frames far apart, and a copy or a push that reads image after image decodes a whole frame
// for most blobs of a few hundred bytes once the release has more frames than the frame cache
// holds (#19: at 20,000 tags, 150 frames against 16). ReadAhead reads the small blobs of the
// next images in the order the bundle holds them, each frame decoded once, and keeps them in
// memory until the caller is done with them. The largest blob read ahead is
// layout.AheadMaxBlob.

// aheadMemory bounds the bytes read ahead and not yet let go, whatever the callers ask.
const aheadMemory = 32 << 20

var _ layout.AheadReader = (*Source)(nil)

// aheadBlob is a blob read ahead: its bytes, verified, and how many ReadAhead calls not yet
// done hold it.
type aheadBlob struct {
	data    []byte
	holders int
}

// aheadStore holds the blobs read ahead.
type aheadStore struct {
	mu    sync.Mutex
	blobs map[digest.Digest]*aheadBlob
	bytes int64
}

// get returns the bytes of blob d if they were read ahead.
func (a *aheadStore) get(d digest.Digest) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.blobs[d]; b != nil {
		return b.data, true
	}
	return nil, false
}

// hold takes one more hold on d if it is held already.
func (a *aheadStore) hold(d digest.Digest) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.blobs[d]; b != nil {
		b.holders++
		return true
	}
	return false
}

// reserve counts size bytes against aheadMemory, if there is room.
func (a *aheadStore) reserve(size int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bytes+size > aheadMemory {
		return false
	}
	a.bytes += size
	return true
}

// put keeps data as blob d, held once (its size was reserved); when another call put it
// first, that one is held instead.
func (a *aheadStore) put(d digest.Digest, data []byte, reserved int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.blobs == nil {
		a.blobs = map[digest.Digest]*aheadBlob{}
	}
	if b := a.blobs[d]; b != nil {
		b.holders++
		a.bytes -= reserved
		return
	}
	a.blobs[d] = &aheadBlob{data: data, holders: 1}
	a.bytes += int64(len(data)) - reserved
}

// unreserve gives back size bytes reserved for a blob that was not read.
func (a *aheadStore) unreserve(size int64) {
	a.mu.Lock()
	a.bytes -= size
	a.mu.Unlock()
}

// let lets go of one hold on each of ds.
func (a *aheadStore) let(ds []digest.Digest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range ds {
		if b := a.blobs[d]; b != nil {
			if b.holders--; b.holders == 0 {
				a.bytes -= int64(len(b.data))
				delete(a.blobs, d)
			}
		}
	}
}

// ReadAhead reads the manifests and blobs of ds that the bundles carry, with for each manifest
// the manifests below it, in the order the bundles hold them, and keeps those of at most
// layout.AheadMaxBlob bytes (within aheadMemory in all) until done is called: ReadManifest
// and OpenBlob answer them from memory meanwhile. Each was verified against its digest as it was read; one
// that fails is not kept, and its own read later fails as it would have.
func (s *Source) ReadAhead(ds []digest.Digest) (done func()) {
	type item struct {
		b    *Bundle
		n    int // b's place in s.bundles
		off  int64
		d    digest.Digest
		size int64
	}
	order := make(map[*Bundle]int, len(s.bundles))
	for i, b := range s.bundles {
		order[b] = i
	}
	seen := make(map[digest.Digest]bool, len(ds))
	var held []digest.Digest
	var items []item
	add := func(d digest.Digest) {
		if seen[d] {
			return
		}
		seen[d] = true
		b := s.owner[d]
		if b == nil {
			return
		}
		rec := b.Catalog.Blobs[d]
		if rec == nil || rec.Size > layout.AheadMaxBlob {
			return
		}
		if s.ahead.hold(d) {
			held = append(held, d)
			return
		}
		items = append(items, item{b, order[b], b.blobs[d], d, rec.Size})
	}
	for _, d := range ds {
		add(d)
		if b := s.owner[d]; b != nil && b.Catalog.Manifests[d] != nil {
			for _, c := range b.Catalog.ManifestClosure(d)[1:] {
				add(c)
			}
		}
	}
	slices.SortFunc(items, func(x, y item) int {
		return cmp.Or(cmp.Compare(x.n, y.n), cmp.Compare(x.off, y.off))
	})
	for _, it := range items {
		if !s.ahead.reserve(it.size) {
			break // the rest is read when it is asked for
		}
		data, err := readWhole(it.b, it.d)
		if err != nil {
			s.ahead.unreserve(it.size)
			continue
		}
		s.ahead.put(it.d, data, it.size)
		held = append(held, it.d)
	}
	return func() { s.ahead.let(held) }
}

// readWhole reads blob d of b, verified against its digest.
func readWhole(b *Bundle, d digest.Digest) ([]byte, error) {
	rc, size, err := b.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Read whole from its start: the reader withholds the last bytes, with an error, unless
	// the blob hashes to d.
	data := make([]byte, size)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, err
	}
	return data, nil
}

// aheadReader reads a blob read ahead.
func aheadReader(data []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(data)) }
