package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
)

// UnpackTree applies bundles (a base and its patches, in order) to the skopeo dir: tree, with
// no registry storage staged: each blob is verified while it streams and written once, through
// a temporary name, into the tree's content store (dirtree.StoreDir), and every image
// directory is then built under a temporary name out of hard links to it (verified copies
// across file systems), manifest.json last, and renamed into place. The store is removed once
// every image is there; a failed or killed run leaves it, and a re-run reuses what verifies.
//
// The checks and guarantees are UnpackFiles's: nothing is written before every blob each patch
// expects is found (in the store, in opt.From, which holds the images already in the tree, or
// in an earlier bundle); blobs come before any image that names them; the tags a patch
// removes go last. opt.Also is not used: the tree is the only target.
func UnpackTree(ctx context.Context, paths []string, tree *dirtree.Tree, opt UnpackOptions) (*UnpackResult, error) {
	cats, known, err := readCatalogs(paths)
	if err != nil {
		return nil, err
	}
	files, release, err := openBundles(ctx, paths, cats)
	defer release()
	if err != nil {
		return nil, err
	}
	res := &UnpackResult{}
	store := dirtree.NewStore(tree.Root())
	if err := precheck(cats, paths, store, opt.From, false); err != nil {
		return res, err
	}
	unlock, err := tree.Lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := tree.Sweep(); err != nil {
		return res, err
	}
	if err := precheck(cats, paths, store, opt.From, true); err != nil {
		return res, err
	}
	if opt.Begin != nil {
		opt.Begin(cats)
	}
	tags := &treeTags{store: store, cur: map[string]digest.Digest{}}
	for i, p := range paths {
		if err := applyTreeFile(ctx, p, known[i], files[i], store, tags, opt, res); err != nil {
			return res, treeSpaceHint(err, cats[i:], store, tree.Root())
		}
	}
	if !opt.NoSync { // every blob durable before an image names it
		if err := fsutil.SyncFS(tree.Root()); err != nil {
			return res, err
		}
	}
	refs, removed := finalRefs(cats)
	res.Images = len(refs)
	src := &storeSource{store: store, tags: tags.cur}
	if err := layout.CopyImages(ctx, src, tree, refs); err != nil {
		return res, treeSpaceHint(err, cats, store, tree.Root())
	}
	if err := removeTreeImages(tree, removed, res); err != nil {
		return res, err
	}
	if !opt.NoSync {
		if err := fsutil.SyncFS(tree.Root()); err != nil {
			return res, err
		}
	}
	return res, store.Remove()
}

