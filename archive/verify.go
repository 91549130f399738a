package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// checkListRender renders the list member of c again (listing.Render) and requires the bytes
// the catalog records (meta/list, which the member was checked against as it was read): a
// writer that put rows in the member that its catalog does not hold is caught here.
func checkListRender(c *catalog.Catalog) error {
	l := c.Meta.List
	if l == nil {
		return nil
	}
	b, err := listing.Render(c)
	if err != nil {
		return err
	}
	if int64(len(b)) != l.Size || digest.FromBytes(b) != l.Digest {
		return fmt.Errorf("list member %s (%d bytes, sha256 %s) is not what the catalog renders (%d bytes, sha256 %s): %w",
			ListName, l.Size, l.Digest.Encoded(), len(b), digest.FromBytes(b).Encoded(), ErrBundle)
	}
	return nil
}

// VerifyFile reads the whole bundle at path (a file or a volume set, see OpenBundle) as Unpack would, without writing anything:
// the catalog, every member's name, type and order, and every blob's size and sha256, hashed
// on every core. Each blob that fails its digest is one problem and reading goes on; any
// other error (a malformed or truncated bundle) ends the list. The catalog is nil if the
// head could not be read.
func VerifyFile(ctx context.Context, path string) (*catalog.Catalog, []error) {
	r, err := OpenBundle(ctx, path)
	if err != nil {
		return nil, []error{err}
	}
	defer r.Close()
	p := newBlobPipeline(0)
	p.keepGoing = true
	fatal := p.feed(ctx, r, func(_ layout.Descriptor, name string, v *layout.Verifier) error {
		if _, err := io.Copy(io.Discard, v); err != nil {
			return fmt.Errorf("bundle member %s: %w", name, err)
		}
		return nil
	})
	problems := p.waitAll()
	if fatal != nil {
		problems = append(problems, fatal)
	}
	if err := checkListRender(r.Catalog()); err != nil {
		problems = append(problems, err)
	}
	return r.Catalog(), problems
}
