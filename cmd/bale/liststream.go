package main

import (
	"errors"
	"fmt"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
)

// listStream lists the bundle at loc from its catalog read in place (catalog.Stream), one
// repository at a time, without holding the catalog whole: each repository's records are
// checked (Validate) and its rows made, then dropped; the id is recomputed on the way and
// checked before anything is shown. It returns a catalog holding only the meta and bases (what
// the signatures and volumes are checked against), or a nil catalog and no error for a bundle
// of format 1 to 3, which the caller reads whole.
func listStream(loc location) (*catalog.Catalog, listOutput, error) {
	var out listOutput
	file, remove, err := archive.ExtractCatalog(loc.Path)
	if err != nil {
		return nil, out, err
	}
	defer remove()
	s, err := catalog.OpenStream(file, archive.CatalogName)
	if errors.Is(err, catalog.ErrNested) {
		return nil, out, nil
	}
	if err != nil {
		return nil, out, fmt.Errorf("%s: bundle %w", loc.Path, err)
	}
	defer s.Close()
	var tail []listImage // attachments whose subject is not held: last, as listOf has them
	out = listOutput{Location: loc.String(), ID: s.Meta.ID, Images: []listImage{}, Bases: s.Bases, Additive: len(s.Bases) > 0,
		Format: s.Meta.Format, Created: &s.Meta.Created, Bale: s.Meta.BaleVersion}
	res, err := s.Walk(func(repo *catalog.Catalog) error {
		if err := repo.Validate(); err != nil {
			return fmt.Errorf("bundle catalog: %w", err)
		}
		for _, e := range repo.Removals() {
			out.Removed = append(out.Removed, e.Repo+":"+e.Tag)
		}
		var owned int
		out.Images, owned = listing.Images(repo, out.Images)
		tail = append(tail, out.Images[owned:]...)
		out.Images = out.Images[:owned]
		return nil
	})
	if err != nil {
		return nil, out, fmt.Errorf("%s: %w", loc.Path, err)
	}
	if res.ID != s.Meta.ID {
		return nil, out, fmt.Errorf("%s: bundle catalog id %s does not match its content (%s): %w", loc.Path, s.Meta.ID, res.ID, archive.ErrBundle)
	}
	out.Images = append(out.Images, tail...)
	listing.Group(out.Images)
	out.Blobs, out.Bytes, out.CarriedBlobs, out.CarriedBytes = res.Blobs, res.BlobBytes, res.CarriedBlobs, res.CarriedBytes
	head := catalog.New()
	head.Meta, head.Bases = s.Meta, s.Bases
	return head, out, nil
}
