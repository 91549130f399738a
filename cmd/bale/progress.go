package main

import (
	"os"
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
func blobProgress(t *progress.Tracker) (begin func([]*catalog.Catalog), step func(digest.Digest, int64)) {
	var mu sync.Mutex
	// Images by index in order (a release has tens of thousands: no name string per blob).
	users := map[digest.Digest][]int32{} // blob -> images that need it
	var (
		order []string
		left  []int32 // image -> blobs still to come
		sizes []int64
	)
	begin = func(cats []*catalog.Catalog) {
		var blobs int
		var bytes int64
		index := map[string]int32{}
		for _, c := range cats {
			blobs, bytes = blobs+len(c.CarriedBlobs()), bytes+c.CarriedBytes()
			for _, e := range c.Entries() {
				name := e.Ref().String()
				i, ok := index[name]
				if !ok {
					i = int32(len(left))
					index[name] = i
					left, sizes = append(left, 0), append(sizes, 0)
				}
				seen := map[digest.Digest]bool{}
				for _, md := range c.ManifestClosure(e.Digest) {
					ds := []digest.Digest{md}
					if m := c.Manifests[md]; m != nil {
						ds = append(ds, m.Blobs...)
					}
					for _, d := range ds {
						if !seen[d] && c.Carried(d) {
							seen[d] = true
							users[d] = append(users[d], i)
							left[i]++
							sizes[i] += c.Blobs[d].Size
						}
					}
				}
				order = append(order, name)
			}
		}
		t.SetTotal(blobs, bytes)
		t.Images(len(order))
		for _, name := range order { // images with no blob of their own in these bundles
			if left[index[name]] == 0 {
				t.ImageDone(name, 0)
			}
		}
		names := make([]string, len(left))
		for name, i := range index {
			names[i] = name
		}
		order = names // from here, an image's name by its index
	}
	step = func(d digest.Digest, size int64) {
		t.Add(size)
		t.Step()
		mu.Lock()
		var done []int32
		for _, i := range users[d] {
			if left[i]--; left[i] == 0 {
				done = append(done, i)
			}
		}
		delete(users, d)
		mu.Unlock()
		for _, i := range done {
			t.ImageDone(order[i], sizes[i])
		}
	}
	return begin, step
}
