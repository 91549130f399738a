package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/internal/progress"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/remote"
)

func copyCommand() *cli.Command {
	return &cli.Command{
		Name:      "copy",
		Aliases:   []string{"cp"},
		Usage:     "copy images between registry storage, skopeo dir trees, OCI layouts (by hard links), live registries, runtimes' image archives and bundles",
		ArgsUsage: "SRC [PATCH...] DST",
		Description: `Copies every image of SRC (or only those of the --images lists) into DST; each is any of
registry:PATH, dir:PATH, oci:PATH (an existing SRC may be a bare PATH), a live registry
docker://HOST[:PORT][/PREFIX] (Registry HTTP API v2: Harbor, Distribution, Quay, ...), or an
image archive of the container runtimes, oci-archive:FILE or docker-archive:FILE. Files are
hard-linked wherever SRC and DST share a file system, copied otherwise (bale says so once). DST
may already hold images: copy merges and never removes; a tag that exists is re-pointed.

SRC may be a bundle, followed by its patches in order: the patched release is read straight
from the files (no unpacking), every blob verified, so that one command exports a subset of a
release (--images, --platform) for a site without a registry.

An archive DST is written whole, under a temporary name renamed once complete (FILE.tar.gz
and FILE.tar.zst compress it): oci-archive:FILE for ctr images import, k3s and RKE2's images
directory and skopeo (digests kept, multi-arch images whole); docker-archive:FILE for docker
load, podman load and ctr (one platform of each image, --platform or the host's; image ids
kept, manifest digests not, referrers left out and named). Names are HOST/REPO:TAG as runtimes
ask for them: --name-prefix HOST[/PATH], or by default as Docker normalizes them
(docker.io/library/busybox:1.36.1).

From a live registry, every blob is pulled once and verified, --jobs at a time; into one, only
the blobs it lacks are pushed (blobs already pushed to another repository are mounted),
manifests after their blobs, an index after its children, tags last; a failed copy run again
skips what is done. Credentials and TLS as in skopeo: --src-creds/--dest-creds USER:PASS,
--src-authfile/--dest-authfile, --src-tls-verify=false, --src-cert-dir (and dest-). Without
--images, a live source lists its images with /v2/_catalog.

What is checked: from a live registry, a bundle, an archive or s3://, every blob is verified
(size and sha256) as it is read, before anything names it. From registry:, dir: and oci:,
blobs are hard-linked unread (fast, not re-hashed; a blob copied across file systems is
verified): --verify hashes every blob first, and refuses the copy (exit 4, nothing written)
when one does not match, naming it and the images that need it; a referrer's blob that does
not match is refused before its links or tag. Blobs DST already holds are not read again
(bale verify DST hashes them).

DST files:DIR writes every file artifact (files/<name>:<tag>, as bale pack --release or oras
push writes them) as DIR/<name>/<file>, hard-linked from registry:, dir: or oci: sources on
one file system, directories extracted, bale's mode kept; DST charts:DIR writes every Helm
chart as DIR/<name>-<version>.tgz with an index.yaml (helm repo add takes DIR from any static
web server). Other images are skipped and counted; outputs appear once the copy succeeded.

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
   bale copy --images edge.list release-1.0.tar.zst patch-1.1.tar.zst oci-archive:/var/lib/rancher/k3s/agent/images/release.tar
   bale copy --platform linux/arm64 release.tar.zst docker-archive:images-arm64.tar

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "images", Aliases: []string{"i"}, Usage: "copy only the images listed in `FILE|DIR` (repeatable; format as in bale pack)"},
			&cli.StringSliceFlag{Name: "platform", Usage: "keep only `OS/ARCH[/VARIANT]` of multi-arch images: once, the tag points at that platform's manifest; several times, the index is kept byte for byte (same digest) with only those platforms' images (a sparse index)"},
			namePrefixFlag,
			&cli.BoolFlag{Name: "verify", Usage: "hash every blob of registry:, dir: and oci: sources before linking or copying it; a mismatch refuses the copy (exit 4) before anything is written"},
			jobsFlag,
			quietFlag,
			imageKeyFlag,
			imageIdentityFlag,
			imageIdentityRegexpFlag,
			imageIssuerFlag,
			imageIssuerRegexpFlag,
		}, append(referrerFlags(), append(remoteFlags("src"), append(remoteFlags("dest"), trustFlags()...)...)...)...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, max(cx.NArg(), 2), "SRC [PATCH...] DST"); err != nil {
				return err
			}
			srcArgs := cx.Args().Slice()[:cx.NArg()-1]
			srcLoc, err := copySource(srcArgs)
			if err != nil {
				return err
			}
			dstArg := cx.Args().Get(cx.NArg() - 1)
			var dstLoc location
			if remote.Is(dstArg) {
				dstLoc = location{Kind: kindDocker, Path: dstArg}
			} else if dstLoc, err = parseTarget(dstArg); err != nil {
				return err
			}
			var inputs []input
			for _, a := range srcArgs {
				if p := localPath(a); p != "" {
					inputs = append(inputs, input{"SRC", p})
				}
			}
			for _, l := range cx.StringSlice("images") {
				inputs = append(inputs, input{"--images", l})
			}
			if err := checkArchiveOutputs([]string{dstArg}, inputs); err != nil {
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
			var src layout.Source
			if srcLoc.Kind == kindBundle {
				// Each bundle's own signatures (a base and its patches), before anything is read.
				if err := checkBundleTrust(cx, cx.App.ErrWriter, srcArgs); err != nil {
					return err
				}
				src, err = archive.OpenSource(cx.Context, srcArgs)
			} else if err = notBundleTrust(cx, srcLoc); err == nil {
				src, err = openSourceFlags(cx, srcLoc)
			}
			if err != nil {
				return err
			}
			refs, err := expandImages(sel, src)
			if err != nil {
				return err
			}
			if err := checkImageSignatures(cx, src, refs); err != nil {
				return err
			}
			var dst layout.Sink
			if dstLoc.Kind == kindDocker && cx.String("name-prefix") != "" {
				return usagef("--name-prefix names the images of an oci-archive: or docker-archive: destination, not of %s", dstLoc)
			}
			if dstLoc.Kind == kindDocker {
				dst, err = openRemote(cx, dstLoc, "dest")
			} else {
				dst, err = openDestinationFlags(cx, dstLoc, platform)
			}
			if err != nil {
				return err
			}
			defer abortArchives(&[]layout.Sink{dst})
			start := time.Now()
			asrc, audit := layout.Audit(src, cx.Bool("verify"))
			if err := verifyFirst(cx, src, audit, refs, platform); err != nil {
				return err
			}
			t := tracker(cx, "copy")
			copyOpt := copyProgress(t, platform)
			copyOpt.Referrers = refOpt
			n, err := layout.CopyWith(cx.Context, progress.Source(asrc, t), dst, refs, copyOpt)
			t.Finish(err == nil)
			if err = finishArchives(cx, []layout.Sink{dst}, err); err != nil {
				return err
			}
			fmt.Fprintf(cx.App.ErrWriter, "copied %d images from %s to %s%s in %.2fs%s\n", n, srcLoc, dstLoc, namesNote(dst, n), time.Since(start).Seconds(), checkedSummary(audit))
			artifactNotes(cx.App.ErrWriter, []layout.Sink{dst})
			if c := copiedFiles(dst); c > 0 {
				fmt.Fprintf(cx.App.ErrWriter, "note: %s and %s are on different file systems: %d files were copied, not hard-linked\n", srcLoc, dstLoc, c)
			}
			return nil
		},
	}
}

// verifyFirst, with --verify and a source whose blobs are files (hard-linked unread), hashes
// every blob of the images before anything is written; other sources are verified as the
// copy reads them.
func verifyFirst(cx *cli.Context, src layout.Source, audit *layout.BlobAudit, refs []layout.Ref, platform []layout.Platform) error {
	if _, files := src.(layout.FileSource); !files || !cx.Bool("verify") {
		return nil
	}
	images, err := layout.ResolveImages(src, refs, platform)
	if err != nil {
		return err
	}
	if err := audit.VerifyImages(cx.Context, src, images, par.Workers()); err != nil {
		return fmt.Errorf("copy --verify: nothing was copied: %w", err)
	}
	return nil
}

// checkedSummary says what the copy checked of the blobs: hashed by --verify, hard-linked
// unread, or verified as they were read.
func checkedSummary(a *layout.BlobAudit) string {
	hashed, linked, read := a.Counts()
	var parts []string
	if hashed > 0 {
		parts = append(parts, fmt.Sprintf("%d blobs verified", hashed))
	}
	if read > 0 {
		parts = append(parts, fmt.Sprintf("%d blobs verified as they were read", read))
	}
	if linked > 0 {
		parts = append(parts, fmt.Sprintf("%d blobs hard-linked, not re-hashed: use --verify to hash them", linked))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// copySource parses the sources of copy: one location, or a bundle and its patches.
func copySource(args []string) (location, error) {
	var first location
	for i, a := range args {
		loc, err := parseLocation(a, true)
		if err != nil {
			return loc, err
		}
		switch {
		case loc.Kind == kindCatalog:
			return loc, usagef("%s is a catalog file, which holds no images: copy from a bundle or a layout", a)
		case len(args) > 1 && loc.Kind != kindBundle:
			return loc, usagef("copy takes several sources only as a bundle and its patches; %s is not a bundle", a)
		}
		if i == 0 {
			first = loc
		}
	}
	return first, nil
}
