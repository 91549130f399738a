// The flat layout of format 4: one bucket per kind of repository record, keyed
// <repo>\x00<tag or digest>, instead of a bucket per repository (formats 1 to 3). A bucket of
// its own takes one 4 KiB page at least, and bbolt fills pages to half by default: at 20,000
// tags in 6,667 repositories that left 30 MB of records in 86 MB of pages.

package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// keySep separates the repository from the tag or digest in the keys of the flat buckets. No
// repository name, tag or digest holds it, and it sorts below every byte they hold, so the keys
// sort by repository, then by tag or digest: the order of the bundle id (§6 of the format).
const keySep = 0

// repoKey is the key <repo>\x00<name>.
func repoKey(repo, name string) []byte {
	k := make([]byte, 0, len(repo)+1+len(name))
	return append(append(append(k, repo...), keySep), name...)
}

// splitRepoKey splits a key of a flat bucket into its repository and the tag or digest.
func splitRepoKey(k []byte) (repo, name []byte, err error) {
	i := bytes.IndexByte(k, keySep)
	if i <= 0 || i == len(k)-1 {
		return nil, nil, fmt.Errorf("key %q is not <repository>\\x00<name>: %w", k, ErrFormat)
	}
	return k[:i], k[i+1:], nil
}

// flatSteps are the transactions that write the repositories of c in the flat layout, each
// filling one new bucket of v1 with keys in sorted order.
func flatSteps(c *Catalog, fill func(items func() []kv, path ...[]byte) func(*bolt.Tx) error) []func(*bolt.Tx) error {
	names := c.RepoNames()
	// each is the records of one bucket, made when its step runs (lazy: one bucket's at a time).
	each := func(add func(items []kv, name string, r *Repo) []kv) func() []kv {
		return func() []kv {
			var items []kv
			for _, name := range names {
				items = add(items, name, c.Repos[name])
			}
			return items
		}
	}
	var removed, referrers bool
	for _, r := range c.Repos {
		removed, referrers = removed || len(r.Removed) > 0, referrers || len(r.Referrers) > 0
	}
	steps := []func(*bolt.Tx) error{
		fill(func() []kv {
			return sortedKV(each(func(items []kv, name string, r *Repo) []kv {
				for _, d := range r.Manifests {
					items = append(items, kv{repoKey(name, string(d)), []byte{}})
				}
				return items
			})())
		}, bucketV1, bucketRevisions),
		fill(func() []kv {
			return sortedKV(each(func(items []kv, name string, r *Repo) []kv {
				for _, d := range r.Pinned {
					items = append(items, kv{repoKey(name, string(d)), []byte{}})
				}
				return items
			})())
		}, bucketV1, bucketPinned),
		fill(each(func(items []kv, name string, r *Repo) []kv {
			for _, t := range slices.Sorted(maps.Keys(r.Tags)) {
				items = append(items, kv{repoKey(name, t), []byte(r.Tags[t])})
			}
			return items
		}), bucketV1, bucketTags),
	}
	if removed {
		steps = append(steps, fill(each(func(items []kv, name string, r *Repo) []kv {
			for _, t := range slices.Sorted(maps.Keys(r.Removed)) {
				items = append(items, kv{repoKey(name, t), []byte(r.Removed[t])})
			}
			return items
		}), bucketV1, bucketRemoved))
	}
	if referrers {
		steps = append(steps, fill(each(func(items []kv, name string, r *Repo) []kv {
			for _, d := range slices.Sorted(maps.Keys(r.Referrers)) {
				items = append(items, kv{repoKey(name, string(d)), mustJSON(r.Referrers[d])})
			}
			return items
		}), bucketV1, bucketReferrers))
	}
	return steps
}

// sortedKV sorts items by key (a repository's manifests and pins are kept in the order they
// were added while building).
func sortedKV(items []kv) []kv {
	slices.SortFunc(items, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	return items
}

// flatRecords are the per-repository buckets of a format-4 catalog, in the order they are
// read, and how a record of each goes into its repository (readFlat, Stream.Walk); optional
// ones (removed/, and referrers/ in catalogs that hold referrers) may be absent. in may be nil
// (no interning).
var flatRecords = []struct {
	name     []byte
	optional bool
	add      func(r *Repo, name, v []byte, in interner) error
}{
	{bucketRevisions, false, func(r *Repo, name, _ []byte, in interner) error {
		r.Manifests = append(r.Manifests, digest.Digest(in.bytes(name)))
		return nil
	}},
	{bucketPinned, false, func(r *Repo, name, _ []byte, in interner) error {
		r.Pinned = append(r.Pinned, digest.Digest(in.bytes(name)))
		return nil
	}},
	{bucketTags, false, func(r *Repo, name, v []byte, in interner) error {
		r.Tags[string(name)] = digest.Digest(in.bytes(v))
		return nil
	}},
	{bucketRemoved, true, func(r *Repo, name, v []byte, _ interner) error {
		if r.Removed == nil {
			r.Removed = map[string]digest.Digest{}
		}
		r.Removed[string(name)] = digest.Digest(v)
		return nil
	}},
	{bucketReferrers, true, func(r *Repo, name, v []byte, _ interner) error {
		rr := &ReferrerRecord{}
		if err := json.Unmarshal(v, rr); err != nil {
			return fmt.Errorf("%v: %w", err, ErrFormat)
		}
		if r.Referrers == nil {
			r.Referrers = map[digest.Digest]*ReferrerRecord{}
		}
		r.Referrers[digest.Digest(name)] = rr
		return nil
	}},
}

// readFlat reads the repositories of a format-4 catalog.
func readFlat(v1 *bolt.Bucket, c *Catalog, in interner) error {
	// cur remembers the last repository looked up: keys come grouped by repository.
	var curName []byte
	var cur *Repo
	repo := func(name []byte) *Repo {
		if cur == nil || !bytes.Equal(name, curName) {
			curName, cur = append(curName[:0], name...), c.repo(string(name))
		}
		return cur
	}
	each := func(bucket []byte, optional bool, fn func(r *Repo, name, v []byte) error) error {
		b := v1.Bucket(bucket)
		if b == nil {
			if optional {
				return nil
			}
			return fmt.Errorf("no %s bucket: %w", bucket, ErrFormat)
		}
		cur = nil
		return eachKey(b, func(k, v []byte) error {
			rn, name, err := splitRepoKey(k)
			if err != nil {
				return fmt.Errorf("%s: %w", bucket, err)
			}
			if err := fn(repo(rn), name, v); err != nil {
				return fmt.Errorf("%s %q: %w", bucket, k, err)
			}
			return nil
		})
	}
	for _, fr := range flatRecords {
		if err := each(fr.name, fr.optional, func(r *Repo, name, v []byte) error { return fr.add(r, name, v, in) }); err != nil {
			return err
		}
	}
	return nil
}
