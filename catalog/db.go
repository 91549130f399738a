package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// PageSize is the bbolt page size of every catalog bale writes.
const PageSize = 4096

// ErrFormat reports a catalog that is not a bale catalog, or one of a format this bale does
// not know.
var ErrFormat = errors.New("not a bale catalog of a known format")

// Write stores c as a new bbolt database at path (which must not exist), in the layout of
// c.Meta.Format: a catalog built anew is settled to format 4 (flat buckets, pages filled
// whole); a catalog read from a bundle of format 1 to 3 and written unchanged (bale catalog -o
// BUNDLE) keeps its format and is written as bale 0.3 wrote it, byte for byte, so that what
// it means to older bales does not change. Equal catalogs give byte-identical files: bbolt
// allocates pages while it walks a Go map of the buckets changed in a transaction, so each
// Update changes one bucket path only, and keys go in sorted order.
func Write(path string, c *Catalog) error {
	c.settle()
	// A fixed page size, so the file does not depend on the writer's OS page size. The map is
	// made large enough at once (address space only: the file grows as pages are written, and
	// NoGrowSync keeps bbolt from growing it ahead): each time bbolt grows its map it copies
	// every key and value of the transaction out of the old one onto the heap, 18 MB at
	// 20,000 tags. The file's bytes do not depend on it.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second, NoGrowSync: true, PageSize: PageSize, InitialMmapSize: writeMapSize(c)})
	if err != nil {
		return fmt.Errorf("creating catalog %s: %w", path, err)
	}
	// A temporary file, synced by its reader's rename or not at all: no fsync per transaction.
	db.NoSync = true
	for _, step := range writeSteps(c) {
		if err = db.Update(step); err != nil {
			break
		}
	}
	if err == nil {
		err = db.Sync()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing catalog %s: %w", path, err)
	}
	return nil
}

// writeMapSize is the size of Write's memory map of c: 1 KiB a blob and two a manifest (a
// catalog takes about 220 bytes a record: 32 MB at 20,000 tags, mapped as 125 MB), so that
// bbolt need not grow it, and at most 1 GiB (bbolt grows it further if needed).
func writeMapSize(c *Catalog) int {
	return min(1<<20+(len(c.Blobs)+2*len(c.Manifests))<<10, 1<<30)
}

// kv is one key and value to put.
type kv struct{ k, v []byte }

// writeSteps returns the transactions that write c, each filling one new bucket at the end of
// a path of existing ones.
func writeSteps(c *Catalog) []func(*bolt.Tx) error {
	nested := c.Meta.Format < formatFlat
	fill := func(items []kv, path ...[]byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(path[0])
			if err != nil {
				return err
			}
			for _, name := range path[1:] {
				if b, err = b.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if !nested {
				// Keys go in sorted order: pages filled whole, not split in halves.
				b.FillPercent = 1.0
			}
			for _, it := range items {
				if err := b.Put(it.k, it.v); err != nil {
					return err
				}
			}
			return nil
		}
	}
	meta := []kv{ // sorted keys: bale, created, format, id, list, signatures, volumes
		{keyBale, []byte(c.Meta.BaleVersion)},
		{keyCreated, []byte(c.Meta.Created.UTC().Format(time.RFC3339))},
		{keyFormat, []byte(strconv.Itoa(c.Meta.Format))},
		{keyID, []byte(c.Meta.ID)},
	}
	if c.Meta.List != nil {
		meta = append(meta, kv{keyList, mustJSON(c.Meta.List)})
	}
	if len(c.Meta.Signatures) > 0 {
		meta = append(meta, kv{keySignatures, mustJSON(c.Meta.Signatures)})
	}
	if len(c.Meta.Volumes) > 0 {
		meta = append(meta, kv{keyVolumes, mustJSON(c.Meta.Volumes)})
	}
	// The records of a bucket are encoded when its step runs: one bucket's at a time in memory.
	lazy := func(items func() []kv, path ...[]byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return fill(items(), path...)(tx) }
	}
	sorted := c.SortedBlobs()
	steps := []func(*bolt.Tx) error{
		fill(meta, bucketV1, bucketMeta),
		lazy(func() []kv {
			manifests := make([]kv, 0, len(c.Manifests))
			for _, d := range sorted {
				if m := c.Manifests[d]; m != nil {
					manifests = append(manifests, kv{[]byte(d), mustJSON(m)})
				}
			}
			return manifests
		}, bucketV1, bucketManifests),
		lazy(func() []kv {
			blobs := make([]kv, 0, len(sorted))
			for _, d := range sorted {
				blobs = append(blobs, kv{[]byte(d), mustJSON(c.Blobs[d])})
			}
			return blobs
		}, bucketV1, bucketBlobs),
	}
	if nested {
		steps = append(steps, fill(nil, bucketV1, bucketRepos))
	}
	if len(c.Bases) > 0 {
		var bases []kv
		for _, b := range c.Bases {
			bases = append(bases, kv{[]byte(b.ID), mustJSON(b)})
		}
		slices.SortFunc(bases, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		steps = append(steps, fill(bases, bucketV1, bucketBases))
	}
	if nested {
		return append(steps, nestedSteps(c, fill)...)
	}
	return append(steps, flatSteps(c, lazy)...)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // records are plain structs
	}
	return b
}

