package main

import (
	"fmt"
	"github.com/bale-project/bale/internal/progress"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/remote"
)

func copyCommand() *cli.Command {
	return &cli.Command{
		Name:      "copy",
		Aliases:   []string{"cp"},
		Usage:     "copy images between registry storage, skopeo dir trees, OCI layouts (by hard links) and live registries",
		ArgsUsage: "SRC DST",
		Description: `Copies every image of SRC (or only those of the --images lists) into DST; each is any of
registry:PATH, dir:PATH, oci:PATH (an existing SRC may be a bare PATH), or a live registry
docker://HOST[:PORT][/PREFIX] (Registry HTTP API v2: Harbor, Distribution, Quay, ...). Files are
hard-linked wherever SRC and DST share a file system, copied otherwise (bale says so once). DST
may already hold images: copy merges and never removes; a tag that exists is re-pointed.

From a live registry, every blob is pulled once and verified, --jobs at a time; into one, only
the blobs it lacks are pushed (blobs already pushed to another repository are mounted),
manifests after their blobs, an index after its children, tags last; a failed copy run again
skips what is done. Credentials and TLS as in skopeo: --src-creds/--dest-creds USER:PASS,
--src-authfile/--dest-authfile, --src-tls-verify=false, --src-cert-dir (and dest-). Without
--images, a live source lists its images with /v2/_catalog.

Every image is resolved and read before anything is written: all the missing ones are reported
together, and then nothing is written. Multi-arch images are kept whole unless --platform is
given. Manifests are stored byte for byte in every layout (Docker schema2 ones in an OCI
layout too), so digests never change.

Examples (the first three are what select_registry_images.sh, skopeo_dir_to_registry.sh and
registry_to_skopeo_dir.sh do today; the last two pull from and push to live registries):
   bale copy --images images-list.txt registry:/srv/pool registry:/srv/installer/registry
   bale copy dir:./skopeo-images registry:./registry
   bale copy registry:./registry dir:./skopeo-images
   bale copy --images images.list --src-creds ci:TOKEN docker://registry.ci.example:5000 registry:/srv/pool
   bale copy --dest-cert-dir /etc/containers/certs.d/harbor.site registry:/srv/pool docker://harbor.site/library

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "images", Aliases: []string{"i"}, Usage: "copy only the images listed in `FILE|DIR` (repeatable; format as in bale pack)"},
			&cli.StringSliceFlag{Name: "platform", Usage: "keep only `OS/ARCH[/VARIANT]` of multi-arch images: once, the tag points at that platform's manifest; several times, the index is kept byte for byte (same digest) with only those platforms' images (a sparse index)"},
			jobsFlag,
			quietFlag,
		}, append(referrerFlags(), append(remoteFlags("src"), remoteFlags("dest")...)...)...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 2, "SRC DST"); err != nil {
				return err
			}
			srcLoc, err := parseLocation(cx.Args().Get(0), false)
			if err != nil {
				return err
			}
			dstArg := cx.Args().Get(1)
			var dstLoc location
			if remote.Is(dstArg) {
				dstLoc = location{Kind: kindDocker, Path: dstArg}
			} else if dstLoc, err = parseTarget(dstArg); err != nil {
				return err
			}
			platform, err := platformFlag(cx)
			if err != nil {
				return err
			}
			refOpt, err := referrerOptions(cx)
			if err != nil {
				return err
			}
			sel, err := imagesFlag(cx)
			if err != nil {
				return err
			}
			src, err := openSourceFlags(cx, srcLoc)
			if err != nil {
				return err
			}
			refs, err := expandImages(sel, src)
			if err != nil {
				return err
			}
			var dst layout.Sink
			if dstLoc.Kind == kindDocker {
				dst, err = openRemote(cx, dstLoc, "dest")
			} else {
				dst, err = openDestination(dstLoc)
			}
			if err != nil {
				return err
			}
			start := time.Now()
			t := tracker(cx, "copy")
			copyOpt := copyProgress(t, platform)
			copyOpt.Referrers = refOpt
			n, err := layout.CopyWith(cx.Context, progress.Source(src, t), dst, refs, copyOpt)
			t.Finish(err == nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(cx.App.ErrWriter, "copied %d images from %s to %s in %.2fs\n", n, srcLoc, dstLoc, time.Since(start).Seconds())
			if c := copiedFiles(dst); c > 0 {
				fmt.Fprintf(cx.App.ErrWriter, "note: %s and %s are on different file systems: %d files were copied, not hard-linked\n", srcLoc, dstLoc, c)
			}
			return nil
		},
	}
}
