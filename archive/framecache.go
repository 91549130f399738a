package archive

import (
	"container/list"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Random access (OpenRandom, bale serve) decodes whole frames. However many readers there are,
// the decoded frames the process holds stay within its budget (frameBudget; bale serve, read by
// many clients at once, raises it to ServeFrameMemory with SetFrameMemory): a reader holds one frame
// at a time, from when it first reads from it until it has read past it (or seeks, or closes);
// readers of the same frame share it; a frame no reader holds is kept, least recently used
// first out, while there is room; a reader that needs a frame when there is none waits until a
// reader lets one go, or takes the frame of a reader that has not read for staleAfter (a client
// that stopped reading), which decodes it again when it reads on. At most decodeSlots frames
// decode at once, with one zstd decoder and recycled buffers, so that serving many clients
// costs no more memory than serving a few.
const (
	frameBudget = 16 << 20
	staleAfter  = time.Second
	// ServeFrameMemory is the frame budget of bale serve: 16 clients pulling at once each hold
	// a frame and find the frames others decoded (#19 goal 5).
	ServeFrameMemory = 32 << 20
)

// SetFrameMemory sets the bytes of decoded frames this process keeps (16 MiB by default,
// enough for copy and push, whose readers are few and mostly read on from where they are),
// from now on: a lower budget lets idle frames go, a higher one keeps more.
func SetFrameMemory(n int64) {
	frames.mu.Lock()
	frames.budget = n
	frames.room.Broadcast()
	frames.mu.Unlock()
}

// decodeSlots bounds the frames decoded at once (and so their compressed input buffers).
var decodeSlots = min(runtime.GOMAXPROCS(0), 8)

// frames is the process's cache of decoded frames.
var frames = newFrameCache(frameBudget, staleAfter, decodeSlots)

// frameKey names frame i of bundle b.
type frameKey struct {
	b *Bundle
	i int
}

// cachedFrame is a decoded frame: data is valid once ready is closed and err is nil, while a
// reader holds it and it is not taken (a holder checks with use before each read from it).
type cachedFrame struct {
	key     frameKey
	data    []byte
	err     error
	ready   chan struct{}
	holders int           // readers holding it
	busy    int           // readers reading from it (or waiting for its decoding) right now
	lastUse time.Time     // when a reader last finished reading from it
	taken   bool          // its buffer went to another frame while its holders were idle
	idle    *list.Element // in frameCache.idle while no reader holds it
}

// frameCache holds decoded frames within a byte budget (see frameBudget).
type frameCache struct {
	mu      sync.Mutex
	room    *sync.Cond // signalled when a frame or buffer is let go
	budget  int64
	stale   time.Duration // see staleAfter
	used    int64         // capacity of the frame buffers allocated and not dropped
	peak    int64         // the most used has been
	frames  map[frameKey]*cachedFrame
	idle    list.List // frames no reader holds, least recently used first
	free    [][]byte  // frame buffers to reuse, counted in used
	waiting int       // readers waiting for room
	decodes int       // frames decoded, for tests
	taken   int       // frames taken from idle holders, for tests

	slots  chan struct{} // one per frame being decoded
	inputs chan []byte   // compressed-input buffers to reuse
	dec    func() (*zstd.Decoder, error)
}

func newFrameCache(budget int64, stale time.Duration, slots int) *frameCache {
	c := &frameCache{budget: budget, stale: stale, frames: map[frameKey]*cachedFrame{},
		slots: make(chan struct{}, slots), inputs: make(chan []byte, slots),
		dec: sync.OnceValues(frameDecoder)}
	c.room = sync.NewCond(&c.mu)
	return c
}

// get returns frame i of b decoded, held until release and in use until done; a reader holds
// one frame at a time (it releases the one it holds first), or two readers waiting for room
// could wait for each other.
func (c *frameCache) get(b *Bundle, i int) (*cachedFrame, error) {
	k := frameKey{b, i}
	need := int64(b.table.raw[i])
	c.mu.Lock()
	var buf []byte
	for {
		if f := c.frames[k]; f != nil {
			f.holders++
			f.busy++
			if f.idle != nil {
				c.idle.Remove(f.idle)
				f.idle = nil
			}
			c.mu.Unlock()
			<-f.ready
			if f.err != nil {
				c.done(f)
				c.release(f)
				return nil, f.err
			}
			return f, nil
		}
		var ok bool
		if buf, ok = c.take(need); ok {
			break
		}
		// Woken when a frame is let go, or when a holder may have gone stale.
		c.waiting++
		wake := time.AfterFunc(c.stale, func() {
			c.mu.Lock()
			c.room.Broadcast()
			c.mu.Unlock()
		})
		c.room.Wait()
		wake.Stop()
		c.waiting--
	}
	f := &cachedFrame{key: k, holders: 1, busy: 1, ready: make(chan struct{})}
	c.frames[k] = f
	c.decodes++
	c.mu.Unlock()

	data, err := c.decode(b, i, buf)
	c.mu.Lock()
	if err != nil {
		f.err = err
		delete(c.frames, k) // a later reader tries again, and fails again
		c.free = append(c.free, buf[:0])
		c.room.Broadcast()
	} else {
		f.data = data
	}
	c.mu.Unlock()
	close(f.ready)
	if err != nil {
		c.done(f)
		c.release(f)
		return nil, err
	}
	return f, nil
}

// take returns a buffer for a frame of need bytes: a free one, a new one within the budget,
// or the buffer of the least recently used idle frame; ok false when there is no room. The
// first frame always gets one, however big. c.mu is held.
func (c *frameCache) take(need int64) ([]byte, bool) {
	for {
		for j, b := range c.free {
			if int64(cap(b)) >= need {
				c.free = append(c.free[:j], c.free[j+1:]...)
				return b[:0], true
			}
		}
		size := max(need, FrameSize)
		if c.used+size <= c.budget || c.used == 0 {
			c.used += size
			c.peak = max(c.peak, c.used)
			return make([]byte, 0, size), true
		}
		switch {
		case len(c.free) > 0: // too small: drop one, and see again
			c.used -= int64(cap(c.free[0]))
			c.free = c.free[1:]
		case c.idle.Len() > 0:
			f := c.idle.Remove(c.idle.Front()).(*cachedFrame)
			f.idle = nil
			delete(c.frames, f.key)
			c.free = append(c.free, f.data[:0])
			f.data = nil
		default:
			f := c.stalest()
			if f == nil {
				return nil, false
			}
			f.taken = true
			c.taken++
			delete(c.frames, f.key)
			c.free = append(c.free, f.data[:0])
			f.data = nil
		}
	}
}

// stalest is the held frame no reader has read from for the longest, if that is at least
// c.stale; nil if there is none. c.mu is held.
func (c *frameCache) stalest() *cachedFrame {
	var out *cachedFrame
	for _, f := range c.frames {
		if f.holders > 0 && f.busy == 0 && f.data != nil && time.Since(f.lastUse) >= c.stale &&
			(out == nil || f.lastUse.Before(out.lastUse)) {
			out = f
		}
	}
	return out
}

// use marks frame f, held, as read from; false when it was taken while its holder was idle
// (then the holder releases it and gets the frame again).
func (c *frameCache) use(f *cachedFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.taken {
		return false
	}
	f.busy++
	return true
}

// done ends a read from frame f (get, or use).
func (c *frameCache) done(f *cachedFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.busy--
	f.lastUse = time.Now()
}

// release lets frame f go; with no reader left it is kept, idle, while there is room.
func (c *frameCache) release(f *cachedFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.holders--
	switch {
	case f.holders > 0 || f.err != nil || f.data == nil: // held, failed, or taken
	case c.frames[f.key] == f:
		f.idle = c.idle.PushBack(f)
	default: // its bundle closed
		c.free = append(c.free, f.data[:0])
		f.data = nil
	}
	if c.waiting > 0 {
		c.room.Broadcast()
	}
}

// forget drops the idle frames of bundle b (closed); frames a reader still holds go when it
// releases them, as a closed bundle's readers fail.
func (c *frameCache) forget(b *Bundle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, f := range c.frames {
		if k.b != b {
			continue
		}
		delete(c.frames, k)
		if f.idle != nil {
			c.idle.Remove(f.idle)
			f.idle = nil
			c.free = append(c.free, f.data[:0])
			f.data = nil
		}
	}
	if c.waiting > 0 {
		c.room.Broadcast()
	}
}

// decode reads frame i of b and decodes it into buf, in one of the decode slots.
func (c *frameCache) decode(b *Bundle, i int, buf []byte) ([]byte, error) {
	dec, err := c.dec()
	if err != nil {
		return nil, err
	}
	c.slots <- struct{}{}
	defer func() { <-c.slots }()
	t := b.table
	n := int(t.off[i+1] - t.off[i])
	var in []byte
	select {
	case in = <-c.inputs:
	default:
	}
	if cap(in) < n {
		in = make([]byte, n, max(n, FrameSize+FrameSize/64+1024))
	}
	in = in[:n]
	defer func() {
		select {
		case c.inputs <- in:
		default:
		}
	}()
	if _, err := b.ra.ReadAt(in, t.off[i]); err != nil {
		return nil, fmt.Errorf("reading frame %d: %w", i, err)
	}
	out, err := t.decode(i, dec, in, buf)
	if err != nil {
		return nil, fmt.Errorf("%v (damaged): %w", err, ErrBundle)
	}
	return out, nil
}

// frameStats is what tests check of a frameCache: the budget, the most bytes held, the
// readers waiting, the frames decoded and those taken from idle holders.
type frameStats struct {
	budget, peak            int64
	waiting, decodes, taken int
}

func (c *frameCache) stats() frameStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return frameStats{c.budget, c.peak, c.waiting, c.decodes, c.taken}
}
