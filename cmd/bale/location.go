package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/ocidir"
	"github.com/bale-project/bale/layout/registry"
	"github.com/bale-project/bale/layout/remote"
	"github.com/bale-project/bale/layout/s3store"
)

// Kinds of location.
const (
	kindRegistry = "registry"
	kindDir      = "dir"
	kindBundle   = "bundle"
	kindCatalog  = "catalog"
	kindOCI      = "oci"
	kindDocker   = "docker" // a live registry, docker://HOST[:PORT][/PREFIX]
)

// location is a parsed LOCATION argument.
type location struct {
	Kind string
	Path string
}

func (l location) String() string {
	if l.Kind == kindDocker || l.Kind == kindS3 {
		return l.Path
	}
	return l.Kind + ":" + l.Path
}

// parseLocation parses registry:PATH, dir:PATH or a bare PATH, which is detected from what it
// holds. allowBundle says whether a bundle file is acceptable here.
func parseLocation(s string, allowBundle bool) (location, error) {
	if remote.Is(s) {
		return location{Kind: kindDocker, Path: s}, nil
	}
	if strings.HasPrefix(s, s3store.Scheme) {
		return location{Kind: kindS3, Path: s}, nil
	}
	for _, k := range append([]string{kindRegistry, kindDir, kindOCI, kindOCIArchive, kindDockerArchive}, artifactKinds...) {
		if p, ok := strings.CutPrefix(s, k+":"); ok {
			if p == "" {
				return location{}, usagef("%q: no path after %s:", s, k)
			}
			return location{Kind: k, Path: p}, nil
		}
	}
	if first := archive.FirstVolume(s); first != "" && allowBundle {
		return location{Kind: kindBundle, Path: s}, nil // a bundle split into volumes
	}
	fi, err := os.Stat(s)
	if err != nil {
		return location{}, fmt.Errorf("%s: %w", s, err)
	}
	switch {
	case !fi.IsDir() && isTarFile(s):
		return location{}, usagef("%s is a tar file: write oci-archive:%s or docker-archive:%s", s, s, s)
	case !fi.IsDir() && allowBundle:
		return location{Kind: fileKind(s), Path: s}, nil
	case fi.IsDir() && registry.Is(s):
		return location{Kind: kindRegistry, Path: s}, nil
	case fi.IsDir() && ocidir.Is(s):
		return location{Kind: kindOCI, Path: s}, nil
	case fi.IsDir() && dirtree.Is(s):
		return location{Kind: kindDir, Path: s}, nil
	}
	return location{}, usagef("%s holds no registry storage (docker/registry/v2), skopeo dir tree (<repo>:<tag>/manifest.json) or OCI layout (oci-layout); write registry:%s, dir:%s or oci:%s", s, s, s, s)
}

// openSource opens a registry or dir location for reading.
func openSource(cx *cli.Context, l location) (layout.Source, error) {
	switch l.Kind {
	case kindRegistry:
		return registry.Open(l.Path)
	case kindDir:
		return dirtree.Open(l.Path)
	case kindOCI:
		return ocidir.Open(l.Path)
	case kindOCIArchive, kindDockerArchive, kindBundle:
		return openArchiveSource(l)
	case kindS3:
		return openS3(cx, l)
	case kindDocker:
		r, err := remote.Open(l.Path, remote.Options{})
		if err != nil {
			return nil, usageError{err}
		}
		return r, nil
	}
	if l.Kind == kindFiles || l.Kind == kindCharts {
		return nil, usagef("%s is written, not read: %s: is a destination of unpack and copy only", l, l.Kind)
	}
	return nil, usagef("%s is a %s file; this command needs a registry:, dir: or oci: location", l.Path, l.Kind)
}

// destination is a location written to: images go in with PutImage, and the counter says how
// many files had to be copied because hard links were impossible.
type destination interface {
	layout.Sink
	layout.Remover
	Root() string
}

// openDestination names a registry:, dir: or oci: location to write, creating nothing yet.
func openDestination(cx *cli.Context, l location) (destination, error) {
	switch l.Kind {
	case kindRegistry:
		return registry.New(l.Path), nil
	case kindDir:
		return dirtree.New(l.Path), nil
	case kindOCI:
		return ocidir.New(l.Path)
	case kindFiles, kindCharts:
		return openArtifactDir(l), nil
	case kindS3:
		st, err := openS3(cx, l)
		if err != nil {
			return nil, err
		}
		return s3Destination{st}, nil
	}
	return nil, usagef("%s is a %s; write into registry:PATH, dir:PATH or oci:PATH", l.Path, l.Kind)
}

// copiedFiles is how many files d had to copy instead of hard-linking.
func copiedFiles(d layout.Sink) int {
	switch x := d.(type) {
	case *registry.Store:
		return x.Copied
	case *dirtree.Tree:
		return x.Copied
	case *ocidir.Layout:
		return x.Copied
	}
	return 0
}

// zstdMagic starts every zstd frame, so every bundle.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// fileKind tells a bundle (zstd) from a catalog file (anything else; reading it will say if
// it is not a catalog).
func fileKind(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return kindBundle
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(f, head); err == nil && !bytes.Equal(head, zstdMagic) {
		return kindCatalog
	}
	return kindBundle
}

// loadCatalog reads a bundle's catalog (its head only), a catalog file, or builds the
// catalog of a registry or dir location.
func loadCatalog(cx *cli.Context, loc location) (*catalog.Catalog, error) {
	switch loc.Kind {
	case kindBundle:
		return archive.ReadCatalog(loc.Path)
	case kindCatalog:
		c, err := catalog.Read(loc.Path)
		if err != nil {
			return nil, fmt.Errorf("%s is neither a bundle nor a catalog: %w", loc.Path, err)
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", loc.Path, err)
		}
		return c, nil
	}
	src, err := openSource(cx, loc)
	if err != nil {
		return nil, err
	}
	return catalog.OfSource(src)
}

// loadCatalogArg parses a BUNDLE|CATALOG|LOCATION argument and loads its catalog.
func loadCatalogArg(cx *cli.Context, arg string) (location, *catalog.Catalog, error) {
	loc, err := parseLocation(arg, true)
	if err != nil {
		return loc, nil, err
	}
	c, err := loadCatalog(cx, loc)
	return loc, c, err
}
