package catalog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

func writeCatalog(t testing.TB, c *catalog.Catalog) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.db")
	if err := catalog.Write(p, c); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestWriteReadRoundTrip(t *testing.T) {
	f := newFixture()
	for _, tt := range []struct {
		name string
		c    *catalog.Catalog
	}{
		{"small", f.smallCatalog(t)},
		{"large", largeCatalog(t, 300, 2000)},
		{"empty", func() *catalog.Catalog {
			c := catalog.New()
			c.Meta.ID = c.ComputeID()
			return c
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := writeCatalog(t, tt.c)
			got, err := catalog.Read(p)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			// Read gives UTC time of second precision, like Write stores it.
			if d := catalogDiff(got, tt.c); d != "" {
				t.Errorf("Read(Write(c)) differs:\n%s", d)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("read catalog does not validate: %v", err)
			}
			if got.ComputeID() != tt.c.Meta.ID {
				t.Errorf("read catalog id %s, written %s", got.ComputeID(), tt.c.Meta.ID)
			}
		})
	}
}

func TestWriteDeterministic(t *testing.T) {
	f := newFixture()
	for _, tt := range []struct {
		name     string
		build    func() *catalog.Catalog
		minPages int
	}{
		{"small", func() *catalog.Catalog { return f.smallCatalog(t) }, 4},
		// Big enough that no bucket is inline and several need branch pages.
		{"large", func() *catalog.Catalog { return largeCatalog(t, 300, 2000) }, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c1, c2 := tt.build(), tt.build()
			_, a := writeCatalog(t, c1)
			_, b := writeCatalog(t, c1) // the same catalog again
			_, c := writeCatalog(t, c2) // an equal catalog built anew
			if !bytes.Equal(a, b) {
				t.Errorf("two writes of one catalog differ (%d and %d bytes, first difference at %d)", len(a), len(b), firstDiff(a, b))
			}
			if !bytes.Equal(a, c) {
				t.Errorf("writes of two equal catalogs differ (%d and %d bytes, first difference at %d)", len(a), len(c), firstDiff(a, c))
			}
			if len(a)%catalog.PageSize != 0 || len(a)/catalog.PageSize < tt.minPages {
				t.Errorf("file of %d bytes, want a multiple of %d and at least %d pages", len(a), catalog.PageSize, tt.minPages)
			}
		})
	}
}

func TestWriteSmallOrderIndependent(t *testing.T) {
	// Adding the same images in another order gives the same file.
	f := newFixture()
	c1 := f.smallCatalog(t)
	c2 := catalog.New()
	c2.Add("a/b/multi", "1.0", f.image(t, f.index), nil)
	c2.Add("app", "", f.image(t, f.ociImage), nil)
	c2.Add("app", "latest", f.image(t, f.single), platformsOf(f))
	c2.Add("app", "v1", f.image(t, f.single), platformsOf(f))
	c2.Meta = c1.Meta
	_, a := writeCatalog(t, c1)
	_, b := writeCatalog(t, c2)
	if !bytes.Equal(a, b) {
		t.Errorf("catalogs of the same images added in another order differ at byte %d", firstDiff(a, b))
	}
}

