package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

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
	return r.Catalog(), problems
}
