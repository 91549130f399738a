package layout_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// sha is the sha256 digest of b, computed independently of go-digest and of the code under test.
func sha(b []byte) digest.Digest {
	s := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(s[:]))
}

// shaOf is sha of a string.
func shaOf(s string) digest.Digest { return sha([]byte(s)) }

// desc is the JSON text of a descriptor.
func desc(mt string, d digest.Digest, size int64) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, size)
}

// platDesc is the JSON text of an index child descriptor with a platform.
func platDesc(mt string, d digest.Digest, size int64, os, arch, variant string) string {
	p := fmt.Sprintf(`"platform":{"architecture":%q,"os":%q`, arch, os)
	if variant != "" {
		p += fmt.Sprintf(`,"variant":%q`, variant)
	}
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,%s}}`, mt, d, size, p)
}

// blob is a literal blob with its independently computed descriptor.
type blob struct {
	data []byte
	mt   string
}

func (b blob) digest() digest.Digest { return sha(b.data) }
func (b blob) json() string          { return desc(b.mt, b.digest(), int64(len(b.data))) }
func (b blob) descriptor() layout.Descriptor {
	return layout.Descriptor{MediaType: b.mt, Digest: b.digest(), Size: int64(len(b.data))}
}

const (
	dockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

var (
	cfgAmd64 = blob{[]byte(`{"architecture":"amd64","os":"linux","created":"2021-04-14T12:00:00Z"}`), layout.MediaTypeDockerConfig}
	cfgArm   = blob{[]byte(`{"architecture":"arm","os":"linux","variant":"v7","created":"2020-01-01T00:00:00Z"}`), layout.MediaTypeDockerConfig}
	cfgArm64 = blob{[]byte(`{"architecture":"arm64","os":"linux","variant":"v8"}`), layout.MediaTypeOCIConfig}
	layerA   = blob{[]byte("layer A bytes"), dockerLayer}
	layerB   = blob{[]byte("layer B bytes, a little longer"), dockerLayer}
	layerC   = blob{[]byte("layer C"), ociLayer}
)

// imageManifest returns the JSON of an image manifest of media type mt (omitted when
// withMT is false) naming cfg then layers.
func imageManifest(mt string, withMT bool, cfg blob, layers ...blob) []byte {
	var ls []string
	for _, l := range layers {
		ls = append(ls, l.json())
	}
	head := `{"schemaVersion":2,`
	if withMT {
		head += fmt.Sprintf(`"mediaType":%q,`, mt)
	}
	return []byte(head + `"config":` + cfg.json() + `,"layers":[` + strings.Join(ls, ",") + `]}`)
}

// indexManifest returns the JSON of an index of media type mt (omitted when withMT is false)
// with the given child descriptors (JSON texts).
func indexManifest(mt string, withMT bool, children ...string) []byte {
	head := `{"schemaVersion":2,`
	if withMT {
		head += fmt.Sprintf(`"mediaType":%q,`, mt)
	}
	return []byte(head + `"manifests":[` + strings.Join(children, ",") + `]}`)
}

func mustParse(t testing.TB, b []byte) *layout.Manifest {
	t.Helper()
	m, err := layout.ParseManifest(b)
	if err != nil {
		t.Fatalf("ParseManifest(%s): %v", b, err)
	}
	return m
}
