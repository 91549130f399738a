package archive

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Reading ahead. A bundle lays its blobs out by digest, so the blobs of one image lie in
// frames far apart, and a copy or a push that reads image after image decodes a whole frame
// for most blobs of a few hundred bytes once the release has more frames than the frame cache
// holds (#19: at 20,000 tags, 150 frames against 16). ReadAhead reads the small blobs that
// all the images of a copy need, in the order the bundle holds them, each frame decoded once,
// and keeps them until the caller is done with them: in memory when they fit in aheadMemory,
// else in a temporary file (the spill) that is read back blob by blob. Reading ahead in
// windows of images that fit in memory instead decodes every frame once per window: as many
// windows as the release has megabytes of small blobs, so quadratic (#19, stop 26). The
// largest blob read ahead is layout.AheadMaxBlob.

// aheadMemory bounds the bytes ReadAhead keeps in memory; a call that needs more keeps what
// it reads in the spill file instead.
var aheadMemory int64 = 32 << 20

var _ layout.AheadReader = (*Source)(nil)

// aheadBlob is a blob read ahead: its bytes in memory, or its place in the spill file (data
// nil), and how many ReadAhead calls not yet done hold it.
type aheadBlob struct {
	data    []byte
	off     int64
	size    int64
	holders int
}

// aheadStore holds the blobs read ahead.
type aheadStore struct {
	mu    sync.Mutex
	blobs map[digest.Digest]*aheadBlob
	bytes int64    // of the blobs held in memory
	spill *os.File // unlinked temporary file of the blobs spilled; nil when none is held
	end   int64    // of spill
	spilt int      // blobs held in spill
	total int64    // bytes ever spilled, for tests
}

// get returns the bytes of blob d if they were read ahead. A spilled blob is read back and
// verified again; one that fails is reported absent, and read from the bundle as usual.
func (a *aheadStore) get(d digest.Digest) ([]byte, bool) {
	a.mu.Lock()
	b := a.blobs[d]
	f := a.spill
	a.mu.Unlock()
	if b == nil {
		return nil, false
	}
	if b.data != nil {
		return b.data, true
	}
	// The blob stays held, and the file open, until the caller's done: no lock for the read.
	data := make([]byte, b.size)
	if _, err := f.ReadAt(data, b.off); err != nil || d.Validate() != nil || d.Algorithm().FromBytes(data) != d {
		return nil, false
	}
	return data, true
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

// room reports whether size more bytes fit in memory.
func (a *aheadStore) room(size int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes+size <= aheadMemory
}

// put keeps data as blob d, held once: in memory, or appended to the spill file when toDisk.
// When another call put d first, that one is held instead.
func (a *aheadStore) put(d digest.Digest, data []byte, toDisk bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.blobs == nil {
		a.blobs = map[digest.Digest]*aheadBlob{}
	}
	if b := a.blobs[d]; b != nil {
		b.holders++
		return nil
	}
	b := &aheadBlob{size: int64(len(data)), holders: 1}
	if !toDisk {
		b.data = data
		a.bytes += b.size
		a.blobs[d] = b
		return nil
	}
	if a.spill == nil {
		f, err := os.CreateTemp("", "bale-ahead-*")
		if err != nil {
			return fmt.Errorf("reading ahead: %w", err)
		}
		os.Remove(f.Name()) // open until let go; nothing left behind whatever happens
		a.spill, a.end = f, 0
	}
	if _, err := a.spill.WriteAt(data, a.end); err != nil {
		return fmt.Errorf("reading ahead into %s: %w", a.spill.Name(), err)
	}
	b.off = a.end
	a.end += b.size
	a.spilt++
	a.total += b.size
	a.blobs[d] = b
	return nil
}

// let lets go of one hold on each of ds; the spill file is closed once it holds none.
func (a *aheadStore) let(ds []digest.Digest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range ds {
		if b := a.blobs[d]; b != nil {
			if b.holders--; b.holders == 0 {
				if b.data != nil {
					a.bytes -= b.size
				} else {
					a.spilt--
				}
				delete(a.blobs, d)
			}
		}
	}
	if a.spill != nil && a.spilt == 0 {
		a.spill.Close()
		a.spill, a.end = nil, 0
	}
}

// ReadAhead reads the manifests and blobs of ds that the bundles carry, with for each manifest
// the manifests below it, in the order the bundles hold them, and keeps those of at most
// layout.AheadMaxBlob bytes until done is called: in memory when they fit in aheadMemory,
// else in the spill file. ReadManifest and OpenBlob answer them from there meanwhile. Each was
// verified against its digest as it was read; one that fails is not kept, and its own read
// later fails as it would have. When the spill file cannot be written, what is left is read
// as usual.
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
	var total int64
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
		total += rec.Size
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
	toDisk := !s.ahead.room(total)
	for _, it := range items {
		data, err := readWhole(it.b, it.d)
		if err != nil {
			continue
		}
		if err := s.ahead.put(it.d, data, toDisk); err != nil {
			break // the rest is read when it is asked for
		}
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
