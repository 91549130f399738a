package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// PackOptions tune Pack.
type PackOptions struct {
	// Platforms reduce multi-arch images: one, to its manifest; several, to a sparse index.
	Platforms []layout.Platform
	// Referrers choose the referrers that travel with the images (layout.FindReferrers).
	Referrers layout.ReferrerOptions
	// AllTags says that refs are every tag of the source (listed by the caller), as when
	// refs is empty: cosign and referrers tags travel as their subjects' referrers.
	AllTags bool
	// KeepGoing packs the images that can be taken and leaves out the others, which Pack
	// then names in the *catalog.ImagesError it returns with the catalog.
	KeepGoing bool
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
	// Stage is where a source whose blobs are not files (a live registry) is first copied, as
	// registry storage: several images at once, every blob verified. Empty means OUT.bale-pull
	// beside the bundle. It is kept when the pack fails, so that running it again fetches only
	// what is missing, and removed once the bundle is written.
	Stage string
	// DropStage removes the stage when the pack fails too: for a source read again at no
	// cost (an image archive), whose damage must leave nothing behind.
	DropStage bool
	// Pull tunes the copy into the stage (its Platform is Platform).
	Pull  layout.CopyOptions
	Write WriteOptions
}

// Pack resolves refs in src (every tag when empty) and writes their bundle to the file out:
// a patch carrying only the blobs the bases lack when opt.Bases is set.
// Every missing image is reported in one *catalog.ImagesError, and then no file is written;
// with opt.KeepGoing the others are packed and the catalog is returned with that error.
func Pack(ctx context.Context, out string, src layout.Source, refs []layout.Ref, opt PackOptions) (*catalog.Catalog, error) {
	if err := catalog.CheckBases(opt.Bases); err != nil {
		return nil, err
	}
	if !packsDirectly(src) {
		return packStaged(ctx, out, src, refs, opt)
	}
	// What the bases hold is all a patch needs of them: their catalogs (each as large as a
	// release's) can go before the release's own is built, when the caller has let go of them.
	var view *catalog.SiteView
	if len(opt.Bases) > 0 {
		view, opt.Bases = catalog.View(opt.Bases), nil
	}
	c, err := catalog.FromSource(src, refs, catalog.BuildOptions{Platforms: opt.Platforms, Referrers: opt.Referrers,
		KeepGoing: opt.KeepGoing, AllTags: opt.AllTags || len(refs) == 0})
	if c == nil {
		return nil, err
	}
	skipped := err // with KeepGoing: the images left out
	c.Meta.BaleVersion = opt.BaleVersion
	if view != nil {
		c.MakePatch(view, opt.RemoveAbsentTags)
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
	return c, skipped
}

// Streamer is a Source that Pack reads straight into the bundle, each blob opened in turn and
// verified as it is written, without staging it first: a bucket (s3store.Store), where a blob
// is one GET and a stage would only be a second copy on local disk.
type Streamer interface {
	layout.Source
	// PackDirectly reports whether Pack reads this source without a stage.
	PackDirectly() bool
}

// packsDirectly reports whether Pack writes the bundle straight from src: its blobs are files,
// or it is a Streamer. Any other source (a live registry, an image archive) is staged first.
func packsDirectly(src layout.Source) bool {
	if _, ok := src.(layout.FileSource); ok {
		return true
	}
	st, ok := src.(Streamer)
	return ok && st.PackDirectly()
}

// packStaged copies refs (every tag of src when empty) from src into the stage, then packs
// them from there and removes the stage.
func packStaged(ctx context.Context, out string, src layout.Source, refs []layout.Ref, opt PackOptions) (*catalog.Catalog, error) {
	if len(refs) == 0 {
		var err error
		if refs, err = src.Refs(); err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("%v holds no images: %w", src, layout.ErrNotFound)
		}
		opt.AllTags = true
	}
	stage := opt.Stage
	if stage == "" {
		stage = out + ".bale-pull"
	}
	c, err := packStage(ctx, out, stage, src, refs, opt)
	if c == nil && opt.DropStage {
		os.RemoveAll(stage)
	}
	return c, err
}

// packStage is packStaged into stage.
func packStage(ctx context.Context, out, stage string, src layout.Source, refs []layout.Ref, opt PackOptions) (*catalog.Catalog, error) {
	kept := func(s string) string {
		if opt.DropStage {
			return ""
		}
		return s
	}
	pull := opt.Pull
	pull.Platforms, pull.Referrers, pull.AllTags = opt.Platforms, opt.Referrers, opt.AllTags
	var skipped error
	_, err := layout.CopyWith(ctx, src, registry.New(stage), refs, pull)
	var ie *layout.ImagesError
	if err != nil && opt.KeepGoing && errors.As(err, &ie) {
		// Resolving found images it cannot take: leave them out, fetch the others.
		bad := map[string]bool{}
		for _, e := range ie.Images {
			bad[e.Ref.String()] = true
		}
		var rest []layout.Ref
		for _, r := range refs {
			if !bad[r.String()] {
				rest = append(rest, r)
			}
		}
		if len(rest) > 0 {
			skipped, refs = err, rest
			_, err = layout.CopyWith(ctx, src, registry.New(stage), refs, pull)
		}
	}
	if err != nil && errors.As(err, &ie) {
		// Images missing or that bale cannot carry: running again would not help.
		return nil, fmt.Errorf("%w%s", err, kept("\n("+stage+" keeps what was fetched)"))
	}
	if err != nil {
		return nil, fmt.Errorf("fetching into %s%s: %w", stage, kept(" (kept: running the same command again fetches only what is missing)"), err)
	}
	st, err := registry.Open(stage)
	if err != nil {
		return nil, err
	}
	c, err := Pack(ctx, out, st, refs, opt)
	if c == nil {
		return nil, fmt.Errorf("%w%s", err, kept(" (the images fetched are kept in "+stage+")"))
	}
	if err == nil {
		err = skipped
	}
	if rerr := os.RemoveAll(stage); rerr != nil {
		return nil, rerr
	}
	return c, err
}
