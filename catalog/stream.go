// Reading a format-4 catalog in place, one repository at a time, without holding it whole.

package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"runtime/debug"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ErrNested reports a catalog of format 1 to 3, which Stream does not read: Read reads it
// whole.
var ErrNested = errors.New("a catalog of format 1 to 3 (a bucket per repository)")

// Stream is an open format-4 catalog file, read in one read-only transaction: its meta and
// bases, then its repositories one at a time (Walk).
type Stream struct {
	Meta  Meta
	Bases []Base

	db *bolt.DB
	tx *bolt.Tx
	v1 *bolt.Bucket
}

// WalkResult is what Walk finds beside the repositories: the id recomputed from the records
// (§6 of the format; it does not check it against Meta.ID) and the blob totals.
type WalkResult struct {
	ID                      string
	Blobs, CarriedBlobs     int
	BlobBytes, CarriedBytes int64
}

// OpenStream opens the catalog file at path (name in errors) after the same page check as
// Read. It returns ErrNested for a catalog of format 1 to 3. Close releases it.
func OpenStream(path, name string) (s *Stream, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("catalog %s: corrupt database (%v): %w", name, r, ErrFormat)
		}
		if err != nil && s != nil {
			s.Close()
			s = nil
		}
	}()
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	} else if fi.Size() < 1024 {
		return nil, fmt.Errorf("catalog %s: %d bytes, too small for a database: %w", name, fi.Size(), ErrFormat)
	}
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %v: %w", name, err, ErrFormat)
	}
	s = &Stream{db: db}
	if s.tx, err = db.Begin(false); err != nil {
		return s, fmt.Errorf("catalog %s: %w", name, err)
	}
	if fi, err := os.Stat(path); err != nil || s.tx.Size() > fi.Size() {
		return s, fmt.Errorf("catalog %s: the database claims %d bytes, the file is shorter: %w", name, s.tx.Size(), ErrFormat)
	}
	// The meta and bases, as Read reads them, from a catalog without repositories.
	head := New()
	if err := readHead(s.tx, head); err != nil {
		return s, fmt.Errorf("catalog %s: %w", name, err)
	}
	if head.Meta.Format < formatFlat {
		return s, fmt.Errorf("catalog %s: %w", name, ErrNested)
	}
	s.Meta, s.Bases, s.v1 = head.Meta, head.Bases, s.tx.Bucket(bucketV1)
	for _, b := range [][]byte{bucketManifests, bucketBlobs, bucketRevisions, bucketPinned, bucketTags} {
		if s.v1.Bucket(b) == nil {
			return s, fmt.Errorf("catalog %s: no %s bucket: %w", name, b, ErrFormat)
		}
	}
	return s, nil
}

// Close ends the transaction and closes the database.
func (s *Stream) Close() error {
	if s.tx != nil {
		s.tx.Rollback()
	}
	return s.db.Close()
}

