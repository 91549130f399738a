package archive_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive"
)

// TestWriteLeavesNoCatalogName: the catalog member is copied from a temporary file while the
// whole bundle is written, and that file has no name in $TMPDIR meanwhile, so a write that is
// killed (SIGKILL runs no deferred removal) leaves nothing behind.
func TestWriteLeavesNoCatalogName(t *testing.T) {
	fx := newFixture(t)
	c := fx.catalog(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	w := &tempWatcher{dir: tmp}
	if err := archive.Write(context.Background(), w, c, fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if w.writes == 0 || w.err != nil {
		t.Fatalf("the watcher saw %d writes (error %v)", w.writes, w.err)
	}
	if len(w.seen) > 0 {
		t.Errorf("while the bundle was written, $TMPDIR held %v", w.seen)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("after Write, $TMPDIR holds %d entries (%s ...)", len(left), left[0].Name())
	}
}

// tempWatcher is a bundle's destination that lists dir at every write and keeps the names of
// bale's catalog temporaries it finds there.
type tempWatcher struct {
	dir    string
	writes int
	seen   []string
	err    error
}

func (w *tempWatcher) Write(p []byte) (int, error) {
	w.writes++
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		w.err = err
		return 0, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "bale-catalog-") && !slices.Contains(w.seen, e.Name()) {
			w.seen = append(w.seen, e.Name())
		}
	}
	return len(p), nil
}