// Read loads the catalog database at path in one View. It refuses files that are not bbolt,
// lack the v1 schema, or declare another format version. It does not call Validate.
func Read(path string) (*Catalog, error) {
	return ReadAs(path, path)
}

// ReadAs is Read with errors naming the catalog name instead of its temporary path.
func ReadAs(path, name string) (*Catalog, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	} else if fi.Size() < 1024 {
		return nil, fmt.Errorf("catalog %s: %d bytes, too small for a database: %w", name, fi.Size(), ErrFormat)
	}
	c := New()
	if err := readDB(path, c); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	return c, nil
}

// readDB opens the database and reads it in one View, after bbolt's own consistency check.
// bbolt panics (or faults on its memory map) on some corrupt files; a catalog comes from an
// untrusted bundle, so both are turned into ErrFormat.
func readDB(path string, c *Catalog) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt database (%v): %w", r, ErrFormat)
		}
	}()
	if err := checkFile(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrFormat)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		// Not tx.Check: it walks the pages in a goroutine of its own, where a fault on a
		// damaged file would crash the process instead of reaching the recover above.
		if fi, err := os.Stat(path); err != nil || tx.Size() > fi.Size() {
			return fmt.Errorf("the database claims %d bytes, the file is shorter: %w", tx.Size(), ErrFormat)
		}
		return readTx(tx, c)
	})
}

// checkFile runs checkPages over the file mapped read-only, and unmaps it before bbolt maps it
// in turn: reading it into memory instead held the whole catalog twice at once (87 MB at
// 20,000 tags, on top of bbolt's map and the records read from it).
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() <= 0 || fi.Size() > math.MaxInt {
		return fmt.Errorf("%d bytes: %w", fi.Size(), ErrFormat)
	}
	raw, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping %s: %w", path, err)
	}
	defer unix.Munmap(raw)
	if err := checkPages(raw); err != nil {
		return fmt.Errorf("not a sound bbolt database: %v: %w", err, ErrFormat)
	}
	return nil
}

func readTx(tx *bolt.Tx, c *Catalog) error {
	if err := readHead(tx, c); err != nil {
		return err
	}
	v1 := tx.Bucket(bucketV1)
	in := interner{}
	if err := eachJSON(v1.Bucket(bucketBlobs), "blobs", func(d digest.Digest, v []byte) error {
		b := &BlobRecord{}
		if err := json.Unmarshal(v, b); err != nil {
			return err
		}
		b.MediaType = in.str(b.MediaType)
		c.Blobs[in.digest(d)] = b
		return nil
	}); err != nil {
		return err
	}
	if err := eachJSON(v1.Bucket(bucketManifests), "manifests", func(d digest.Digest, v []byte) error {
		m := &ManifestRecord{}
		if err := json.Unmarshal(v, m); err != nil {
			return err
		}
		m.MediaType = in.str(m.MediaType)
		in.digests(m.Blobs)
		in.digests(m.Children)
		c.Manifests[in.digest(d)] = m
		return nil
	}); err != nil {
		return err
	}
	if c.Meta.Format >= formatFlat {
		return readFlat(v1, c, in)
	}
	return readNested(v1, c)
}

