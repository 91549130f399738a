package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/registry"
)

// Kinds of location.
const (
	kindRegistry = "registry"
	kindDir      = "dir"
	kindBundle   = "bundle"
)

// location is a parsed LOCATION argument.
type location struct {
	Kind string
	Path string
}

func (l location) String() string { return l.Kind + ":" + l.Path }

// parseLocation parses registry:PATH, dir:PATH or a bare PATH, which is detected from what it
// holds. allowBundle says whether a bundle file is acceptable here.
func parseLocation(s string, allowBundle bool) (location, error) {
	for _, k := range []string{kindRegistry, kindDir} {
		if p, ok := strings.CutPrefix(s, k+":"); ok {
			if p == "" {
				return location{}, usagef("%q: no path after %s:", s, k)
			}
			return location{Kind: k, Path: p}, nil
		}
	}
	fi, err := os.Stat(s)
	if err != nil {
		return location{}, fmt.Errorf("%s: %w", s, err)
	}
	switch {
	case !fi.IsDir() && allowBundle:
		return location{Kind: kindBundle, Path: s}, nil
	case fi.IsDir() && registry.Is(s):
		return location{Kind: kindRegistry, Path: s}, nil
	case fi.IsDir() && dirtree.Is(s):
		return location{Kind: kindDir, Path: s}, nil
	}
	return location{}, usagef("%s holds neither registry storage (docker/registry/v2) nor a skopeo dir tree (<repo>:<tag>/manifest.json); write registry:%s or dir:%s", s, s, s)
}

// openSource opens a registry or dir location for reading.
func openSource(l location) (layout.Source, error) {
	switch l.Kind {
	case kindRegistry:
		return registry.Open(l.Path)
	case kindDir:
		return dirtree.Open(l.Path)
	}
	return nil, usagef("%s is a bundle; this command needs a registry: or dir: location", l.Path)
}
