package catalog_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/bale-project/bale/catalog"
)

// everyRecordCatalog holds every kind of record: tags, a pin, manifests, an index and its
// children, referrers and a cosign tag, and, as a patch, two bases, blobs expected from one,
// a layer not carried, removed tags and volumes.
func everyRecordCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, _, _ := referrersCatalog(t)
	f := newFixture()
	base1, base2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	c.Bases = []catalog.Base{{ID: base2, Name: "release-1.0.tar.zst", Order: 0}, {ID: base1, Name: "patch-1.1.tar.zst", Order: 1}}
	c.Blobs[sha(f.base.data)].Base = base2
	c.Blobs[sha(f.index.data)].Base = base1
	c.MarkNotCarried(sha(f.app.data))
	c.RemoveTag("app", "old", sha(f.single.data))
	c.RemoveTag("gone/repo", "1", sha(f.ociImage.data))
	c.Meta.Volumes = []catalog.Volume{{Name: "r.tar.zst.002", Size: 4096, Digest: sha([]byte("volume 2"))}}
	c.Meta.ID = c.ComputeID()
	if err := c.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

// TestFormat4RoundTrip writes a catalog holding every kind of record as format 4 and reads it
// back: the same records and id, in the flat layout (no bucket per repository), and the same
// as the reader of formats 1 to 3 makes of the catalog written as bale 0.3 wrote it.
func TestFormat4RoundTrip(t *testing.T) {
	c := everyRecordCatalog(t)
	p, _ := writeCatalog(t, c)
	got, err := catalog.Read(p)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got.Meta.Format != 4 {
		t.Errorf("format %d, want 4", got.Meta.Format)
	}
	if d := catalogDiff(got, c); d != "" {
		t.Errorf("Read(Write(c)) differs:\n%s", d)
	}
	if err := got.Validate(); err != nil || got.ComputeID() != c.Meta.ID {
		t.Errorf("read back: Validate %v, id %s, want %s", err, got.ComputeID(), c.Meta.ID)
	}
	if !got.IsPatch() || len(got.Removals()) != 2 || !got.Blobs[sha(newFixture().app.data)].NotCarried {
		t.Errorf("patch records lost: bases %v, removals %v", got.Bases, got.Removals())
	}

	// The layout, read with bbolt itself: one bucket per kind, keys <repo>\x00<name>.
	db, err := bolt.Open(p, 0o444, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte("v1"))
		var names []string
		if err := v1.ForEachBucket(func(k []byte) error { names = append(names, string(k)); return nil }); err != nil {
			return err
		}
		if want := "bases blobs manifests meta pinned referrers removed revisions tags"; strings.Join(names, " ") != want {
			t.Errorf("buckets of v1: %v, want %s", names, want)
		}
		f := newFixture()
		if v := v1.Bucket([]byte("tags")).Get([]byte("app\x00v1")); string(v) != string(sha(f.single.data)) {
			t.Errorf("tags app\\x00v1 = %q", v)
		}
		if v := v1.Bucket([]byte("removed")).Get([]byte("gone/repo\x001")); string(v) != string(sha(f.ociImage.data)) {
			t.Errorf("removed gone/repo\\x001 = %q", v)
		}
		if v := v1.Bucket([]byte("pinned")).Get([]byte("app\x00" + string(sha(f.ociImage.data)))); v == nil {
			t.Error("pinned app@oci image missing")
		}
		if v := v1.Bucket([]byte("revisions")).Get([]byte("a/b/multi\x00" + string(sha(f.arm.data)))); v == nil {
			t.Error("revision a/b/multi@arm missing")
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The same catalog in the nested layout of formats 1 to 3 reads to the same records.
	old := filepath.Join(t.TempDir(), "old.db")
	if err := catalog.WriteNested(old, everyRecordCatalog(t), 3); err != nil {
		t.Fatal(err)
	}
	back, err := catalog.Read(old)
	if err != nil {
		t.Fatalf("Read of format 3: %v", err)
	}
	if back.Meta.Format != 3 {
		t.Errorf("format %d, want 3", back.Meta.Format)
	}
	back.Meta.Format = 4
	if d := catalogDiff(back, got); d != "" {
		t.Errorf("format 3 and format 4 read differently:\n%s", d)
	}
}

// TestFormat4Size: a catalog of many small repositories takes at most half the bytes of the
// same catalog in the layout of formats 1 to 3 (#19: at 20,000 tags 86.3 MB became 31.9 MB).
func TestFormat4Size(t *testing.T) {
	c := largeCatalog(t, 300, 2000)
	p, _ := writeCatalog(t, c)
	old := filepath.Join(t.TempDir(), "old.db")
	if err := catalog.WriteNested(old, largeCatalog(t, 300, 2000), 1); err != nil {
		t.Fatal(err)
	}
	a, b := fileSize(t, p), fileSize(t, old)
	t.Logf("format 4: %d bytes, format 1: %d bytes (%.2f)", a, b, float64(a)/float64(b))
	if a*2 > b {
		t.Errorf("format 4 takes %d bytes, more than half of the %d of format 1", a, b)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestReadFormat4Refuses: a format-4 catalog missing a bucket, or with a key that does not
// name a repository, is refused; so is either layout under the other's format.
func TestReadFormat4Refuses(t *testing.T) {
	flat := func(fn func(v1 *bolt.Bucket) error) string {
		p, _ := writeCatalog(t, newFixture().smallCatalog(t))
		return editFile(t, p, fn)
	}
	put := func(bucket, k, v string) func(v1 *bolt.Bucket) error {
		return func(v1 *bolt.Bucket) error {
			b, err := v1.CreateBucketIfNotExists([]byte(bucket))
			if err != nil {
				return err
			}
			return b.Put([]byte(k), []byte(v))
		}
	}
	d := string(sha([]byte("x")))
	for _, tt := range []struct {
		name, path, mention string
	}{
		{"no tags bucket", flat(deleteBucket("tags")), "tags"},
		{"no pinned bucket", flat(deleteBucket("pinned")), "pinned"},
		{"no revisions bucket", flat(deleteBucket("revisions")), "revisions"},
		{"no manifests bucket", flat(deleteBucket("manifests")), "manifests"},
		{"tag key without a repository", flat(put("tags", "v9", d)), "repository"},
		{"tag key with an empty repository", flat(put("tags", "\x00v9", d)), "repository"},
		{"tag key with an empty tag", flat(put("tags", "app\x00", d)), "repository"},
		{"referrer not JSON", flat(put("referrers", "app\x00"+d, "{")), "referrers"},
		{"format 3 in the flat layout", flat(setMeta("format", "3")), "repos"},
		{"format 4 in the nested layout", editCatalog(t, setMeta("format", "4")), "revisions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := catalog.Read(tt.path)
			if err == nil {
				t.Fatalf("Read succeeded: %+v", c.Meta)
			}
			if !errors.Is(err, catalog.ErrFormat) || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("err = %v, want ErrFormat mentioning %q", err, tt.mention)
			}
		})
	}
}

// TestReadCorruptFormat4 cuts the committed format-4 seed short (Read must refuse it) and
// damages the header of each of its pages (Read must not crash or hang), each in a child
// process (see TestReadCorruptCatalog).
func TestReadCorruptFormat4(t *testing.T) {
	seed := seedBytes(t, "small-catalog-format4")
	if _, err := catalog.Read(writeTemp(t, seed)); err != nil {
		t.Fatalf("the unchanged seed does not read: %v", err)
	}
	pages := len(seed) / catalog.PageSize
	for n := 1; n < pages; n++ {
		t.Run(fmt.Sprintf("truncated to %d of %d pages", n, pages), func(t *testing.T) {
			t.Parallel()
			readInChild(t, seed[:n*catalog.PageSize], true)
		})
	}
	// Every byte of every page header past the meta pages set to 0xff: Read must not crash or
	// hang (a changed freelist or free page may still read).
	for id := 2; id < pages; id++ {
		for off := range 16 {
			t.Run(fmt.Sprintf("page %d header byte %d", id, off), func(t *testing.T) {
				t.Parallel()
				b := append([]byte(nil), seed...)
				b[id*catalog.PageSize+off] = 0xff
				readInChild(t, b, false)
			})
		}
	}
}

// TestWriteKeepsOldFormat: a catalog read from a format-1 file and written back unchanged (as
// bale catalog -o BUNDLE does) is the file bale 0.3 wrote, byte for byte: the committed seed.
func TestWriteKeepsOldFormat(t *testing.T) {
	seed := seedBytes(t, "small-catalog")
	c, err := catalog.Read(writeTemp(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Format != 1 {
		t.Fatalf("the seed is format %d, want 1", c.Meta.Format)
	}
	_, b := writeCatalog(t, c)
	if !bytes.Equal(b, seed) {
		t.Errorf("written back, %d bytes differ from the %d of the seed at byte %d", len(b), len(seed), firstDiff(b, seed))
	}
}
