package archive_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bale-project/bale/archive"
)

// TestCatalogReadOnce: unpack reads a bundle's catalog before its blobs, and the reader of the
// blobs takes that catalog rather than decode a second copy (60 MB at 20,000 tags) when the
// catalog member's bytes are the same; told another sha256, it decodes its own.
func TestCatalogReadOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(path, newFixture(t).bundle(t), 0o644); err != nil {
		t.Fatal(err)
	}
	reused, err := archive.CatalogReused(path, false)
	if err != nil || !reused {
		t.Errorf("same catalog member: reused %v, %v; want the catalog read first", reused, err)
	}
	reused, err = archive.CatalogReused(path, true)
	if err != nil || reused {
		t.Errorf("another sha256: reused %v, %v; want a catalog decoded anew", reused, err)
	}
}
