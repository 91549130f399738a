package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/catalog"
)

func catalogCommand() *cli.Command {
	return &cli.Command{
		Name:      "catalog",
		Usage:     "write the catalog of what a location (or bundle) holds, to build an exact patch against it",
		ArgsUsage: "LOCATION|BUNDLE",
		Description: `Writes the catalog (tags, manifests, blobs; a few hundred KB) of a registry storage dir, a
skopeo dir tree or a bundle to FILE. An air-gapped site sends it back to the build side, which
makes a patch that carries exactly what the site lacks:

   site:   bale catalog -o site.db registry:/var/lib/docker-registry
   build:  bale pack --base site.db -o patch.tar.zst registry:/srv/release-1.1
   site:   bale unpack --to registry:/var/lib/docker-registry patch.tar.zst

` + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the catalog to `FILE`"},
		},
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "LOCATION|BUNDLE"); err != nil {
				return err
			}
			out := cx.String("output")
			if out == "" {
				return usagef("catalog needs -o FILE (see bale catalog --help)")
			}
			loc, c, err := loadCatalogArg(cx, cx.Args().First())
			if err != nil {
				return err
			}
			if c.Meta.BaleVersion == "" {
				c.Meta.BaleVersion = version
			}
			if err := writeCatalogFile(out, c); err != nil {
				return err
			}
			fmt.Fprintf(cx.App.ErrWriter, "wrote the catalog of %s (%s, %d blobs, id %s) to %s\n",
				loc, imagesSummary(c), len(c.Blobs), c.Meta.ID, out)
			return nil
		},
	}
}

// writeCatalogFile writes c to path through a temporary file and a rename. A catalog file is
// at most format 4: the catalog of a format-5 bundle is written without its meta/list (the
// list member is a bundle's, not a catalog file's).
func writeCatalogFile(path string, c *catalog.Catalog) error {
	if c.Meta.Format > catalog.FormatCatalog {
		c.Meta.Format, c.Meta.List = catalog.FormatCatalog, nil
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".bale-tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "catalog.db")
	if err := catalog.Write(tmp, c); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
