package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/par"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// UnpackOptions tune Unpack and UnpackFiles.
type UnpackOptions struct {
	// Also receives every image of the bundles once the registry store is complete, read from
	// that store (a dirtree.Tree there hard-links its files out of the registry), and loses
	// the tags a patch removes if it is a layout.Remover. A sink with a Sweep method has it
	// called, under the store's lock, to remove what an interrupted run left.
	Also []layout.Sink
	// From are layouts that already hold content (an existing dir tree target): a blob a patch
	// expects and the store lacks is hard-linked from them before anything else happens.
	From []layout.FileSource
	// Begin, if set, is given the bundles' catalogs once they are read and checked, before
	// anything is written.
	Begin func(cats []*catalog.Catalog)
	// Progress, if set, is called after each blob with its descriptor and whether it was
	// already present (from several goroutines, one call at a time).
	Progress func(d layout.Descriptor, reused bool)
	// NoSync skips the two syncfs calls of each bundle (blobs durable before any link points
	// at them, links durable before Unpack returns): faster, but a power loss may then leave
	// a tag whose blob data never reached the disk.
	NoSync bool
}

// UnpackResult says what Unpack did.
type UnpackResult struct {
	// Catalog of the last bundle applied.
	Catalog      *catalog.Catalog
	Images       int // distinct tags and pinned images written
	BlobsWritten int
	BlobsReused  int
	BytesWritten int64
	// Removed and KeptTags are the tags patches removed, and those they would have removed but
	// that pointed elsewhere in the target (left alone), as repo:tag.
	Removed, KeptTags []string
}

// MissingBlob is a blob a patch expects that the target lacks.
type MissingBlob struct {
	Digest digest.Digest
	Size   int64
	// Base is the id of the bundle that carries it, and BaseName what the patch calls it.
	Base, BaseName string
	// Images are the tags (or pinned images) that need it.
	Images []string
}

// MissingError reports, before anything is written, every blob a patch expects that neither
// the target nor an earlier bundle of the same run holds.
type MissingError struct {
	Bundle string
	Blobs  []MissingBlob
}

