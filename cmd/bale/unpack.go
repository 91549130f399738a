package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/ocidir"
	"github.com/bale-project/bale/layout/registry"
	"github.com/bale-project/bale/layout/remote"
	"github.com/bale-project/bale/layout/s3store"
)

// stagingDir is the registry store unpack uses inside the first target when no registry:
// target is given and the targets are not a dir: tree alone (which archive.UnpackTree writes
// with no stage); it is removed after a successful unpack and reused by a re-run after a
// failed one.
const stagingDir = ".bale-staging"

func unpackCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpack",
		Usage:     "verify bundles (a base and its patches) and unpack them into a registry storage dir and/or a skopeo dir tree",
		ArgsUsage: "BUNDLE [PATCH...]",
		Description: `Unpacks BUNDLE into each --to location:
   --to registry:PATH  registry storage root, served by registry:2 / docker-registry with
                       rootdirectory PATH; merged with what PATH already holds (other
                       repositories and tags are left alone)
   --to dir:PATH       a tree of skopeo dir: images, PATH/<repo>:<tag>/, ready for
                       skopeo sync --src dir --dest docker PATH HOST/PREFIX (use --scoped to
                       keep nested repository names)
   --to oci:PATH       an OCI image layout holding every image, tagged "<repo>:<tag>"
                       (skopeo copy oci:PATH:<repo>:<tag> ... reads it)
   --to oci-archive:FILE, --to docker-archive:FILE
                       an image archive for a site without a registry (ctr images import,
                       k3s/RKE2's images directory, podman load, docker load), written whole
                       and renamed into place; see bale copy --help, which exports straight
                       from the bundles without the registry storage unpack stages here
   --to s3://BUCKET[/ROOTDIRECTORY]
                       registry storage in a bucket, served by registries running with
                       storage.s3 on it (Distribution, docker-registry; for Harbor use
                       bale push): blobs uploaded straight to their keys, verified while
                       they stream (--jobs at a time, large ones in parts), a blob already
                       there with its size not uploaded again, links after blobs, tags last.
                       One unpack at a time holds the bucket's lock object ROOT/.bale.lock;
                       a re-run after a kill aborts the uploads the killed run left.
   --to files:DIR      every file artifact (files/<name>:<tag>, as bale pack --release or
                       oras push writes them) as DIR/<name>/<file>: a hard link to its blob
                       where it can be, a directory extracted, bale's mode kept; other images
                       are skipped and counted
   --to charts:DIR     every Helm chart (helm push's media types) as DIR/<name>-<version>.tgz
                       (its .prov beside) and an index.yaml, a classic Helm repository for
                       helm repo add from any static web server
   (none, with --registry-config FILE: where that config.yml's storage section says)
Both at once is the common case: the dir tree is hard-linked out of the registry storage, so
each blob is stored once. With dir: alone each unique blob is still stored once and linked into
every image that uses it. Across file systems bale copies instead, and says so.

Every blob is verified against its digest and size while it streams, and written under a
temporary name then renamed. Blobs come first, repository links next, tags last: an error at
any point leaves no tag pointing at missing content, and re-running the same command
completes the work (blobs already present and valid are kept).

Patches: 'bale unpack --to ... BASE.tar.zst PATCH1.tar.zst PATCH2.tar.zst' applies them in
order; 'bale unpack --to registry:X PATCH.tar.zst' applies a patch onto a target that already
holds its base (with dir: alone, the blobs are taken from the images already in the tree).
Before writing anything, unpack checks that every blob each patch expects is in the target or
carried by an earlier bundle of the command line; if not it lists the missing digests, the
images that need them and the base bundle that carries them, and writes nothing. A patch made
with --remove-absent-tags removes the tags it lists, where they still point at the base's
manifest.

Signed bundles (bale sign): every bundle's signatures are checked first, from its catalog;
with --key or --certificate-identity every bundle of the command line (a base and each patch)
must be signed by one of the signers given, and a signature found that does not verify
always refuses it (exit 6, nothing written).

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "to", Aliases: []string{"t"}, Usage: "unpack into `LOCATION` (registry:PATH, dir:PATH, oci:PATH, oci-archive:FILE, docker-archive:FILE, files:DIR or charts:DIR; repeatable)"},
			namePrefixFlag,
			quietFlag,
			imageKeyFlag,
			imageIdentityFlag,
			imageIdentityRegexpFlag,
			imageIssuerFlag,
			imageIssuerRegexpFlag,
			&cli.BoolFlag{Name: "no-sync", Usage: "do not flush to disk (syncfs) before writing links and at the end: faster, but a power loss may leave tags whose data is not on disk"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: s3store.DefaultJobs, Usage: "upload `N` blobs (and parts of blobs) at once into an s3:// target (at least 1)", Action: atLeastOne},
		}, trustFlags()...),
		Action: func(cx *cli.Context) error {
			if cx.NArg() == 0 {
				return usagef("unpack takes BUNDLE [PATCH...] (see bale unpack --help)")
			}
			if err := checkArgs(cx, cx.NArg(), "BUNDLE [PATCH...]"); err != nil {
				return err
			}
			tos := cx.StringSlice("to")
			if loc, ok := registryConfigLocation(cx); ok && len(tos) == 0 {
				tos = []string{loc.String()} // where the registry's config.yml keeps its storage
			}
			if len(tos) == 0 {
				return usagef("unpack needs at least one --to registry:PATH, s3://BUCKET[/ROOT], dir:PATH or oci:PATH (see bale unpack --help)")
			}
			bundles := cx.Args().Slice()
			var inputs []input
			for _, b := range bundles {
				inputs = append(inputs, input{"BUNDLE", b})
			}
			if err := checkArchiveOutputs(tos, inputs); err != nil {
				return err
			}
			// Each bundle's own signatures, then its images': refused, nothing is written.
			if err := checkBundleTrust(cx, cx.App.ErrWriter, bundles); err != nil {
				return err
			}
			if err := checkBundleSignatures(cx, bundles); err != nil {
				return err
			}
			var (
				store   archive.Target
				regLoc  location
				others  []destination
				sinks   []layout.Sink
				targets []string
			)
			defer abortArchives(&sinks)
			for _, t := range tos {
				loc, err := parseTarget(t)
				if err != nil {
					return err
				}
				targets = append(targets, loc.String())
				switch loc.Kind {
				case kindRegistry, kindS3:
					if store != nil {
						return usagef("one registry: or s3:// target at most (got %s and %s)", regLoc, loc)
					}
					if loc.Kind == kindS3 {
						st, err := openS3(cx, loc)
						if err != nil {
							return err
						}
						store = st
					} else {
						store = registry.New(loc.Path)
					}
					regLoc = loc
				default:
					d, err := openDestinationFlags(cx, loc, nil)
					if err != nil {
						return err
					}
					others = append(others, d)
					sinks = append(sinks, d)
				}
			}
			opt := archive.UnpackOptions{Also: sinks, NoSync: cx.Bool("no-sync")}
			staging := ""
			// dir: alone is written straight from the bundles (archive.UnpackTree), with no
			// registry storage staged in it.
			var direct *dirtree.Tree
			if store == nil && len(others) == 1 {
				direct, _ = others[0].(*dirtree.Tree)
			}
			if direct != nil {
				if src := existingSource(direct); src != nil {
					opt.From = append(opt.From, src)
				}
			} else if store == nil {
				staging = filepath.Join(others[0].Root(), stagingDir)
				store = registry.New(staging)
				// A patch's blobs from its base are taken from the images already there.
				if src := existingSource(others[0]); src != nil {
					opt.From = append(opt.From, src)
				}
			}
			start := time.Now()
			t := tracker(cx, "unpack")
			begin, step := blobProgress(t)
			opt.Begin, opt.Progress = begin, func(d layout.Descriptor, _ bool) { step(d.Digest, d.Size) }
			var (
				res *archive.UnpackResult
				err error
			)
			if direct != nil {
				res, err = archive.UnpackTree(cx.Context, bundles, direct, opt)
			} else {
				res, err = archive.UnpackFiles(cx.Context, bundles, store, opt)
			}
			t.Finish(err == nil)
			err = finishArchives(cx, sinks, err)
			if err != nil {
				if direct != nil && keptStore(direct) != "" {
					return fmt.Errorf("%w\n(verified blobs are kept in %s; re-run to resume, or delete it)", err, keptStore(direct))
				}
				if staging != "" && stagedBeside(others[0]) {
					// The stage is beside an archive file, not in a target: nothing to resume into.
					return errors.Join(err, os.RemoveAll(staging))
				}
				if staging != "" {
					return fmt.Errorf("%w\n(verified blobs are kept in %s; re-run to resume, or delete it)", err, staging)
				}
				return err
			}
			if staging != "" {
				if err := os.RemoveAll(staging); err != nil {
					return err
				}
			}
			removed := ""
			if len(res.Removed) > 0 {
				removed = fmt.Sprintf(", %d tag(s) removed", len(res.Removed))
			}
			fmt.Fprintf(cx.App.ErrWriter, "unpacked %d images from %s into %s in %.1fs: %d blobs written (%s), %d already present%s\n",
				res.Images, strings.Join(bundles, " + "), strings.Join(targets, ", "), time.Since(start).Seconds(),
				res.BlobsWritten, units.Bytes(res.BytesWritten), res.BlobsReused, removed)
			for _, r := range res.Removed {
				if !cx.Bool("quiet") { // -q: counted in the line above
					fmt.Fprintf(cx.App.ErrWriter, "removed tag %s\n", r)
				}
			}
			for _, r := range res.KeptTags {
				fmt.Fprintf(cx.App.ErrWriter, "note: kept tag %s: the patch removes it, but here it points at another manifest than the base's\n", r)
			}
			artifactNotes(cx.App.ErrWriter, sinks)
			for _, d := range others {
				if n := copiedFiles(d); n > 0 {
					fmt.Fprintf(cx.App.ErrWriter, "note: %s is on another file system than the registry storage: %d files were copied, not hard-linked\n", d.Root(), n)
				}
			}
			return nil
		},
	}
}

// parseTarget parses an unpack target: registry:PATH or dir:PATH, or an existing PATH whose
// kind can be detected.
func parseTarget(s string) (location, error) {
	if remote.Is(s) {
		return location{}, usagef("%s is a live registry: push a bundle there with bale push BUNDLE %s", s, s)
	}
	if strings.HasPrefix(s, s3store.Scheme) {
		return parseLocation(s, false)
	}
	for _, k := range append([]string{kindRegistry, kindDir, kindOCI, kindOCIArchive, kindDockerArchive}, artifactKinds...) {
		if strings.HasPrefix(s, k+":") {
			return parseLocation(s, false)
		}
	}
	if _, err := os.Stat(s); err != nil {
		return location{}, usagef("%s does not exist yet: say registry:%s, dir:%s or oci:%s", s, s, s, s)
	}
	return parseLocation(s, false)
}

// existingSource opens what a dir: or oci: destination already holds, or returns nil.
func existingSource(d destination) layout.FileSource {
	switch d.(type) {
	case *dirtree.Tree:
		if t, _ := dirtree.Open(d.Root()); t != nil {
			return t
		}
	case *ocidir.Layout:
		if l, err := ocidir.Open(d.Root()); err == nil {
			return l
		}
	}
	return nil
}

// stagedBeside reports whether d is an archive file, so that the registry store unpack stages
// in is beside the file, not in a target that a re-run resumes into.
func stagedBeside(d destination) bool {
	_, ok := d.(archiveDestination)
	return ok
}

// keptStore is the content store a failed unpack left in tree (a re-run resumes from it), or
// "" if there is none.
func keptStore(tree *dirtree.Tree) string {
	dir := dirtree.NewStore(tree.Root()).Dir()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}
