package main

import (
	"errors"
	"fmt"
	"github.com/bale-project/bale/internal/progress"
	"github.com/opencontainers/go-digest"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
)

func packCommand() *cli.Command {
	return &cli.Command{
		Name:      "pack",
		Usage:     "pack images from registry storage, a skopeo dir tree, an OCI layout or a live registry into one bundle (or a patch)",
		ArgsUsage: "SOURCE",
		Description: `Packs every tag of SOURCE (registry:PATH, dir:PATH, oci:PATH, a detected PATH, or a live registry
docker://HOST[:PORT][/PREFIX]), or only the images of the --images lists, into OUT: one
zstd-compressed tar that is also a registry storage root, with a catalog at its head. Every
blob is verified against its digest while it is read.

SOURCE may also be an image archive, oci-archive:FILE or docker-archive:FILE (a vendor's docker
save; .tar, .tar.gz or .tar.zst): its images are staged as registry storage beside OUT (removed
afterwards, and after a failure too), and a docker-archive's layers are stored as it holds
them, so that its image ids stay and the same archive always gives the same digests.

From a live registry the images are first pulled into OUT.bale-pull/ (registry storage beside
OUT; --stage DIR to put it elsewhere), each blob once, --jobs at a time, verified; that
directory is removed once the bundle is written and kept if anything fails, so that running
the same command again pulls only what is missing. Credentials and TLS as in skopeo:
--src-creds USER:PASS, --src-authfile FILE, --src-tls-verify=false, --src-cert-dir DIR.
Without --images, the registry's /v2/_catalog names the images.

Image lists hold one repo:tag or repo@sha256:<hex> a line; '#' starts a comment; blank lines
and duplicates are ignored; a leading registry host (docker.io/, quay.io/, host:5000/) is
stripped. A list may also be a skopeo sync YAML file (registry -> images -> tags or digests, an
empty list meaning every tag; images-by-tag-regex), told apart by its content. A directory
stands for all its *.list and *.txt files, and its *.yaml/*.yml files that are skopeo sync files.

--release FILE (-f) packs what a release file names too: its image lists act as --images (SOURCE
stays the source of the images); its Helm charts (a classic repository with a version or semver
range, oci://, a chart directory or .tgz) are written as helm push writes them, in
charts/<name>:<version>, staged as registry storage beside OUT (OUT.bale-release, removed
afterwards and after a failure); with images: true the images a chart uses (rendered with its
values, as 'bale images' finds them) are packed from SOURCE too. The images packed are those
the lists and charts name; when none names any, every tag of SOURCE. --src-* flags reach chart
repositories and registries. A repository that does not answer, a range nothing matches or a
missing path is named at once, and nothing is written.

Every image missing from SOURCE, or that bale cannot carry (a Docker schema1 manifest, sha512
content, ...), is reported, and then no output is written; with --keep-going the others are
packed, and those left out are named at the end (exit code 5).

Referrers travel with their images by default: for every manifest packed (a tag's target and
every manifest below an index), cosign's tags sha256-<hex>.sig/.att/.sbom, the OCI 1.1
referrers tag sha256-<hex>, and every manifest of the repository whose subject is that digest
(untagged revisions, as registries with the referrers API keep them; from a live registry, the
referrers API or, without it, the tag schema), and theirs in turn (a signature on an SBOM).
--no-referrers leaves them out; --referrers-type TYPE keeps only those artifact types.

With --base the bundle is a patch: it carries only the blobs the bases lack, and its catalog
lists every tag and manifest of the packed images, marks each blob as carried or expected from
a base, and records the bases' ids. A base is a bundle (only its catalog, at the head of the
file, is read), a catalog file written by 'bale catalog' at a site, or a registry:/dir:
location. Several --base mean their union, applied in order (a chain 1.0 -> 1.1 -> 1.2).
A patch sets the tags it holds and leaves every other tag of the site alone; with
--remove-absent-tags it also removes, on unpack, each tag the bases have and the packed images
do not (only where the site's tag still points at the base's manifest).

Multi-arch images are kept whole (index and every child, byte-exact) unless --platform is
given; then each tag points at that platform's manifest, with its original digest.

The same images packed twice give a byte-identical bundle: the creation time recorded is the
newest "created" of the image configs, unless --created or SOURCE_DATE_EPOCH says otherwise.

Examples:
   bale pack -o release.tar.zst registry:/srv/release-1.0
   bale pack --images images.list --platform linux/amd64 -o release-amd64.tar.zst dir:./images
   bale pack --images images.list -o release.tar.zst docker://registry.ci.example:5000/kubesphere
   bale pack --base release-1.0.tar.zst -o patch-1.1.tar.zst registry:/srv/release-1.1
   bale pack --sign-key cosign.key -o release.tar.zst registry:/srv/release-1.0   # COSIGN_PASSWORD

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the bundle to `FILE` (e.g. release.tar.zst)"},
			&cli.StringSliceFlag{Name: "images", Aliases: []string{"i"}, Usage: "pack only the images listed in `FILE|DIR` (repeatable)"},
			releaseFlag,
			&cli.StringSliceFlag{Name: "platform", Usage: "keep only `OS/ARCH[/VARIANT]` of multi-arch images: once, the tag points at that platform's manifest; several times, the index is kept byte for byte (same digest) with only those platforms' images (a sparse index)"},
			&cli.StringSliceFlag{Name: "base", Aliases: []string{"b"}, Usage: "make a patch: leave out every blob `BASE` holds (a bundle, a catalog file from bale catalog, or a registry:/dir: location; repeatable, applied in order)"},
			&cli.BoolFlag{Name: "remove-absent-tags", Usage: "in a patch, remove on unpack every tag the bases have that the packed images do not (only where it still points at the base's manifest)"},
			&cli.StringFlag{Name: "created", Usage: "creation `TIME` to record (RFC 3339); default $SOURCE_DATE_EPOCH, else the newest image config time"},
			&cli.StringFlag{Name: "stage", Usage: "pull a live registry's images into `DIR` first (default OUT.bale-pull)"},
			&cli.BoolFlag{Name: "keep-going", Usage: "pack every image that can be packed and name, at the end, those left out (exit code 5), instead of writing nothing"},
			&cli.StringFlag{Name: "volume-size", Usage: "split the bundle into volumes of at most `SIZE` (e.g. 4G, 700M): OUT.001, OUT.002, ...; cat OUT.* | tar --zstd -x still reads it"},
			jobsFlag,
			quietFlag,
			imageKeyFlag,
			imageIdentityFlag,
			imageIdentityRegexpFlag,
			imageIssuerFlag,
			imageIssuerRegexpFlag,
			&cli.StringFlag{Name: "trusted-root", Usage: "keyless image signatures: the sigstore trusted_root.json in `FILE`; checked offline, nothing is fetched"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the bundle as it is written with the private key in `FILE` (as bale sign --key: cosign.key with COSIGN_PASSWORD, or PEM PKCS#8 ECDSA, Ed25519, RSA): the signature is written into the bundle as its member bale/signatures/1.sigstore.json, right after the catalog; a bundle split by --volume-size is signed beside its first volume, OUT.001.sigstore.json (its statement names the volumes' sha256, known only once they are written)"},
		}, append(referrerFlags(), remoteFlags("src")...)...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "SOURCE"); err != nil {
				return err
			}
			if cx.String("output") == "" {
				return usagef("pack needs -o FILE, the bundle to write (see bale pack --help)")
			}
			// Before any work: OUT can be written, and writing it replaces no input.
			if err := checkOutputFile("-o", cx.String("output"), cx.String("volume-size") != "", false,
				packInputs(cx.Args().First(), cx.StringSlice("base"), cx.StringSlice("images"), cx.String("stage"))); err != nil {
				return err
			}
			loc, err := parseLocation(cx.Args().First(), false)
			if err != nil {
				return err
			}
			opt := archive.PackOptions{BaleVersion: version}
			if opt.Platforms, err = platformFlag(cx); err != nil {
				return err
			}
			if opt.Created, err = createdTime(cx.String("created")); err != nil {
				return err
			}
			if opt.Referrers, err = referrerOptions(cx); err != nil {
				return err
			}
			opt.KeepGoing = cx.Bool("keep-going")
			sel, rel, err := packSelection(cx) // --images and --release
			if err != nil {
				return err
			}
			for _, b := range cx.StringSlice("base") {
				_, c, err := loadCatalogArg(cx, b)
				if err != nil {
					return fmt.Errorf("--base %s: %w", b, err)
				}
				opt.Bases = append(opt.Bases, catalog.NamedCatalog{Name: b, Catalog: c})
			}
			if cx.Bool("remove-absent-tags") && len(opt.Bases) == 0 {
				return usagef("--remove-absent-tags needs --base: it removes tags the bases have")
			}
			opt.RemoveAbsentTags = cx.Bool("remove-absent-tags")
			signer, err := packSigner(cx)
			if err != nil {
				return err
			}
			src, err := openSourceFlags(cx, loc)
			if err != nil {
				return err
			}
			refs, err := expandImages(sel, src)
			if err != nil {
				return err
			}
			refs, unsigned, err := packSigned(cx, src, refs) // --image-key
			if err != nil {
				return err
			}
			out := cx.String("output")
			var cleanup func()
			src, refs, opt.AllTags, cleanup, err = withRelease(cx, rel, src, refs, out)
			defer cleanup()
			if err != nil {
				return err
			}
			opt.Stage = cx.String("stage")
			if v := cx.String("volume-size"); v != "" {
				if opt.Write.VolumeSize, err = units.ParseBytes(v); err != nil {
					return usageError{fmt.Errorf("--volume-size: %w", err)}
				}
				if opt.Write.VolumeSize < archive.MinVolumeSize {
					return usagef("--volume-size %s: at least %s", v, units.Bytes(archive.MinVolumeSize))
				}
			}
			start := time.Now()
			var pull *progress.Tracker
			if loc.Kind == kindDocker {
				pull = tracker(cx, "pull")
				src = progress.Source(src, pull)
				opt.Pull = copyProgress(pull, nil)
			}
			var step func(digest.Digest, int64)
			var pt *progress.Tracker
			opt.Write.Begin = func(c *catalog.Catalog) {
				pull.Finish(true)
				pt = tracker(cx, "pack")
				var begin func([]*catalog.Catalog)
				begin, step = blobProgress(pt)
				begin([]*catalog.Catalog{c})
			}
			opt.Write.Progress = func(d digest.Digest, size int64) { step(d, size) }
			if signer != nil && opt.Write.VolumeSize == 0 {
				opt.Write.Sign = inFileSigner(cx, signer)
			}
			stageArchive(loc, out, &opt)
			po := opt
			opt.Bases = nil // Pack lets the base catalogs go once it has their view
			c, err := archive.Pack(cx.Context, out, src, refs, po)
			pull.Finish(c != nil)
			pt.Finish(c != nil)
			if c == nil {
				return err
			}
			skipped := errors.Join(unsigned, err) // --keep-going: the images left out
			size, files, err := bundleSize(out, c)
			if err != nil {
				return err
			}
			if signer != nil && opt.Write.VolumeSize > 0 { // only the catalog is read again
				if err := signBundle(cx, signer, out); err != nil {
					return fmt.Errorf("%s was written, not signed: %w", out, err)
				}
			}
			kind := "bundle"
			if c.IsPatch() {
				kind = fmt.Sprintf("patch (%d of %d blobs carried, the rest expected from %d base(s); %d tag removal(s))",
					c.CarriedCount(), len(c.Blobs), len(c.Bases), len(c.Removals()))
			}
			fmt.Fprintf(cx.App.ErrWriter, "packed %s (%d blobs, %s) from %s into %s (%s) in %.1fs\n%s id %s\n",
				imagesSummary(c), c.CarriedCount(), units.Bytes(c.CarriedBytes()), loc, files, units.Bytes(size),
				time.Since(start).Seconds(), kind, c.Meta.ID)
			if skipped != nil {
				return cli.Exit(fmt.Sprintf("bale: --keep-going: %v\nthe bundle holds every other image", skipped), exitPartial)
			}
			return nil
		},
	}
}

// bundleSize is the size of the bundle written at out and how to name its files.
func bundleSize(out string, c *catalog.Catalog) (int64, string, error) {
	if len(c.Meta.Volumes) == 0 {
		fi, err := os.Stat(out)
		if err != nil {
			return 0, "", err
		}
		return fi.Size(), out, nil
	}
	n := len(c.Meta.Volumes) + 2
	var size int64
	for i := 1; i <= n; i++ {
		fi, err := os.Stat(archive.VolumeName(out, i))
		if err != nil {
			return 0, "", err
		}
		size += fi.Size()
	}
	return size, fmt.Sprintf("%s.001 ... %s (%d volumes)", out, archive.VolumeName(out, n), n), nil
}

// createdTime parses --created, falling back to $SOURCE_DATE_EPOCH; zero means "from the images".
func createdTime(flag string) (time.Time, error) {
	if flag != "" {
		t, err := time.Parse(time.RFC3339, flag)
		if err != nil {
			return time.Time{}, usagef("--created %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", flag)
		}
		return t, nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, usagef("SOURCE_DATE_EPOCH=%q: want seconds since 1970", s)
		}
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, nil
}
