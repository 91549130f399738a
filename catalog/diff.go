// Comparing two catalogs: the tags, referrers, platforms and blobs one adds to, removes from
// or changes in the other, and the patch from one to the other (bale diff).

package catalog

import (
	"cmp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// DiffTag is one tag in a Diff: added (New set), removed (Old set) or changed (both).
type DiffTag struct {
	Repo string `json:"repo"`
	Tag  string `json:"tag"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// DiffReferrer is one referrer, cosign tag or referrers tag in a Diff.
type DiffReferrer struct {
	Repo    string `json:"repo"`
	Tag     string `json:"tag,omitempty"`
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// DiffPlatforms is a tag whose index holds other platforms' images in NEW than in OLD.
type DiffPlatforms struct {
	Repo   string   `json:"repo"`
	Tag    string   `json:"tag"`
	Digest string   `json:"digest"`
	Old    []string `json:"old"`
	New    []string `json:"new"`
}

// Diff is what NEW adds to, removes from and changes in OLD (Compare): the JSON document of
// `bale diff --json` but for the names of OLD and NEW and the predicted size of the patch.
type Diff struct {
	Added   []DiffTag `json:"added"`
	Removed []DiffTag `json:"removed"`
	Changed []DiffTag `json:"changed"`
	// Platforms are tags naming the same index in both whose present platforms differ (sparse
	// indexes, bale pack with several --platform).
	Platforms []DiffPlatforms `json:"platformsChanged,omitempty"`
	// Referrers that belong to the images (bale list's "referrers"), by repository and tag
	// (cosign's tags, referrers tags) or digest: added, removed, and tags that name another
	// manifest (cosign appends a signature to its .sig manifest).
	ReferrersAdded   []DiffReferrer `json:"referrersAdded"`
	ReferrersRemoved []DiffReferrer `json:"referrersRemoved"`
	ReferrersChanged []DiffReferrer `json:"referrersChanged"`
	BlobsAdded       []string       `json:"blobsAdded"`
	BlobsRemoved     []string       `json:"blobsRemoved"`
	BytesAdded       int64          `json:"bytesAdded"`
	BytesRemoved     int64          `json:"bytesRemoved"`
	// PatchBytes is what `bale pack --base OLD NEW` would carry (blobs NEW has and OLD lacks).
	PatchBytes int64 `json:"patchBytes"`
	// Patch is the catalog of that patch: NEW made a patch against OLD, finished.
	Patch *Catalog `json:"-"`
}

// Compare returns what newC adds to, removes from and changes in oldC: tags, referrers that
// belong to the images, platforms of a sparse index, blobs, and the patch from one to the other.
func Compare(oldC, newC *Catalog) (*Diff, error) {
	out := &Diff{Added: []DiffTag{}, Removed: []DiffTag{}, Changed: []DiffTag{}, BlobsAdded: []string{}, BlobsRemoved: []string{},
		ReferrersAdded: []DiffReferrer{}, ReferrersRemoved: []DiffReferrer{}, ReferrersChanged: []DiffReferrer{}}
	tags := func(c *Catalog) (map[[2]string]digest.Digest, map[[2]string]Attachment) {
		m, refs := map[[2]string]digest.Digest{}, map[[2]string]Attachment{}
		images, attached := c.ImageAttachments()
		for _, e := range images {
			if e.Tag != "" {
				m[[2]string{e.Repo, e.Tag}] = e.Digest
			}
		}
		for _, as := range attached {
			for _, a := range as {
				refs[[2]string{a.Repo, cmp.Or(a.Tag, string(a.Digest))}] = a
			}
		}
		return m, refs
	}
	ot, oldRefs := tags(oldC)
	nt, newRefs := tags(newC)
	for k, a := range newRefs {
		r := DiffReferrer{Repo: a.Repo, Tag: a.Tag, Subject: string(a.Subject), Kind: a.Kind, New: string(a.Digest)}
		if o, ok := oldRefs[k]; !ok {
			out.ReferrersAdded = append(out.ReferrersAdded, r)
		} else if o.Digest != a.Digest {
			r.Old = string(o.Digest)
			out.ReferrersChanged = append(out.ReferrersChanged, r)
		}
	}
	for k, a := range oldRefs {
		if _, ok := newRefs[k]; !ok {
			out.ReferrersRemoved = append(out.ReferrersRemoved, DiffReferrer{Repo: a.Repo, Tag: a.Tag, Subject: string(a.Subject), Kind: a.Kind, Old: string(a.Digest)})
		}
	}
	for _, l := range [][]DiffReferrer{out.ReferrersAdded, out.ReferrersRemoved, out.ReferrersChanged} {
		sort.Slice(l, func(i, j int) bool {
			return l[i].Repo+" "+l[i].Tag+l[i].Old+l[i].New < l[j].Repo+" "+l[j].Tag+l[j].Old+l[j].New
		})
	}
	for k, d := range nt {
		if od, ok := ot[k]; !ok {
			out.Added = append(out.Added, DiffTag{Repo: k[0], Tag: k[1], New: string(d)})
		} else if od != d {
			out.Changed = append(out.Changed, DiffTag{Repo: k[0], Tag: k[1], Old: string(od), New: string(d)})
		}
	}
	for k, d := range ot {
		if _, ok := nt[k]; !ok {
			out.Removed = append(out.Removed, DiffTag{Repo: k[0], Tag: k[1], Old: string(d)})
		}
	}
	for k, d := range nt {
		om, nm := oldC.Manifests[d], newC.Manifests[d]
		if ot[k] != d || om == nil || nm == nil || len(nm.Children) == 0 {
			continue
		}
		op, np := oldC.Platforms(om), newC.Platforms(nm)
		if strings.Join(op, ",") != strings.Join(np, ",") {
			out.Platforms = append(out.Platforms, DiffPlatforms{Repo: k[0], Tag: k[1], Digest: string(d), Old: op, New: np})
		}
	}
	sort.Slice(out.Platforms, func(i, j int) bool {
		return out.Platforms[i].Repo+":"+out.Platforms[i].Tag < out.Platforms[j].Repo+":"+out.Platforms[j].Tag
	})
	for _, l := range [][]DiffTag{out.Added, out.Removed, out.Changed} {
		sort.Slice(l, func(i, j int) bool { return l[i].Repo+":"+l[i].Tag < l[j].Repo+":"+l[j].Tag })
	}
	for _, d := range newC.SortedBlobs() {
		if oldC.Blobs[d] == nil {
			out.BlobsAdded = append(out.BlobsAdded, string(d))
			out.BytesAdded += newC.Blobs[d].Size
		}
	}
	for _, d := range oldC.SortedBlobs() {
		if newC.Blobs[d] == nil {
			out.BlobsRemoved = append(out.BlobsRemoved, string(d))
			out.BytesRemoved += oldC.Blobs[d].Size
		}
	}
	patch := newC.Clone()
	patch.MakePatch(View([]NamedCatalog{{Name: "OLD", Catalog: oldC}}), false)
	if err := patch.Finish(); err != nil {
		return nil, err
	}
	out.PatchBytes, out.Patch = patch.CarriedBytes(), patch
	return out, nil
}
