package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/units"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check that every tag resolves and every blob is present with the right size and sha256",
		ArgsUsage: "BUNDLE|LOCATION",
		Description: `For a bundle: reads it whole, checking the catalog, every member's name, type and order, and
every blob's size and sha256.
For a registry storage dir or a skopeo dir tree: every tag resolves, every manifest parses and
matches its digest, every referenced blob is present with the right size and sha256, and (in
registry storage) every link the registry needs to serve the image exists.
Prints every problem found and exits non-zero if there is any.

` + exitCodesHelp,
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "BUNDLE|LOCATION"); err != nil {
				return err
			}
			loc, err := parseLocation(cx.Args().First(), true)
			if err != nil {
				return err
			}
			var (
				c        *catalog.Catalog
				problems []error
			)
			switch loc.Kind {
			case kindCatalog:
				return usagef("%s is a catalog file: it holds no content to verify", loc.Path)
			case kindBundle:
				c, problems = archive.VerifyFile(cx.Context, loc.Path)
			default:
				c, problems = verifyLocation(loc)
			}
			for _, p := range problems {
				fmt.Fprintf(cx.App.ErrWriter, "problem: %v\n", p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s: %d problem(s) found: %w", loc, len(problems), errors.Join(problems...))
			}
			fmt.Fprintf(cx.App.Writer, "%s: OK, %d images, %d blobs (%s) verified\n",
				loc, len(c.Entries()), len(c.CarriedBlobs()), units.Bytes(c.CarriedBytes()))
			if n := len(c.ExpectedBlobs()); n > 0 {
				fmt.Fprintf(cx.App.Writer, "patch: %d more blobs are expected from its bases (checked when it is unpacked)\n", n)
			}
			return nil
		},
	}
}

func verifyLocation(loc location) (*catalog.Catalog, []error) {
	src, err := openSource(loc)
	if err != nil {
		return nil, []error{err}
	}
	c, problems := catalog.VerifySource(src)
	if store, ok := src.(*registry.Store); ok && c != nil {
		for _, e := range c.Entries() {
			img, err := layout.LoadImage(store, e.Repo, e.Digest)
			if err != nil {
				continue // already reported
			}
			problems = append(problems, store.CheckLinks(e.Repo, img)...)
		}
	}
	return c, problems
}