func platformsOf(f fixture) map[digest.Digest]layout.Platform {
	return map[digest.Digest]layout.Platform{sha(f.single.data): {OS: "linux", Architecture: "amd64"}}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// boltFile creates a bbolt database at a new path and fills it with fn.
func boltFile(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.db")
	db, err := bolt.Open(p, 0o644, &bolt.Options{PageSize: catalog.PageSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// editCatalog writes the small fixture catalog in the layout of formats 1 to 3 (format 1) and
// then changes it with fn.
func editCatalog(t *testing.T, fn func(v1 *bolt.Bucket) error) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.db")
	if err := catalog.WriteNested(p, newFixture().smallCatalog(t), 1); err != nil {
		t.Fatal(err)
	}
	return editFile(t, p, fn)
}

// editFile changes the catalog at p with fn in one Update.
func editFile(t *testing.T, p string, fn func(v1 *bolt.Bucket) error) string {
	t.Helper()
	db, err := bolt.Open(p, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("v1"))) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func setMeta(key, value string) func(v1 *bolt.Bucket) error {
	return func(v1 *bolt.Bucket) error {
		if value == "<delete>" {
			return v1.Bucket([]byte("meta")).Delete([]byte(key))
		}
		return v1.Bucket([]byte("meta")).Put([]byte(key), []byte(value))
	}
}

func deleteBucket(path ...string) func(v1 *bolt.Bucket) error {
	return func(v1 *bolt.Bucket) error {
		b := v1
		for _, p := range path[:len(path)-1] {
			b = b.Bucket([]byte(p))
		}
		return b.DeleteBucket([]byte(path[len(path)-1]))
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, good := writeCatalog(t, newFixture().smallCatalog(t))
	tests := []struct {
		name    string
		path    string
		format  bool   // the error must be ErrFormat
		mention string // and mention this
	}{
		{"empty file", file("empty", nil), true, ""},
		{"tiny file", file("tiny", []byte("bale")), true, ""},
		{"text file", file("text", bytes.Repeat([]byte("not a database\n"), 1000)), true, ""},
		{"zeros", file("zeros", make([]byte, 4*catalog.PageSize)), true, ""},
		{"a tar file", file("tar", append([]byte("bale/catalog.db\x00"), make([]byte, 10000)...)), true, ""},
		{"truncated to one page", file("trunc", good[:catalog.PageSize]), true, ""},
		{"missing file", filepath.Join(dir, "nope"), false, ""},
		{"directory", dir, false, ""},
		{"bbolt without v1", boltFile(t, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("v2"))
			return err
		}), true, "v1"},
		{"empty bbolt", boltFile(t, func(tx *bolt.Tx) error { return nil }), true, ""},
		{"v1 without meta", boltFile(t, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("v1"))
			return err
		}), true, "meta"},
		{"format 6", editCatalog(t, setMeta("format", "6")), true, "a newer bale may read it"},
		{"format 5 nested", editCatalog(t, setMeta("format", "5")), true, "revisions"},
		{"list in format 3", editCatalog(t, setMeta("list", `{"size":10,"digest":"sha256:`+strings.Repeat("a", 64)+`"}`)), true, "format 5 brought it"},
		{"format 02", editCatalog(t, setMeta("format", "02")), true, "a newer bale may read it"},
		{"format 10", editCatalog(t, setMeta("format", "10")), true, "a newer bale may read it"},
		{"format 01", editCatalog(t, setMeta("format", "01")), true, ""},
		{"format with newline", editCatalog(t, setMeta("format", "1\n")), true, ""},
		{"format 0", editCatalog(t, setMeta("format", "0")), true, ""},
		{"format missing", editCatalog(t, setMeta("format", "<delete>")), true, ""},
		{"created missing", editCatalog(t, setMeta("created", "<delete>")), true, "created"},
		{"created not RFC 3339", editCatalog(t, setMeta("created", "yesterday")), true, "created"},
		{"no manifests bucket", editCatalog(t, deleteBucket("manifests")), true, "manifests"},
		{"no blobs bucket", editCatalog(t, deleteBucket("blobs")), true, "blobs"},
		{"no repos bucket", editCatalog(t, deleteBucket("repos")), true, "repos"},
		{"repo without tags bucket", editCatalog(t, deleteBucket("repos", "app", "tags")), true, "app"},
		{"repo without pinned bucket", editCatalog(t, deleteBucket("repos", "app", "pinned")), true, "app"},
		{"repo without manifests bucket", editCatalog(t, deleteBucket("repos", "a/b/multi", "manifests")), true, "a/b/multi"},
		{"manifest record not JSON", editCatalog(t, func(v1 *bolt.Bucket) error {
			b := v1.Bucket([]byte("manifests"))
			k, _ := b.Cursor().First()
			return b.Put(k, []byte("{not json"))
		}), true, "manifests"},
		{"blob record of the wrong type", editCatalog(t, func(v1 *bolt.Bucket) error {
			b := v1.Bucket([]byte("blobs"))
			k, _ := b.Cursor().First()
			return b.Put(k, []byte(`{"size":"big"}`))
		}), true, "blobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := catalog.Read(tt.path)
			if err == nil {
				t.Fatalf("Read succeeded: %+v", c.Meta)
			}
			if tt.format && !errors.Is(err, catalog.ErrFormat) {
				t.Errorf("err = %v, want ErrFormat", err)
			}
			if tt.mention != "" && !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestReadLeniency(t *testing.T) {
	// The reader ignores unknown meta keys, unknown JSON fields and non-bucket keys in repos,
	// and accepts any RFC 3339 time (§5 of docs/bundle-format.md).
	p := editCatalog(t, func(v1 *bolt.Bucket) error {
		if err := v1.Bucket([]byte("meta")).Put([]byte("zzz"), []byte("future")); err != nil {
			return err
		}
		if err := v1.Bucket([]byte("meta")).Put([]byte("created"), []byte("2022-06-01T12:20:30+02:00")); err != nil {
			return err
		}
		if err := v1.Bucket([]byte("repos")).Put([]byte("not-a-bucket"), []byte("x")); err != nil {
			return err
		}
		b := v1.Bucket([]byte("blobs"))
		k, v := b.Cursor().First()
		return b.Put(k, append(bytes.TrimSuffix(append([]byte(nil), v...), []byte("}")), []byte(`,"future":1}`)...))
	})
	c, err := catalog.Read(p)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if want := newFixture().smallCatalog(t); !c.Meta.Created.Equal(want.Meta.Created) {
		t.Errorf("Created = %v, want %v", c.Meta.Created, want.Meta.Created)
	}
	if _, ok := c.Repos["not-a-bucket"]; ok {
		t.Error("a non-bucket key in repos became a repository")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
