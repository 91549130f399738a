package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// Also receives every image of the bundle once the registry store is complete, read from
	// that store (a dirtree.Tree there hard-links its files out of the registry).
	Also []layout.Sink
	// Progress, if set, is called after each blob with its descriptor and whether it was
	// already present.
	Progress func(d layout.Descriptor, reused bool)
}

// UnpackResult says what Unpack did.
type UnpackResult struct {
	Catalog      *catalog.Catalog
	BlobsWritten int
	BlobsReused  int
	BytesWritten int64
}

// Unpack reads the bundle from r into the registry store dst, then into every sink of
// opt.Also. Every blob is verified while it streams and written through a temporary name; a
// blob already in dst is reused only if its content verifies, and replaced otherwise. Links are
// written only once every blob is in place, tags last, so an error at any point leaves no tag
// pointing at missing content; other repositories and tags of dst are not touched. A
// cancelled ctx stops it between members, with the same guarantees.
func Unpack(ctx context.Context, r io.Reader, dst *registry.Store, opt UnpackOptions) (*UnpackResult, error) {
	br, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	res := &UnpackResult{Catalog: br.Catalog()}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		m, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		if _, ok := m.Spec.(registry.BlobData); !ok {
			continue // links are written from the catalog below, after every blob
		}
		reused := dst.StatBlob(m.Blob) && dst.VerifyBlob(m.Blob) == nil
		if reused {
			res.BlobsReused++
			// Still read the member: Next verifies it against its digest.
		} else {
			if err := dst.WriteBlob(m.Blob, m); err != nil {
				return res, fmt.Errorf("bundle member %s: %w", m.Name, err)
			}
			res.BlobsWritten++
			res.BytesWritten += m.Blob.Size
		}
		if opt.Progress != nil {
			opt.Progress(m.Blob, reused)
		}
	}
	c := br.Catalog()
	for _, name := range c.RepoNames() {
		if err := dst.EnsureRepo(name); err != nil {
			return res, err
		}
	}
	for _, spec := range Links(c) {
		if err := dst.WriteLink(spec, linkTarget(c, spec)); err != nil {
			return res, err
		}
	}
	refs := make([]layout.Ref, 0)
	for _, e := range c.Entries() {
		refs = append(refs, e.Ref())
	}
	for _, sink := range opt.Also {
		if err := layout.CopyImages(ctx, dst, sink, refs); err != nil {
			return res, err
		}
	}
	return res, nil
}