func (e *MissingError) Error() string {
	var b strings.Builder
	bases := map[string]string{}
	for _, m := range e.Blobs {
		bases[m.Base] = m.BaseName
	}
	ids := make([]string, 0, len(bases))
	for id := range bases {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(&b, "%s is a patch: the target lacks %d blob(s) it expects; apply its base first (nothing was written)", e.Bundle, len(e.Blobs))
	for _, id := range ids {
		fmt.Fprintf(&b, "\n  base %s (%s)", id, bases[id])
	}
	for _, m := range e.Blobs {
		fmt.Fprintf(&b, "\n  missing %s (%d bytes) carried by base %s, needed by %s", m.Digest, m.Size, m.Base, strings.Join(m.Images, ", "))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, layout.ErrNotFound) true.
func (e *MissingError) Unwrap() error { return layout.ErrNotFound }

// Unpack reads one bundle from r into dst (registry storage on disk or in a bucket), then into every sink of
// opt.Also. See UnpackFiles for the guarantees.
func Unpack(ctx context.Context, r io.Reader, dst Target, opt UnpackOptions) (*UnpackResult, error) {
	br, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	res := &UnpackResult{}
	cats, names := []*catalog.Catalog{br.Catalog()}, []string{"the bundle"}
	unlock, err := prepare(cats, names, dst, opt)
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := apply(ctx, br, dst, opt, res); err != nil {
		return res, spaceHint(err, cats, dst, opt)
	}
	return res, spaceHint(finishSinks(ctx, cats, dst, opt, res), cats, dst, opt)
}

// UnpackFiles applies bundles (a base and its patches, in order) to the target dst,
// then writes the resulting images into every sink of opt.Also.
//
// Before writing anything it reads every bundle's catalog and checks that each blob a patch
// expects is in dst (or opt.From) or carried by an earlier bundle of the list; if not, it
// fails with a *MissingError and dst is untouched. Then, bundle by bundle, every blob is
// verified while it streams and written through a temporary name (a blob already present is
// reused only if its content verifies); blobs a patch expects are checked in dst (manifests
// parsed and compared with the catalog, layers by size); links are written once every blob is
// in place, tags last, then the tags the patch removes. An error at any point leaves no tag
// pointing at missing content; other repositories and tags of dst are not touched. A
// cancelled ctx stops it between members with the same guarantees.
func UnpackFiles(ctx context.Context, paths []string, dst Target, opt UnpackOptions) (*UnpackResult, error) {
	cats, known, err := readCatalogs(paths)
	if err != nil {
		return nil, err
	}
	return unpackCatalogs(ctx, paths, cats, known, dst, opt)
}

// readCatalogs reads the catalog of each bundle; known are the same with the sha256 of each
// catalog member, for the readers of the blobs (newReaderAtKnown): one decoded copy of each.
func readCatalogs(paths []string) ([]*catalog.Catalog, []*knownCatalog, error) {
	cats := make([]*catalog.Catalog, len(paths))
	known := make([]*knownCatalog, len(paths))
	for i, p := range paths {
		k, err := readCatalogSum(p)
		if err != nil {
			return nil, nil, err
		}
		cats[i], known[i] = k.cat, k
	}
	return cats, known, nil
}

// unpackCatalogs is UnpackFiles of bundles whose catalogs cats (known) were read already.
func unpackCatalogs(ctx context.Context, paths []string, cats []*catalog.Catalog, known []*knownCatalog, dst Target, opt UnpackOptions) (*UnpackResult, error) {
	files, release, err := openBundles(ctx, paths, cats)
	defer release()
	if err != nil {
		return nil, err
	}
	res := &UnpackResult{}
	unlock, err := prepare(cats, paths, dst, opt)
	if err != nil {
		return res, err
	}
	defer unlock()
	if opt.Begin != nil {
		opt.Begin(cats)
	}
	for i, p := range paths {
		if err := applyFile(ctx, p, known[i], files[i], dst, opt, res); err != nil {
			return res, spaceHint(err, cats[i:], dst, opt)
		}
	}
	return res, spaceHint(finishSinks(ctx, cats, dst, opt, res), cats, dst, opt)
}

// openBundles opens every bundle, a split bundle's volumes checked (sha256), before anything
// is written; release closes what was opened, also after an error.
func openBundles(ctx context.Context, paths []string, cats []*catalog.Catalog) ([]bundleFile, func(), error) {
	files := make([]bundleFile, len(paths))
	release := func() {
		for _, f := range files {
			if f.release != nil {
				f.release()
			}
		}
	}
	for i, p := range paths {
		ra, size, rel, err := openRandomAccess(ctx, p, cats[i])
		if err != nil {
			return nil, release, err
		}
		files[i] = bundleFile{ra, size, rel}
	}
	return files, release, nil
}

// bundleFile is an opened bundle (a file or a volume set) as openRandomAccess returns it.
type bundleFile struct {
	ra      io.ReaderAt
	size    int64
	release func()
}

// prepare checks what patches expect without writing anything, then creates dst, takes its
// lock (one unpack at a time), removes what an interrupted run left there, and checks again
// under the lock.
func prepare(cats []*catalog.Catalog, names []string, dst Target, opt UnpackOptions) (func(), error) {
	if err := precheck(cats, names, dst, opt.From, false); err != nil {
		return nil, err
	}
	unlock, err := dst.Prepare()
	if err != nil {
		return nil, err
	}
	for _, s := range opt.Also {
		if sw, ok := s.(interface{ Sweep() error }); ok {
			if err := sw.Sweep(); err != nil {
				unlock()
				return nil, err
			}
		}
	}
	if err := precheck(cats, names, dst, opt.From, true); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

func applyFile(ctx context.Context, path string, want *knownCatalog, f bundleFile, dst Target, opt UnpackOptions, res *UnpackResult) error {
	br, err := newReaderAtKnown(f.ra, f.size, func() {}, want) // f is released by the caller
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer br.Close()
	if br.Catalog().Meta.ID != want.cat.Meta.ID {
		return fmt.Errorf("%s changed while bale was reading it: %w", path, ErrBundle)
	}
	if err := apply(ctx, br, dst, opt, res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// precheck checks, without writing anything, that every blob each patch expects is in dst,
// in one of from, or carried by an earlier bundle; with seed, it then hard-links into dst
// what only from holds.
func precheck(cats []*catalog.Catalog, names []string, dst blobTarget, from []layout.FileSource, seed bool) error {
	carried := map[digest.Digest]bool{}
	seeds := map[digest.Digest]seedFile{}
	for i, c := range cats {
		var missing []MissingBlob
		for _, d := range c.ExpectedBlobs() {
			desc, _ := c.Descriptor(d)
			if carried[d] || dst.StatBlob(desc) {
				continue
			}
			if p, ok := findSeed(desc, from); ok {
				seeds[d] = seedFile{desc, p}
				continue
			}
			b := c.Blobs[d]
			mb := MissingBlob{Digest: d, Size: b.Size, Base: b.Base}
			for _, base := range c.Bases {
				if base.ID == b.Base {
					mb.BaseName = base.Name
				}
			}
			for _, e := range c.UsedBy(d) {
				mb.Images = append(mb.Images, e.Ref().String())
			}
			missing = append(missing, mb)
		}
		if len(missing) > 0 {
			return &MissingError{Bundle: names[i], Blobs: missing}
		}
		for _, d := range c.CarriedBlobs() {
			carried[d] = true
		}
	}
	if !seed {
		return nil
	}
	for _, s := range seeds {
		if err := dst.SeedBlob(s.desc, s.path); err != nil {
			return fmt.Errorf("taking blob %s from %s: %w", s.desc.Digest, s.path, err)
		}
	}
	return nil
}

// seedFile is a blob a patch expects that an existing layout holds as a file.
type seedFile struct {
	desc layout.Descriptor
	path string
}

// findSeed finds a file of the right size holding blob d in one of from. It is verified by the
// patch's checks before any link points at it.
func findSeed(d layout.Descriptor, from []layout.FileSource) (string, bool) {
	for _, src := range from {
		if p, err := src.BlobPath("", d); err == nil {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size {
				return p, true
			}
		}
	}
	return "", false
}

// apply streams one bundle into dst: blobs, checks of what a patch expects, links, tags,
// removals.
func apply(ctx context.Context, br *Reader, dst Target, opt UnpackOptions, res *UnpackResult) error {
	c := br.Catalog()
	res.Catalog = c
	if err := storeBlobs(ctx, br, dst, opt, res); err != nil {
		return err
	}
	if err := checkExpected(c, dst); err != nil {
		return err
	}
	if !opt.NoSync {
		if err := dst.Sync(); err != nil {
			return err
		}
	}
	groups := c.ReferrerGroups()
	prior := priorReferrers(dst, groups)
	if err := writeLinks(ctx, c, dst); err != nil {
		return err
	}
	for i := range groups {
		groups[i].Referrers = append(groups[i].Referrers, prior[i]...)
	}
	if err := layout.TagReferrers(dst, groups); err != nil {
		return err
	}
	for _, e := range c.Removals() {
		removed, err := dst.Untag(e.Repo, e.Tag, e.Digest)
		if err != nil {
			return err
		}
		name := e.Repo + ":" + e.Tag
		if removed {
			res.Removed = append(res.Removed, name)
		} else if _, err := dst.Resolve(e.Ref()); err == nil {
			res.KeptTags = append(res.KeptTags, name)
		}
	}
	if opt.NoSync {
		return nil
	}
	return dst.Sync()
}

// priorReferrers returns, for each group, what the target's referrers tag of that subject
// lists before the bundle's tags are written, so that a bundle that carries another such
// tag (a patch) adds to what the site had rather than replace it.
func priorReferrers(dst Target, groups []layout.ReferrerGroup) [][]layout.Descriptor {
	out := make([][]layout.Descriptor, len(groups))
	for i, g := range groups {
		d, err := dst.Resolve(layout.Ref{Repo: g.Repo, Tag: layout.ReferrersTag(g.Subject)})
		if err != nil {
			continue
		}
		if m, err := dst.ReadManifest(g.Repo, d); err == nil && m.IsIndex() {
			out[i] = m.Manifests
		}
	}
	return out
}

// storeBlobs reads every member of br and writes its blobs into dst on the blob pipeline,
// each verified while it streams; it returns once every blob is stored or one has failed.
func storeBlobs(ctx context.Context, br *Reader, dst blobTarget, opt UnpackOptions, res *UnpackResult) error {
	p := newBlobPipeline(blobSlots(dst))
	var mu sync.Mutex // guards res and serializes opt.Progress
	store := func(d layout.Descriptor, name string, v *layout.Verifier) error {
		reused := dst.HasBlob(d)
		var err error
		if reused {
			_, err = io.Copy(io.Discard, v) // still verify the member
		} else {
			err = dst.WriteBlob(d, v)
		}
		if err != nil {
			return fmt.Errorf("bundle member %s: %w", name, err) // a full file system is explained by spaceHint
		}
		mu.Lock()
		defer mu.Unlock()
		if reused {
			res.BlobsReused++
		} else {
			res.BlobsWritten++
			res.BytesWritten += d.Size
		}
		if opt.Progress != nil {
			opt.Progress(d, reused)
		}
		return nil
	}
	err := p.feed(ctx, br, store)
	if errors.Is(err, errStopped) {
		return p.wait()
	}
	return errors.Join(err, p.wait())
}

// blobSlots is how many blobs the pipeline stores at once into dst: the CPUs, or more for a
// target whose writes wait on the network.
func blobSlots(dst blobTarget) int {
	n := runtime.GOMAXPROCS(0)
	if j, ok := dst.(Jobber); ok {
		n = max(n, j.Jobs())
	}
	return n
}

// linkWorkers is how many links writeLinks writes at once into dst.
func linkWorkers(dst Target) int {
	n := par.Workers()
	if j, ok := dst.(Jobber); ok {
		n = max(n, j.Jobs())
	}
	return n
}

// writeLinks writes the repository directories and every link of c into dst, several at once,
// in three waves so that the order of §4 holds on disk: repository links, then every tag's
// index link, then every tag's current link (the tag itself). Each link goes through a
// temporary name and a rename.
func writeLinks(ctx context.Context, c *catalog.Catalog, dst Target) error {
	repos := c.RepoNames()
	workers := linkWorkers(dst)
	if err := par.Each(ctx, len(repos), workers, func(i int) error { return dst.EnsureRepo(repos[i]) }); err != nil {
		return err
	}
	var waves [3][]registry.PathSpec
	for _, spec := range Links(c) {
		switch spec.(type) {
		case registry.TagIndex:
			waves[1] = append(waves[1], spec)
		case registry.TagCurrent:
			waves[2] = append(waves[2], spec)
		default:
			waves[0] = append(waves[0], spec)
		}
	}
	for _, wave := range waves {
		if err := par.Each(ctx, len(wave), workers, func(i int) error {
			return dst.WriteLink(wave[i], linkTarget(c, wave[i]))
		}); err != nil {
			return err
		}
	}
	return nil
}

// checkExpected checks the blobs a patch expects in dst: each present with its size, and each
// manifest verified, parsed and compared with the catalog.
func checkExpected(c *catalog.Catalog, dst blobTarget) error {
	var errs []error
	for _, d := range c.ExpectedBlobs() {
		desc, _ := c.Descriptor(d)
		if c.Manifests[d] != nil {
			m, err := dst.ReadBlobManifest(desc)
			if err == nil {
				err = CheckManifest(c, m.Raw)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("manifest %s the patch expects in the target: %w", d, err))
			}
		} else if !dst.StatBlob(desc) {
			errs = append(errs, fmt.Errorf("blob %s the patch expects is missing from the target or has the wrong size: %w", d, layout.ErrNotFound))
		}
	}
	return errors.Join(errs...)
}

// finishSinks writes the images of every bundle (the last word on each tag wins) into the
// extra sinks and removes there what patches removed.
func finishSinks(ctx context.Context, cats []*catalog.Catalog, dst Target, opt UnpackOptions, res *UnpackResult) error {
	refs, removed := finalRefs(cats)
	res.Images = len(refs)
	for _, sink := range opt.Also {
		if err := layout.CopyImages(ctx, dst, sink, refs); err != nil {
			return err
		}
		if rm, ok := sink.(layout.Remover); ok {
			for _, e := range removed {
				if _, err := rm.RemoveImage(e.Ref(), e.Digest); err != nil {
					return err
				}
			}
		}
		if r, ok := sink.(interface{ Root() string }); ok && !opt.NoSync {
			if err := fsutil.SyncFS(r.Root()); err != nil {
				return err
			}
		}
	}
	return nil
}

// finalRefs is every image of the bundles cats applied in order (the last word on each tag
// wins), sorted, and the images patches removed, by name.
func finalRefs(cats []*catalog.Catalog) ([]layout.Ref, map[string]catalog.Entry) {
	final := map[string]layout.Ref{}
	removed := map[string]catalog.Entry{}
	for _, c := range cats {
		for _, e := range c.Entries() {
			final[e.Ref().String()] = e.Ref()
			delete(removed, e.Ref().String())
		}
		for _, e := range c.Removals() {
			k := e.Ref().String()
			delete(final, k)
			removed[k] = e
		}
	}
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	refs := make([]layout.Ref, len(keys))
	for i, k := range keys {
		refs[i] = final[k]
	}
	return refs, removed
}
