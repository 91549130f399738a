package archive

import "time"

// SetFrameBudget gives the process a frame cache of budget bytes whose held frames go stale
// after stale, for a test; the function it returns puts the default back. No reader may be
// open across either.
func SetFrameBudget(budget int64, stale time.Duration) (restore func()) {
	old := frames
	frames = newFrameCache(budget, stale, decodeSlots)
	return func() { frames = old }
}

// FrameStats is what the frame cache has done: its budget, the most bytes of frames it held,
// the readers waiting for room now, and the frames it decoded.
func FrameStats() (budget, peak int64, waiting, decodes int) {
	s := frames.stats()
	return s.budget, s.peak, s.waiting, s.decodes
}

// FramesTaken is the number of frames readers that found no room took from idle holders.
func FramesTaken() int { return frames.stats().taken }
