package catalog

import (
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Kind says whether manifest d of repo is an image, a Helm chart or a file artifact
// (layout.KindOf), from the catalog's records alone: the manifest's media type, its config
// blob's media type and its number of layers. Nothing is read.
func (c *Catalog) Kind(repo string, d digest.Digest) layout.Kind {
	m := c.Manifests[d]
	if m == nil || len(m.Blobs) == 0 {
		return layout.KindImage
	}
	cfg := ""
	if b := c.Blobs[m.Blobs[0]]; b != nil {
		cfg = b.MediaType
	}
	return layout.KindOf(repo, m.MediaType, cfg, len(m.Blobs)-1)
}
