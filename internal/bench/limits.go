package main

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The physical limits of pack and unpack on this machine: how fast one core hashes and
// (de)compresses the pool's two kinds of content, and how fast the disk takes and gives back
// a file. pack cannot beat reading the pool plus writing the bundle, and unpack cannot beat
// writing the blobs; with syncfs, unpack also waits for the disk itself.

const (
	limitSample = 256 << 20 // bytes hashed and compressed per measurement
	limitFile   = 1 << 30   // bytes written to and read from the disk
)

// limit is one measured speed.
type limit struct {
	what string
	mbs  float64 // MB/s (10^6 bytes a second)
}

// measureLimits runs every measurement once, in dir.
func measureLimits(dir string) ([]limit, error) {
	random := make([]byte, limitSample)
	rand.NewChaCha8([32]byte{1}).Read(random)
	text := make([]byte, limitSample)
	fillText(rand.New(rand.NewPCG(1, 2)), text)

	speed := func(n int, f func()) float64 {
		start := time.Now()
		f()
		return float64(n) / time.Since(start).Seconds() / 1e6
	}
	var out []limit
	out = append(out, limit{"sha256, one core", speed(limitSample, func() { sha256.Sum256(random) })})

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	for _, c := range []struct {
		name string
		data []byte
	}{{"incompressible (gzip layers)", random}, {"text (uncompressed tar layers)", text}} {
		// Frames go into one buffer touched beforehand: fresh memory is slow to fault in on a
		// VM, and that is measured below, not here.
		store := make([]byte, len(c.data)+len(c.data)/64+(1<<20))
		for i := range store {
			store[i] = 1
		}
		frames := make([][]byte, 0, len(c.data)>>20)
		var comp int
		mbs := speed(len(c.data), func() {
			for off := 0; off < len(c.data); off += 1 << 20 {
				f := enc.EncodeAll(c.data[off:off+1<<20], store[comp:comp])
				frames = append(frames, f)
				comp += len(f)
			}
		})
		out = append(out, limit{fmt.Sprintf("zstd -3 compress, one core, %s, 1 MiB frames (ratio %.2f)", c.name, float64(len(c.data))/float64(comp)), mbs})
		buf := make([]byte, 0, 1<<20)
		out = append(out, limit{"zstd decompress, one core, " + c.name, speed(len(c.data), func() {
			for _, f := range frames {
				buf, err = dec.DecodeAll(f, buf[:0])
			}
		})})
		if err != nil {
			return nil, err
		}
	}

	p := filepath.Join(dir, "limits.tmp")
	defer os.Remove(p)
	// Writing a new file here is several times faster right after another file was removed
	// (its page-cache pages are reused at once) than on memory the guest has not used in the
	// last seconds; both are shown.
	for i, what := range []string{
		"write a new 1 GiB file (page cache, no fsync)",
		"write a new 1 GiB file right after removing the first (page cache, no fsync)",
		"write a new 1 GiB file and fsync it (the disk)",
	} {
		os.Remove(p)
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		mbs := speed(limitFile, func() {
			for off := 0; off < limitFile && err == nil; off += len(random) {
				_, err = f.Write(random)
			}
			if i == 2 && err == nil {
				err = f.Sync()
			}
		})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		out = append(out, limit{what, mbs})
	}
	var rerr error
	out = append(out, limit{"read that file back (page cache)", speed(limitFile, func() {
		f, err := os.Open(p)
		if err != nil {
			rerr = err
			return
		}
		defer f.Close()
		for {
			n, err := f.Read(random)
			if n == 0 || err != nil {
				return
			}
		}
	})})
	return out, rerr
}