// readHead reads the meta and the bases of the catalog in tx into c.
func readHead(tx *bolt.Tx, c *Catalog) error {
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return fmt.Errorf("no %q bucket: %w", bucketV1, ErrFormat)
	}
	meta := v1.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("no meta bucket: %w", ErrFormat)
	}
	for _, k := range [][]byte{keyFormat, keyCreated, keyBale, keyID} {
		if err := checkKV(k, meta.Get(k)); err != nil {
			return fmt.Errorf("meta %s: %w", k, err)
		}
	}
	f := string(meta.Get(keyFormat))
	n, err := strconv.Atoi(f)
	if err != nil || n < 1 || n > FormatVersion || strconv.Itoa(n) != f {
		return fmt.Errorf("bundle format %q, this bale reads formats 1 to %d (a newer bale may read it): %w", f, FormatVersion, ErrFormat)
	}
	c.Meta.Format = n
	if c.Meta.Created, err = time.Parse(time.RFC3339, string(meta.Get(keyCreated))); err != nil {
		return fmt.Errorf("created time %q: %w", meta.Get(keyCreated), ErrFormat)
	}
	c.Meta.BaleVersion = string(meta.Get(keyBale))
	c.Meta.ID = string(meta.Get(keyID))
	if v := meta.Get(keyVolumes); v != nil {
		if err := checkKV(keyVolumes, v); err != nil {
			return fmt.Errorf("meta volumes: %w", err)
		}
		if err := json.Unmarshal(v, &c.Meta.Volumes); err != nil {
			return fmt.Errorf("meta volumes: %v: %w", err, ErrFormat)
		}
		for _, vol := range c.Meta.Volumes {
			if err := vol.Validate(); err != nil {
				return fmt.Errorf("meta volumes: %w", err)
			}
		}
	}
	if v := meta.Get(keyList); v != nil {
		if err := readListMember(v, &c.Meta); err != nil {
			return fmt.Errorf("meta list: %w", err)
		}
	}
	if v := meta.Get(keySignatures); v != nil {
		if err := readSignatureSizes(v, &c.Meta); err != nil {
			return fmt.Errorf("meta signatures: %w", err)
		}
	}
	// bases/ exists in patches only; the order of --base is kept in each record.
	if bb := v1.Bucket(bucketBases); bb != nil {
		if err := eachJSON(bb, "bases", func(d digest.Digest, v []byte) error {
			var b Base
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			b.ID = string(d)
			c.Bases = append(c.Bases, b)
			return nil
		}); err != nil {
			return err
		}
		slices.SortStableFunc(c.Bases, func(a, b Base) int { return a.Order - b.Order })
	}
	c.additive = c.Meta.Format >= formatAdditive && len(c.Bases) > 0
	return nil
}

// readNested reads the repositories of a catalog of format 1 to 3: a bucket per repository.
func readNested(v1 *bolt.Bucket, c *Catalog) error {
	repos := v1.Bucket(bucketRepos)
	if repos == nil {
		return fmt.Errorf("no repos bucket: %w", ErrFormat)
	}
	var prev []byte
	return repos.ForEachBucket(func(name []byte) error {
		if err := ascending(&prev, name); err != nil {
			return err
		}
		rb := repos.Bucket(name)
		r := c.repo(string(name))
		if err := eachKey(rb.Bucket(bucketManifests), func(k, _ []byte) error {
			r.Manifests = append(r.Manifests, digest.Digest(k))
			return nil
		}); err != nil {
			return fmt.Errorf("repository %q manifests: %w", name, err)
		}
		if err := eachKey(rb.Bucket(bucketPinned), func(k, _ []byte) error {
			r.Pinned = append(r.Pinned, digest.Digest(k))
			return nil
		}); err != nil {
			return fmt.Errorf("repository %q pinned: %w", name, err)
		}
		if err := eachKey(rb.Bucket(bucketTags), func(k, v []byte) error {
			r.Tags[string(k)] = digest.Digest(v)
			return nil
		}); err != nil {
			return fmt.Errorf("repository %q tags: %w", name, err)
		}
		if removed := rb.Bucket(bucketRemoved); removed != nil {
			if err := eachKey(removed, func(k, v []byte) error {
				c.RemoveTag(string(name), string(k), digest.Digest(v))
				return nil
			}); err != nil {
				return fmt.Errorf("repository %q removed: %w", name, err)
			}
		}
		// referrers/ exists from format 3 on, in repositories that hold referrers.
		if refs := rb.Bucket(bucketReferrers); refs != nil {
			r.Referrers = map[digest.Digest]*ReferrerRecord{}
			if err := eachJSON(refs, "referrers", func(d digest.Digest, v []byte) error {
				rr := &ReferrerRecord{}
				if err := json.Unmarshal(v, rr); err != nil {
					return err
				}
				r.Referrers[d] = rr
				return nil
			}); err != nil {
				return fmt.Errorf("repository %q: %w", name, err)
			}
		}
		return nil
	})
}

