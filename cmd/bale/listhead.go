package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/bundlesig"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/listview"
)

// listHead lists the format-5 bundle at loc from its list member (archive.OpenListHead),
// without its catalog: when it is signed or signers are required, the member is hashed and
// its signatures checked against the statement built from its header and that digest (exit 6
// with nothing printed when signers are required and none of them signed it); then
// listview.Head checks the volumes and prints the rows as they come. done is false, and
// nothing printed, for a bundle the caller lists from its catalog (archive.ErrNoListHead, or a
// file it cannot open: the catalog path names the problem as it always did). Package
// quicklist takes the same path for an unsigned bundle before the rest of bale initialises.
func listHead(cx *cli.Context, loc location) (done bool, err error) {
	lh, err := archive.OpenListHead(loc.Path)
	if err != nil && !errors.Is(err, archive.ErrBundle) {
		return false, nil // ErrNoListHead, or a file that cannot be read: the catalog path says why
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w", loc.Path, err)
	}
	defer lh.Close()
	sigs, err := listHeadSignatures(cx, loc.Path, lh)
	if err != nil {
		return true, err
	}
	o := listview.Options{JSON: cx.Bool("json"), Width: listview.OutputWidth(cx.App.Writer, cx.Bool("wide"))}
	if len(sigs) > 0 {
		o.Signatures = sigs
		o.SignatureLines = func(w io.Writer) { printSignatures(w, sigs) }
	}
	return true, listview.Head(cx.App.Writer, loc.String(), loc.Path, lh, o)
}

// listHeadSignatures checks the signatures of the bundle at path, in it (read after its list
// member) and beside it, against the statement of its list member's header and digest: the
// same bytes bundlesig.Statement makes of its catalog.
func listHeadSignatures(cx *cli.Context, path string, lh *archive.ListHead) ([]bundlesig.Signature, error) {
	t, err := loadTrust(cx)
	if err != nil {
		return nil, err
	}
	found, err := bundlesig.FindWith(path, lh.Signatures)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 && t == nil {
		return nil, nil // unsigned, and no signer required: the member need not be hashed first
	}
	d, err := lh.Hash()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := lh.Header
	cv := bundlesig.Covers{ID: h.ID, Predicate: bundlesig.Predicate{Format: h.Format, Bases: []string{}, Volumes: []catalog.Volume{},
		List: &bundlesig.List{Digest: string(d), Size: lh.Size}}}
	for _, b := range h.Bases { // in their order (listing.HeaderOf)
		cv.Bases = append(cv.Bases, b.ID)
	}
	cv.Volumes = append(cv.Volumes, h.Volumes...)
	sigs, err := bundlesig.VerifyCovers(cv, found, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sigs, nil
}