// Walk calls fn with each repository in name order, as a catalog of its own: the repository's
// tags, pins, manifests, removed tags and referrers, the manifest records of its manifests and
// the blob records of those and of their blobs, Meta and Bases (check it with Validate). fn
// must not keep it past its return. Then it reads every blob record once, and returns the id
// its records give (the text of §6, streamed into the hash in the same order as ComputeID)
// and the blob totals.
func (s *Stream) Walk(fn func(repo *Catalog) error) (res WalkResult, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt database (%v): %w", r, ErrFormat)
		}
	}()
	h := sha256.New()
	var removals []Entry
	type cursor struct {
		c       *bolt.Cursor
		k, v    []byte
		prev    []byte
		name    []byte
		addFunc func(r *Repo, name, v []byte, in interner) error
	}
	var curs []*cursor
	for _, fr := range flatRecords {
		if b := s.v1.Bucket(fr.name); b != nil {
			cu := &cursor{c: b.Cursor(), name: fr.name, addFunc: fr.add}
			cu.k, cu.v = cu.c.First()
			curs = append(curs, cu)
		}
	}
	for {
		var repo []byte
		for _, cu := range curs {
			if cu.k == nil {
				continue
			}
			rn, _, err := splitRepoKey(cu.k)
			if err != nil {
				return res, fmt.Errorf("%s: %w", cu.name, err)
			}
			if repo == nil || bytes.Compare(rn, repo) < 0 {
				repo = append(repo[:0:0], rn...)
			}
		}
		if repo == nil {
			break
		}
		sub := New()
		sub.Meta, sub.Bases = s.Meta, s.Bases
		r := sub.repo(string(repo))
		for _, cu := range curs {
			for cu.k != nil {
				rn, n, err := splitRepoKey(cu.k)
				if err != nil {
					return res, fmt.Errorf("%s: %w", cu.name, err)
				}
				if !bytes.Equal(rn, repo) {
					break
				}
				if err := checkKV(cu.k, cu.v); err != nil {
					return res, fmt.Errorf("%s: %w", cu.name, err)
				}
				if err := ascending(&cu.prev, cu.k); err != nil {
					return res, fmt.Errorf("%s: %w", cu.name, err)
				}
				if err := cu.addFunc(r, n, cu.v, nil); err != nil {
					return res, fmt.Errorf("%s %q: %w", cu.name, cu.k, err)
				}
				cu.k, cu.v = cu.c.Next()
			}
		}
		if err := s.records(sub, r); err != nil {
			return res, fmt.Errorf("repository %q: %w", repo, err)
		}
		for _, e := range sub.Entries() {
			fmt.Fprintf(h, "ref %s %s %s\n", e.Repo, e.Tag, e.Digest)
		}
		removals = append(removals, sub.Removals()...)
		if err := fn(sub); err != nil {
			return res, err
		}
	}
	if err := s.blobLines(h, &res); err != nil {
		return res, err
	}
	for _, e := range removals {
		fmt.Fprintf(h, "removed %s %s %s\n", e.Repo, e.Tag, e.Digest)
	}
	if s.Meta.Format >= formatAdditive {
		for _, b := range s.Bases {
			fmt.Fprintf(h, "base %s\n", b.ID)
		}
	}
	res.ID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// records adds to sub the manifest records of r's manifests and the blob records of those
// manifests and their blobs.
func (s *Stream) records(sub *Catalog, r *Repo) error {
	mb, bb := s.v1.Bucket(bucketManifests), s.v1.Bucket(bucketBlobs)
	blob := func(d digest.Digest) error {
		if sub.Blobs[d] != nil {
			return nil
		}
		v := bb.Get([]byte(d))
		if v == nil {
			return nil // Validate names what is missing
		}
		b := &BlobRecord{}
		if err := json.Unmarshal(v, b); err != nil {
			return fmt.Errorf("blobs %q: %v: %w", d, err, ErrFormat)
		}
		sub.Blobs[d] = b
		return nil
	}
	for _, d := range r.Manifests {
		if v := mb.Get([]byte(d)); v != nil {
			m := &ManifestRecord{}
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("manifests %q: %v: %w", d, err, ErrFormat)
			}
			sub.Manifests[d] = m
			for _, b := range m.Blobs {
				if err := blob(b); err != nil {
					return err
				}
			}
		}
		if err := blob(d); err != nil {
			return err
		}
	}
	return nil
}

// blobLines streams the blob lines of §6 into h, in digest order (the keys' order), and
// counts the blobs.
func (s *Stream) blobLines(h hash.Hash, res *WalkResult) error {
	var prev []byte
	var b BlobRecord
	c := s.v1.Bucket(bucketBlobs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := checkKV(k, v); err != nil {
			return fmt.Errorf("blobs: %w", err)
		}
		if err := ascending(&prev, k); err != nil {
			return fmt.Errorf("blobs: %w", err)
		}
		b = BlobRecord{}
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("blobs %q: %v: %w", k, err, ErrFormat)
		}
		switch {
		case b.Base != "":
			fmt.Fprintf(h, "blob %s %d base %s\n", k, b.Size, b.Base)
		case b.NotCarried:
			fmt.Fprintf(h, "blob %s %d notcarried\n", k, b.Size)
		default:
			fmt.Fprintf(h, "blob %s %d\n", k, b.Size)
			res.CarriedBlobs++
			res.CarriedBytes += b.Size
		}
		res.Blobs++
		res.BlobBytes += b.Size
	}
	return nil
}
