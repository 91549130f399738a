package main

import (
	"os"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/progress"
	"github.com/bale-project/bale/layout"
)

// quietFlag turns progress off.
var quietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "show no progress (default: bars on a terminal, one line per image otherwise)"}

// tracker starts the progress display of one phase on standard error.
func tracker(cx *cli.Context, what string) *progress.Tracker {
	mode := progress.Plain
	if f, ok := cx.App.ErrWriter.(*os.File); ok {
		mode = progress.ModeFor(cx.Bool("quiet"), f)
	} else if cx.Bool("quiet") {
		mode = progress.Quiet
	}
	return progress.New(mode, cx.App.ErrWriter, what)
}

// copyProgress are the CopyOptions callbacks that feed t: its size, and a line per image.
func copyProgress(t *progress.Tracker, platforms []layout.Platform) layout.CopyOptions {
	return layout.CopyOptions{
		Platforms: platforms,
		Begin:     func(images int, bytes int64) { t.SetTotal(images, bytes) },
		Image: func(ref layout.Ref, img *layout.Image) func(error) {
			return t.Start(ref.String(), img.Size()).Done
		},
	}
}

// blobProgress feeds t from the blobs of bundles (pack, unpack): their bytes, and, off a
// terminal, a line for each image once every blob it needs has gone by. begin takes the
// catalogs, step each blob.
//
// A release has tens of thousands of images and five times as many blobs, so images and
// blobs are numbered and the images that need each blob are kept in one flat table (#19):
// no name string or slice per blob, and a single map, for the collector to walk.
func blobProgress(t *progress.Tracker) (begin func([]*catalog.Catalog), step func(digest.Digest, int64)) {
	var mu sync.Mutex
	var (
		blobIndex = map[digest.Digest]int32{} // blob -> its number
		first     []int32                     // blob number -> where its images start in users
		users     []int32                     // the images of each blob, blob after blob
		gone      []bool                      // blob number -> already stepped
		order     []string                    // image number -> name
		left      []int32                     // image number -> blobs still to come
		sizes     []int64                     // image number -> bytes of its blobs
	)
	begin = func(cats []*catalog.Catalog) {
		var blobs int
		var bytes int64
		index := map[string]int32{}
		var pairBlob, pairImage []int32 // (blob, image) in the order found
		var blobSize []int64            // blob number -> its size
		for _, c := range cats {
			blobs, bytes = blobs+c.CarriedCount(), bytes+c.CarriedBytes()
			for _, e := range c.Entries() {
				name := e.Ref().String()
				i, ok := index[name]
				if !ok {
					i = int32(len(left))
					index[name] = i
					left, sizes, order = append(left, 0), append(sizes, 0), append(order, name)
				}
				for _, md := range c.ManifestClosure(e.Digest) {
					ds := []digest.Digest{md}
					if m := c.Manifests[md]; m != nil {
						ds = append(ds, m.Blobs...)
					}
					for _, d := range ds {
						b := c.Blobs[d]
						if b == nil || !b.Carried() {
							continue
						}
						n, ok := blobIndex[d]
						if !ok {
							n = int32(len(blobIndex))
							blobIndex[d] = n
							blobSize = append(blobSize, b.Size)
						}
						pairBlob, pairImage = append(pairBlob, n), append(pairImage, i)
					}
				}
			}
		}
		// A counting sort of the pairs by blob: users[first[n]:first[n+1]] are blob n's images.
		first = make([]int32, len(blobIndex)+1)
		for _, n := range pairBlob {
			first[n+1]++
		}
		for n := 1; n < len(first); n++ {
			first[n] += first[n-1]
		}
		users = make([]int32, len(pairBlob))
		next := slices.Clone(first[:len(blobIndex)])
		for k, n := range pairBlob {
			users[next[n]] = pairImage[k]
			next[n]++
		}
		// An image needs each blob once, however often its manifests name it and however many
		// of the bundles record the image: each blob's images, sorted, without repeats.
		kept := int32(0)
		for n := range len(blobIndex) {
			seg := users[first[n]:first[n+1]]
			slices.Sort(seg)
			seg = slices.Compact(seg)
			for _, i := range seg {
				left[i]++
				sizes[i] += blobSize[n]
			}
			first[n] = kept
			kept += int32(copy(users[kept:], seg))
		}
		first[len(blobIndex)], users = kept, users[:kept]
		gone = make([]bool, len(blobIndex))
		t.SetTotal(blobs, bytes)
		t.Images(len(order))
		for i, name := range order { // images with no blob of their own in these bundles
			if left[i] == 0 {
				t.ImageDone(name, 0)
			}
		}
	}
	step = func(d digest.Digest, size int64) {
		t.Add(size)
		t.Step()
		mu.Lock()
		var done []int32
		if n, ok := blobIndex[d]; ok && !gone[n] {
			gone[n] = true
			for _, i := range users[first[n]:first[n+1]] {
				if left[i]--; left[i] == 0 {
					done = append(done, i)
				}
			}
		}
		mu.Unlock()
		for _, i := range done {
			t.ImageDone(order[i], sizes[i])
		}
	}
	return begin, step
}
