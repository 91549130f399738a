package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/progress"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/remote"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push the images of bundles or of a location to a live registry (Harbor, Distribution, ...)",
		ArgsUsage: "BUNDLE [PATCH...]|LOCATION docker://HOST[:PORT][/PREFIX]",
		Description: `Pushes every image (or only those of the --images lists) of the bundles, applied in order (a
base and its patches), or of one location (registry:PATH, dir:PATH, oci:PATH, docker://...),
to the registry at HOST, under PREFIX if given: repo kubesphere/ks-apiserver goes to
HOST/PREFIX/kubesphere/ks-apiserver.

Only the blobs the registry lacks are sent (it is asked first); a blob this run already
pushed to another repository is mounted there instead; manifests go after their blobs, an
index after its children, tags last; manifests are sent byte for byte, so every digest stays,
and each is asked for again (HEAD) and checked before a tag names it. A blob or manifest that
several images share goes once per repository, and the others wait until it is complete: an
index is put only once every manifest it names is there.
Several images go at once, and --jobs blobs of each. Retries with backoff on 429, 5xx and
dropped connections; a push that failed, run again, skips what is there.

Bundles are read in place, as bale serve reads them: nothing is unpacked or staged on disk.
Each blob is decompressed from the frames that hold it and checked against its digest as it
is sent; a blob that does not match fails its image before its manifest or tag is put, and
the push exits non-zero. Signed bundles (--key, --keyless-*) are checked before anything is
sent.

Credentials and TLS as in skopeo: --dest-creds USER:PASS, --dest-authfile FILE (default
~/.docker/config.json, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json),
--dest-tls-verify=false, --dest-cert-dir DIR; --src-* for a docker:// source.

Example (the site side of an installer):
   bale push release-1.0.tar.zst patch-1.1.tar.zst docker://harbor.site:443/library

` + exitCodesHelp,
		Flags: append(append([]cli.Flag{
			&cli.StringSliceFlag{Name: "images", Aliases: []string{"i"}, Usage: "push only the images listed in `FILE|DIR` (repeatable; format as in bale pack)"},
			&cli.StringSliceFlag{Name: "platform", Usage: "keep only `OS/ARCH[/VARIANT]` of multi-arch images: once, the tag points at that platform's manifest; several times, the index is kept byte for byte (same digest) with only those platforms' images (a sparse index)"},
			&cli.StringFlag{Name: "stage", Hidden: true, Usage: "no longer used: bundles are pushed in place"},
			jobsFlag,
			quietFlag,
			imageKeyFlag,
			imageIdentityFlag,
			imageIdentityRegexpFlag,
			imageIssuerFlag,
			imageIssuerRegexpFlag,
		}, append(referrerFlags(), append(remoteFlags("dest"), trustFlags()...)...)...), remoteFlags("src")...),
		Action: func(cx *cli.Context) error {
			if cx.NArg() < 2 {
				return usagef("push takes BUNDLE [PATCH...]|LOCATION docker://HOST[/PREFIX] (see bale push --help)")
			}
			args := cx.Args().Slice()
			if err := checkArgs(cx, len(args), "BUNDLE [PATCH...]|LOCATION docker://HOST[/PREFIX]"); err != nil {
				return err
			}
			srcArgs, dstArg := args[:len(args)-1], args[len(args)-1]
			if !remote.Is(dstArg) {
				return usagef("push writes to a live registry, docker://HOST[:PORT][/PREFIX], not %q (bale copy and bale unpack write local layouts)", dstArg)
			}
			dst, err := openRemote(cx, location{Kind: kindDocker, Path: dstArg}, "dest")
			if err != nil {
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
			var bundles []string
			var src layout.Source
			for _, a := range srcArgs {
				loc, err := parseLocation(a, true)
				if err != nil {
					return err
				}
				switch {
				case loc.Kind == kindBundle:
					bundles = append(bundles, loc.Path)
				case len(srcArgs) > 1:
					return usagef("%s is not a bundle: push takes several bundles, or one location", a)
				default:
					if err := notBundleTrust(cx, loc); err != nil {
						return err
					}
					if src, err = openSourceFlags(cx, loc); err != nil {
						return err
					}
				}
			}
			if cx.IsSet("stage") {
				fmt.Fprintf(cx.App.ErrWriter, "note: --stage is no longer used: bale push reads bundles in place\n")
			}
			if src == nil {
				// Each bundle's own signatures before anything is read; then, read in place
				// (a base and its patches as one source), its images' signatures below.
				if err := checkBundleTrust(cx, cx.App.ErrWriter, bundles); err != nil {
					return err
				}
				s, err := archive.OpenSource(cx.Context, bundles)
				if err != nil {
					return err
				}
				defer s.Close()
				src = s
			}
			start := time.Now()
			refs, err := expandImages(sel, src)
			if err != nil {
				return err
			}
			// Refused: nothing is pushed.
			if err := checkImageSignatures(cx, src, refs); err != nil {
				return err
			}
			t := tracker(cx, "push")
			copyOpt := copyProgress(t, platform)
			copyOpt.Referrers = refOpt
			n, err := layout.CopyWith(cx.Context, progress.Source(src, t), dst, refs, copyOpt)
			t.Finish(err == nil)
			if err != nil {
				return err
			}
			st := dst.Stats()
			fmt.Fprintf(cx.App.ErrWriter, "pushed %d images to %s in %.1fs: %d blobs uploaded (%s), %d mounted, %d already there\n",
				n, dst, time.Since(start).Seconds(), st.Uploaded, units.Bytes(st.Bytes), st.Mounted, st.Existing)
			return nil
		},
	}
}