// applyTreeFile streams one bundle's blobs into the store, checks what a patch expects, and
// applies its tags to tags.
func applyTreeFile(ctx context.Context, path string, want *knownCatalog, f bundleFile, store *dirtree.Store, tags *treeTags, opt UnpackOptions, res *UnpackResult) error {
	br, err := newReaderAtKnown(f.ra, f.size, func() {}, want) // f is released by the caller
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer br.Close()
	c := br.Catalog()
	if c.Meta.ID != want.cat.Meta.ID {
		return fmt.Errorf("%s changed while bale was reading it: %w", path, ErrBundle)
	}
	res.Catalog = c
	if err := storeBlobs(ctx, br, store, opt, res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := checkExpected(c, store); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tags.apply(c, res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// removeTreeImages removes from the tree the images patches removed, where they still hold
// the base's manifest, and reports them in res (once each, with those a bundle of this run
// tagged and a later one removed).
func removeTreeImages(tree *dirtree.Tree, removed map[string]catalog.Entry, res *UnpackResult) error {
	done := map[string]bool{}
	for _, r := range append(res.Removed, res.KeptTags...) {
		done[r] = true
	}
	names := make([]string, 0, len(removed))
	for k := range removed {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		e := removed[k]
		ok, err := tree.RemoveImage(e.Ref(), e.Digest)
		if err != nil {
			return err
		}
		name := e.Repo + ":" + e.Tag
		switch {
		case done[name]:
		case ok:
			res.Removed = append(res.Removed, name)
		case treeHas(tree, e.Ref()):
			res.KeptTags = append(res.KeptTags, name)
		}
	}
	return nil
}

// treeHas reports whether the tree has an image directory for ref.
func treeHas(tree *dirtree.Tree, ref layout.Ref) bool {
	dir, err := dirtree.ImageDir(tree.Root(), ref)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(dir + "/" + dirtree.ManifestFile)
	return err == nil && fi.Mode().IsRegular()
}

// treeTags is what the tags of the bundles applied so far name, kept as registry storage would
// keep them (each bundle's tags, its referrers tags merged with what they listed, the tags it
// removes), so that the tree gets what the registry storage of UnpackFiles would have.
type treeTags struct {
	store *dirtree.Store
	cur   map[string]digest.Digest // repo:tag -> manifest
}

// apply applies the tags of one bundle: see apply and TagReferrersIn.
func (t *treeTags) apply(c *catalog.Catalog, res *UnpackResult) error {
	groups := c.ReferrerGroups()
	prior := make([][]layout.Descriptor, len(groups))
	for i, g := range groups {
		if m := t.index(g.Repo, layout.ReferrersTag(g.Subject)); m != nil {
			prior[i] = m.Manifests
		}
	}
	for _, e := range c.Entries() {
		if e.Tag != "" {
			t.cur[e.Ref().String()] = e.Digest
		}
	}
	for i, g := range groups {
		tag := layout.Ref{Repo: g.Repo, Tag: layout.ReferrersTag(g.Subject)}
		raw, changed, err := layout.ReferrersIndex(t.index(tag.Repo, tag.Tag), append(g.Referrers, prior[i]...))
		if err != nil {
			return fmt.Errorf("referrers tag of %s@%s: %w", g.Repo, g.Subject, err)
		}
		if !changed {
			continue
		}
		desc := layout.Descriptor{MediaType: layout.MediaTypeOCIIndex, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		if !t.store.StatBlob(desc) {
			if err := t.store.WriteBlob(desc, bytes.NewReader(raw)); err != nil {
				return fmt.Errorf("referrers index of %s@%s: %w", g.Repo, g.Subject, err)
			}
		}
		t.cur[tag.String()] = desc.Digest
	}
	for _, e := range c.Removals() {
		k, name := e.Ref().String(), e.Repo+":"+e.Tag
		if d, ok := t.cur[k]; ok && d == e.Digest {
			delete(t.cur, k)
			res.Removed = append(res.Removed, name)
		} else if ok {
			res.KeptTags = append(res.KeptTags, name)
		}
	}
	return nil
}

// index is the index repo:tag names, or nil.
func (t *treeTags) index(repo, tag string) *layout.Manifest {
	d, ok := t.cur[layout.Ref{Repo: repo, Tag: tag}.String()]
	if !ok {
		return nil
	}
	p, err := t.store.Path(layout.Descriptor{Digest: d})
	if err != nil {
		return nil
	}
	m, err := layout.ReadManifest(p, d, "manifest "+string(d))
	if err != nil || !m.IsIndex() {
		return nil
	}
	return m
}

// storeSource reads the images of the bundles out of the tree's content store: tags as
// treeTags has them, manifests and blobs from the store's files (manifests verified).
type storeSource struct {
	store *dirtree.Store
	tags  map[string]digest.Digest
}

var _ layout.FileSource = (*storeSource)(nil)

// Refs lists every tag, sorted.
func (s *storeSource) Refs() ([]layout.Ref, error) {
	keys := make([]string, 0, len(s.tags))
	for k := range s.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	refs := make([]layout.Ref, 0, len(keys))
	for _, k := range keys {
		r, err := layout.ParseLocalRef(k)
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// Resolve returns the manifest a tag names, or a digest reference's digest (ReadManifest
// says whether it is there).
func (s *storeSource) Resolve(ref layout.Ref) (digest.Digest, error) {
	if ref.Tag == "" {
		return ref.Digest, layout.ValidateDigest(ref.Digest)
	}
	d, ok := s.tags[layout.Ref{Repo: ref.Repo, Tag: ref.Tag}.String()]
	if !ok || (ref.Digest != "" && ref.Digest != d) {
		return "", fmt.Errorf("%s: %w", ref, layout.ErrNotFound)
	}
	return d, nil
}

// ReadManifest reads manifest d from the store, verifying it.
func (s *storeSource) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	p, err := s.store.Path(layout.Descriptor{Digest: d})
	if err != nil {
		return nil, err
	}
	return layout.ReadManifest(p, d, fmt.Sprintf("manifest %s of %s", d, repo))
}

// BlobPath is the store's file of blob d.
func (s *storeSource) BlobPath(repo string, d layout.Descriptor) (string, error) {
	return s.store.Path(d)
}

// OpenBlob opens the store's file of blob d.
func (s *storeSource) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	p, err := s.store.Path(d)
	if err != nil {
		return nil, err
	}
	f, _, err := layout.OpenRegular(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, repo, layout.ErrNotFound)
	}
	return f, err
}

// treeSpaceHint adds to err, when it is a full file system, how much space the rest of the
// unpack into the tree at root needs: every blob of cats not yet in the store, in whole
// blocks, and for each image a block for each of its files and directories. It counts
// generously, so that freeing what it says is enough for a re-run, which reuses the store.
func treeSpaceHint(err error, cats []*catalog.Catalog, store *dirtree.Store, root string) error {
	if !fsutil.IsNoSpace(err) {
		return err
	}
	var st unix.Statfs_t
	if unix.Statfs(existingDir(root), &st) != nil || st.Bsize <= 0 {
		return err
	}
	bsize := st.Bsize
	blocks := func(n int64) int64 { return (n + bsize - 1) / bsize * bsize }
	need, blobs := 16*bsize, 0
	seen := map[digest.Digest]bool{}
	for _, c := range cats {
		for _, d := range c.CarriedBlobs() {
			desc, derr := c.Descriptor(d)
			if derr != nil || seen[d] || store.StatBlob(desc) {
				continue
			}
			seen[d] = true
			blobs++
			need += blocks(desc.Size)
		}
		for _, e := range c.Entries() {
			need += int64(len(c.ImageBlobs(e.Digest))+len(c.ManifestClosure(e.Digest))+4) * bsize
		}
	}
	free := int64(st.Bavail) * bsize
	short := max(need-free, bsize)
	return fmt.Errorf("%w\n(the file system of %s is full: the rest of this unpack needs up to %s (%d blobs still to write, and the image directories, in %d-byte blocks) and %s is free: free %s (%d bytes) or more there and run this again; what was written is kept and reused)",
		err, root, units.Bytes(need), blobs, bsize, units.Bytes(free), units.Bytes(short), short)
}
