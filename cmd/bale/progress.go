package main

import (
	"os"

	"github.com/urfave/cli/v2"

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
func copyProgress(t *progress.Tracker, platform *layout.Platform) layout.CopyOptions {
	return layout.CopyOptions{
		Platform: platform,
		Begin:    func(images int, bytes int64) { t.SetTotal(images, bytes) },
		Image: func(ref layout.Ref, img *layout.Image) func(error) {
			return t.Start(ref.String(), img.Size()).Done
		},
	}
}

// blobProgress feeds t from a bundle's blobs (pack, unpack).
func blobProgress(t *progress.Tracker) (begin func(int, int64), step func(int64)) {
	return func(blobs int, bytes int64) { t.SetTotal(blobs, bytes) },
		func(n int64) { t.Add(n); t.Step() }
}
