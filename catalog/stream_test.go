package catalog_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bale-project/bale/catalog"
)

// TestStreamWalk reads a format-4 catalog one repository at a time: every repository as the
// whole catalog has it, each with the records it needs (it validates alone), the id of §6 and
// the blob totals as ComputeID and the whole catalog give them.
func TestStreamWalk(t *testing.T) {
	for name, c := range map[string]*catalog.Catalog{
		"every record": everyRecordCatalog(t),
		"large":        largeCatalog(t, 300, 2000),
	} {
		t.Run(name, func(t *testing.T) {
			p, _ := writeCatalog(t, c)
			s, err := catalog.OpenStream(p, "c.db")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !reflect.DeepEqual(s.Meta, c.Meta) || !reflect.DeepEqual(s.Bases, c.Bases) {
				t.Errorf("meta %+v, bases %v", s.Meta, s.Bases)
			}
			var names []string
			res, err := s.Walk(func(sub *catalog.Catalog) error {
				if len(sub.Repos) != 1 {
					t.Fatalf("%d repositories at once", len(sub.Repos))
				}
				for n, r := range sub.Repos {
					names = append(names, n)
					if !reflect.DeepEqual(r, c.Repos[n]) {
						t.Errorf("repository %s = %+v, want %+v", n, r, c.Repos[n])
					}
					for _, d := range r.Manifests {
						got, _ := json.Marshal(sub.Manifests[d]) // ManifestRecord has unexported build state
						want, _ := json.Marshal(c.Manifests[d])
						if string(got) != string(want) || !reflect.DeepEqual(sub.Blobs[d], c.Blobs[d]) {
							t.Errorf("repository %s: records of %s differ", n, d)
						}
						for _, b := range c.Manifests[d].Blobs {
							if !reflect.DeepEqual(sub.Blobs[b], c.Blobs[b]) {
								t.Errorf("repository %s: blob %s = %+v", n, b, sub.Blobs[b])
							}
						}
					}
				}
				if err := sub.Validate(); err != nil {
					t.Errorf("%v: Validate: %v", names[len(names)-1], err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := c.RepoNames(); !reflect.DeepEqual(names, want) {
				t.Errorf("repositories %v, want %v", names, want)
			}
			if res.ID != c.Meta.ID || res.ID != c.ComputeID() {
				t.Errorf("id %s, want %s", res.ID, c.Meta.ID)
			}
			if res.Blobs != len(c.Blobs) || res.BlobBytes != c.TotalBlobBytes() ||
				res.CarriedBlobs != len(c.CarriedBlobs()) || res.CarriedBytes != c.CarriedBytes() {
				t.Errorf("totals %+v", res)
			}
		})
	}
}

// TestStreamRefusesNested: OpenStream leaves catalogs of format 1 to 3 to Read.
func TestStreamRefusesNested(t *testing.T) {
	p := filepath.Join(t.TempDir(), "old.db")
	if err := catalog.WriteNested(p, newFixture().smallCatalog(t), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.OpenStream(p, "old.db"); !errors.Is(err, catalog.ErrNested) {
		t.Errorf("OpenStream of format 1: %v, want ErrNested", err)
	}
}
