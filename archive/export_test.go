package archive

import (
	"fmt"
	"os"
	"time"
)

// SetFrameBudget gives the process a frame cache of budget bytes whose held frames go stale
// after stale, for a test; the function it returns puts the default back. No reader may be
// open across either.
func SetFrameBudget(budget int64, stale time.Duration) (restore func()) {
	old := frames
	frames = newFrameCache(budget, stale, decodeSlots)
	return func() { frames = old }
}

// SetAheadMemory makes ReadAhead keep at most n bytes in memory, for a test; the function it
// returns puts the default back.
func SetAheadMemory(n int64) (restore func()) {
	old := aheadMemory
	aheadMemory = n
	return func() { aheadMemory = old }
}

// AheadSpilt is how many bytes s's ReadAhead has written to its spill file.
func AheadSpilt(s *Source) int64 {
	s.ahead.mu.Lock()
	defer s.ahead.mu.Unlock()
	return s.ahead.total
}

// FrameStats is what the frame cache has done: its budget, the most bytes of frames it held,
// the readers waiting for room now, and the frames it decoded.
func FrameStats() (budget, peak int64, waiting, decodes int) {
	s := frames.stats()
	return s.budget, s.peak, s.waiting, s.decodes
}

// FramesTaken is the number of frames readers that found no room took from idle holders.
func FramesTaken() int { return frames.stats().taken }

// CatalogReused reads the bundle at path as UnpackFiles does, its catalog first and then a
// reader of its members given that catalog, and reports whether the reader took the catalog
// read first rather than decode a copy of its own. With otherSum the reader is told another
// sha256 of the catalog member, as when the file changed in between.
func CatalogReused(path string, otherSum bool) (bool, error) {
	k, err := readCatalogSum(path)
	if err != nil {
		return false, err
	}
	if otherSum {
		k = &knownCatalog{cat: k.cat, sum: make([]byte, len(k.sum))}
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	br, err := newReaderAtKnown(f, fi.Size(), func() {}, k)
	if err != nil {
		return false, err
	}
	defer br.Close()
	if br.Catalog().Meta.ID != k.cat.Meta.ID {
		return false, fmt.Errorf("the reader's catalog is %s, the one read first %s", br.Catalog().Meta.ID, k.cat.Meta.ID)
	}
	return br.Catalog() == k.cat, nil
}

// BundleFrames is the number of frames b's seek table lists (0 without one).
func BundleFrames(b *Bundle) int {
	if b.table == nil {
		return 0
	}
	return b.table.frames()
}
