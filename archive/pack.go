package archive

import (
	"context"
	"time"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// PackOptions tune Pack.
type PackOptions struct {
	// Platform reduces every multi-arch image to one platform's manifest.
	Platform *layout.Platform
	// Created overrides the bundle's creation time; zero means the newest "created" of the
	// image configs, so packing the same images twice gives the same bytes.
	Created time.Time
	// BaleVersion is recorded in the catalog.
	BaleVersion string
	// Bases make the bundle a patch: blobs they hold are not carried (see catalog.MakePatch).
	Bases []catalog.NamedCatalog
	// RemoveAbsentTags records, in a patch, the removal of every tag the bases have and the
	// packed images do not.
	RemoveAbsentTags bool
	Write            WriteOptions
}

// Pack resolves refs in src (every tag when empty) and writes their bundle to the file out:
// a patch carrying only the blobs the bases lack when opt.Bases is set.
// Every missing image is reported in one *catalog.ImagesError, and then no file is written.
func Pack(ctx context.Context, out string, src layout.Source, refs []layout.Ref, opt PackOptions) (*catalog.Catalog, error) {
	c, err := catalog.FromSource(src, refs, catalog.BuildOptions{Platform: opt.Platform})
	if err != nil {
		return nil, err
	}
	c.Meta.BaleVersion = opt.BaleVersion
	if len(opt.Bases) > 0 {
		c.MakePatch(catalog.View(opt.Bases), opt.RemoveAbsentTags)
	}
	if !opt.Created.IsZero() {
		c.Meta.Created = opt.Created.UTC().Truncate(time.Second)
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	if err := WriteFile(ctx, out, c, src, opt.Write); err != nil {
		return nil, err
	}
	return c, nil
}
