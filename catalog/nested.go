// The layout of formats 1 to 3: a bucket per repository under repos/, each holding buckets
// tags, pinned and manifests (and removed, referrers). Written only for a catalog read from
// such a bundle and written back unchanged.

package catalog

import (
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// nestedSteps are the transactions that write the repositories of c in the nested layout, as
// bale 0.3 wrote them (40b00f9).
func nestedSteps(c *Catalog, fill func(items []kv, path ...[]byte) func(*bolt.Tx) error) []func(*bolt.Tx) error {
	digestKeys := func(ds []digest.Digest) []kv {
		out := make([]kv, len(ds))
		for i, d := range ds {
			out[i] = kv{k: []byte(d), v: []byte{}}
		}
		return out
	}
	var steps []func(*bolt.Tx) error
	for _, name := range c.RepoNames() {
		r, n := c.Repos[name], []byte(name)
		var tags []kv
		for _, t := range slices.Sorted(maps.Keys(r.Tags)) {
			tags = append(tags, kv{[]byte(t), []byte(r.Tags[t])})
		}
		steps = append(steps,
			fill(nil, bucketV1, bucketRepos, n),
			fill(digestKeys(r.Manifests), bucketV1, bucketRepos, n, bucketManifests),
			fill(digestKeys(r.Pinned), bucketV1, bucketRepos, n, bucketPinned),
			fill(tags, bucketV1, bucketRepos, n, bucketTags))
		if len(r.Removed) > 0 {
			var removed []kv
			for _, t := range slices.Sorted(maps.Keys(r.Removed)) {
				removed = append(removed, kv{[]byte(t), []byte(r.Removed[t])})
			}
			steps = append(steps, fill(removed, bucketV1, bucketRepos, n, bucketRemoved))
		}
		if len(r.Referrers) > 0 {
			var refs []kv
			for _, d := range slices.Sorted(maps.Keys(r.Referrers)) {
				refs = append(refs, kv{[]byte(d), mustJSON(r.Referrers[d])})
			}
			steps = append(steps, fill(refs, bucketV1, bucketRepos, n, bucketReferrers))
		}
	}
	return steps
}