// Bounds on what one catalog key or value may hold; anything larger is a corrupt file.
const (
	maxKey   = 1024
	maxValue = 1 << 20
)

func checkKV(k, v []byte) error {
	if len(k) > maxKey || len(v) > maxValue {
		return fmt.Errorf("key or value of %d/%d bytes: %w", len(k), len(v), ErrFormat)
	}
	return nil
}

// ascending checks that bbolt hands out keys in strictly increasing order, which a damaged
// file whose pages form a cycle would break (and otherwise loop forever).
func ascending(prev *[]byte, k []byte) error {
	if *prev != nil && bytes.Compare(k, *prev) <= 0 {
		return fmt.Errorf("keys out of order (%q after %q): %w", k, *prev, ErrFormat)
	}
	*prev = append((*prev)[:0], k...)
	if *prev == nil {
		*prev = []byte{}
	}
	return nil
}

func eachKey(b *bolt.Bucket, fn func(k, v []byte) error) error {
	if b == nil {
		return fmt.Errorf("missing bucket: %w", ErrFormat)
	}
	var prev []byte
	return b.ForEach(func(k, v []byte) error {
		if err := checkKV(k, v); err != nil {
			return err
		}
		if err := ascending(&prev, k); err != nil {
			return err
		}
		// Values are valid only inside the transaction: copy what leaves it.
		return fn(append([]byte(nil), k...), append([]byte(nil), v...))
	})
}

func eachJSON(b *bolt.Bucket, what string, fn func(d digest.Digest, v []byte) error) error {
	if b == nil {
		return fmt.Errorf("no %s bucket: %w", what, ErrFormat)
	}
	var prev []byte
	return b.ForEach(func(k, v []byte) error {
		if err := checkKV(k, v); err != nil {
			return err
		}
		if err := ascending(&prev, k); err != nil {
			return err
		}
		if err := fn(digest.Digest(k), v); err != nil {
			return fmt.Errorf("%s %q: %v: %w", what, k, err, ErrFormat)
		}
		return nil
	})
}

// MaxSignatures and MaxSignatureSize bound the signature members a catalog may record.
const (
	MaxSignatures    = 99
	MaxSignatureSize = 1 << 20
)

// MaxListSize bounds the list member a catalog may record.
const MaxListSize = 1 << 30

// readListMember reads meta/list, the JSON {"size":N,"digest":"sha256:..."}, into m.
func readListMember(v []byte, m *Meta) error {
	if err := checkKV(keyList, v); err != nil {
		return err
	}
	var l ListMember
	if err := json.Unmarshal(v, &l); err != nil {
		return fmt.Errorf("%v: %w", err, ErrFormat)
	}
	if l.Size <= 0 || l.Size > MaxListSize {
		return fmt.Errorf("a list member of %d bytes, want 1 to %d: %w", l.Size, MaxListSize, ErrFormat)
	}
	if l.Digest.Algorithm() != digest.SHA256 || l.Digest.Validate() != nil {
		return fmt.Errorf("list member digest %q is not sha256:<64 hex digits>: %w", l.Digest, ErrFormat)
	}
	if m.Format < formatList {
		return fmt.Errorf("a list member in a format-%d catalog (format 5 brought it): %w", m.Format, ErrFormat)
	}
	m.List = &l
	return nil
}

// readSignatureSizes reads meta/signatures, a JSON array of member sizes, into m.
func readSignatureSizes(v []byte, m *Meta) error {
	if err := checkKV(keySignatures, v); err != nil {
		return err
	}
	if err := json.Unmarshal(v, &m.Signatures); err != nil {
		return fmt.Errorf("%v: %w", err, ErrFormat)
	}
	if len(m.Signatures) == 0 || len(m.Signatures) > MaxSignatures {
		return fmt.Errorf("%d signature members, want 1 to %d: %w", len(m.Signatures), MaxSignatures, ErrFormat)
	}
	for _, n := range m.Signatures {
		if n <= 0 || n > MaxSignatureSize {
			return fmt.Errorf("a signature member of %d bytes, want 1 to %d: %w", n, MaxSignatureSize, ErrFormat)
		}
	}
	if m.Format < formatAdditive {
		return fmt.Errorf("signature members in a format-%d catalog (format 4 brought them): %w", m.Format, ErrFormat)
	}
	return nil
}
