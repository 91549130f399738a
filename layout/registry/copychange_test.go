package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// putImage writes an image of one layer holding text into st, linked in repo, untagged.
func putImage(t *testing.T, st *registry.Store, repo, text string) digest.Digest {
	t.Helper()
	put := func(b []byte, mt string) layout.Descriptor {
		d := layout.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := st.WriteBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := put([]byte(text), "application/vnd.oci.image.layer.v1.tar")
	cfg := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["`+string(layer.Digest)+`"]}}`), layout.MediaTypeOCIConfig)
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": layout.MediaTypeOCIManifest, "config": cfg, "layers": []layout.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	md := put(raw, layout.MediaTypeOCIManifest)
	m, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.LinkImage(repo, &layout.Image{Manifest: m}); err != nil {
		t.Fatal(err)
	}
	return md.Digest
}

// TestCopyWithSourceChanged: CopyWith keeps only a skeleton of each image it resolved and reads
// the image again when it writes it; a tag of the source moved in between fails that image
// ("the source changed"), and the destination gets no tag for it; a source left alone copies.
func TestCopyWithSourceChanged(t *testing.T) {
	dir := t.TempDir()
	src, err := registry.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := putImage(t, src, "app", "first"), putImage(t, src, "app", "second")
	if err := src.Tag("app", "v1", a); err != nil {
		t.Fatal(err)
	}
	ref := layout.Ref{Repo: "app", Tag: "v1"}

	dst := registry.New(filepath.Join(dir, "moved"))
	_, err = layout.CopyWith(context.Background(), src, dst, []layout.Ref{ref}, layout.CopyOptions{
		Begin: func(int, int64) { // resolved, nothing written yet: the tag moves
			if err := src.Tag("app", "v1", b); err != nil {
				t.Fatal(err)
			}
		},
	})
	if err == nil || !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "source changed") || !strings.Contains(err.Error(), a.String()) {
		t.Fatalf("copy of a tag moved during the copy: %v, want the source changed from %s (ErrNotFound)", err, a)
	}
	if _, err := os.Stat(filepath.Join(dir, "moved", "docker/registry/v2/repositories/app/_manifests/tags/v1")); !os.IsNotExist(err) {
		t.Errorf("the destination has tag app:v1 after the failed copy (%v)", err)
	}

	ok := registry.New(filepath.Join(dir, "ok"))
	if _, err := layout.CopyWith(context.Background(), src, ok, []layout.Ref{ref}, layout.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := ok.Resolve(ref); err != nil || got != b {
		t.Fatalf("copied app:v1 resolves to %s (%v), want %s", got, err, b)
	}
}
