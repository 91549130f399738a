package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// TestPackCancelled: an interrupted pack returns the context's error and leaves no file.
func TestPackCancelled(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := archive.Pack(ctx, filepath.Join(out, "b.tar.zst"), fx.store, nil, archive.PackOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pack with a cancelled context: %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}

// TestUnpackCancelled: an unpack cancelled after some blobs leaves verified blobs only, no
// link and no tag, and a re-run completes it.
func TestUnpackCancelled(t *testing.T) {
	fx := newFixture(t)
	bundle := fx.bundle(t)
	_, dst := newTarget(t)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	first, err := archive.Unpack(ctx, bytes.NewReader(bundle), dst, archive.UnpackOptions{
		Progress: func(_ layout.Descriptor, _ bool) {
			if n++; n == 2 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Unpack cancelled: %v, want context.Canceled", err)
	}
	if links := linkFiles(t, dst.Root()); len(links) != 0 {
		t.Fatalf("a cancelled unpack wrote links: %v", sortedKeys(links))
	}
	checkNoTemp(t, dst.Root())
	res, err := archive.Unpack(context.Background(), bytes.NewReader(bundle), dst, archive.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Blobs already in the pipeline when the cancel came are finished, verified, and kept.
	if total := len(fx.catalog(t).CarriedBlobs()); first.BlobsWritten < 2 || first.BlobsWritten >= total {
		t.Errorf("the cancelled run wrote %d of %d blobs, want at least 2 and not all", first.BlobsWritten, total)
	}
	if res.BlobsReused != first.BlobsWritten {
		t.Errorf("re-run reused %d blobs, want the %d written before the cancel", res.BlobsReused, first.BlobsWritten)
	}
	checkTagsComplete(t, dst.Root())
	var _ *registry.Store = dst
}
