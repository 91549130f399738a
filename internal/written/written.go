// Package written keeps the record a files: or charts: directory holds of what bale wrote in
// it (RecordName, JSON): each output's path, the tags and manifests it was written for, and
// what it held (a file's digest and size, a directory's entries). A tag a patch removes
// removes only what the record says bale wrote for that tag and for no tag still there, and
// only while it still holds what bale wrote: anything else in the directory is never touched.
package written

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
)

// RecordName is the record's file in the directory.
const RecordName = ".bale.json"

// ErrRecord is a record that cannot be read.
var ErrRecord = errors.New("unreadable record of what bale wrote")

// Record is what bale wrote in a directory, by path relative to it (slash-separated).
type Record struct {
	Version int                `json:"version"`
	Outputs map[string]*Output `json:"outputs"`
}

// Output is one file or directory bale wrote.
type Output struct {
	// Owners are the tags (repo:tag) it was written for, each with its manifest's digest.
	Owners map[string]digest.Digest `json:"owners"`
	// Digest and Size are a file's content; Tree a directory's entries ("path type size").
	Digest digest.Digest `json:"digest,omitempty"`
	Size   int64         `json:"size,omitempty"`
	Tree   []string      `json:"tree,omitempty"`
}

// Load reads the record of dir; a directory without one has an empty record.
func Load(dir string) (*Record, error) {
	r := &Record{Version: 1, Outputs: map[string]*Output{}}
	b, err := os.ReadFile(filepath.Join(dir, RecordName))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, r); err != nil || r.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, %v: %w", filepath.Join(dir, RecordName), r.Version, err, ErrRecord)
	}
	if r.Outputs == nil {
		r.Outputs = map[string]*Output{}
	}
	return r, nil
}

// Save writes the record into dir through a temporary file and a rename.
func (r *Record) Save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, RecordName), append(b, '\n'), 0o644)
}

// Owns reports whether the record has path rel written for ref with manifest d.
func (r *Record) Owns(rel string, ref layout.Ref, d digest.Digest) bool {
	o := r.Outputs[rel]
	return o != nil && o.Owners[ref.String()] == d
}

// Put records that rel was written (now) for owners, holding out's content; the owners of an
// earlier record of rel stay when its content is the same.
func (r *Record) Put(rel string, owners map[string]digest.Digest, out Output) {
	o := &out
	if prev := r.Outputs[rel]; prev != nil && prev.Digest == o.Digest && prev.Size == o.Size && slices.Equal(prev.Tree, o.Tree) {
		o.Owners = prev.Owners
	}
	if o.Owners == nil {
		o.Owners = map[string]digest.Digest{}
	}
	for k, v := range owners {
		o.Owners[k] = v
	}
	r.Outputs[rel] = o
}

// Release drops ref (with manifest d) from the owners of every output and returns the
// outputs no tag owns any more, by path (their records are dropped too).
func (r *Record) Release(ref layout.Ref, d digest.Digest) map[string]*Output {
	free := map[string]*Output{}
	for rel, o := range r.Outputs {
		if o.Owners[ref.String()] != d {
			continue
		}
		delete(o.Owners, ref.String())
		if len(o.Owners) == 0 {
			free[rel] = o
			delete(r.Outputs, rel)
		}
	}
	return free
}

// Unchanged reports whether p still holds what o says bale wrote: a regular file of o's
// size and digest, or a directory of exactly o's entries.
func Unchanged(p string, o *Output) (bool, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if o.Tree != nil {
		if !fi.IsDir() {
			return false, nil
		}
		tree, err := Tree(p)
		return err == nil && slices.Equal(tree, o.Tree), err
	}
	if !fi.Mode().IsRegular() || fi.Size() != o.Size {
		return false, nil
	}
	err = layout.VerifyFile(p, layout.Descriptor{Digest: o.Digest, Size: o.Size})
	if errors.Is(err, layout.ErrDigestMismatch) {
		return false, nil
	}
	return err == nil, err
}

// Tree lists the entries below dir, sorted: "path type size" (type f, d, l or o).
func Tree(dir string) ([]string, error) {
	out := []string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		typ, size := "o", int64(0)
		switch {
		case fi.Mode().IsRegular():
			typ, size = "f", fi.Size()
		case fi.IsDir():
			typ = "d"
		case fi.Mode()&fs.ModeSymlink != 0:
			typ = "l"
		}
		out = append(out, fmt.Sprintf("%s %s %d", filepath.ToSlash(rel), typ, size))
		return nil
	})
	slices.Sort(out)
	return out, err
}

// Remove removes the output rel of dir if it still holds what o says bale wrote, and reports
// whether it did; anything else there is left as it is.
func Remove(dir, rel string, o *Output) (bool, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if strings.HasPrefix(filepath.Clean(rel), "..") || filepath.IsAbs(rel) {
		return false, fmt.Errorf("%s: %q is outside the directory: %w", filepath.Join(dir, RecordName), rel, ErrRecord)
	}
	ok, err := Unchanged(p, o)
	if !ok || err != nil {
		return false, err
	}
	if o.Tree != nil {
		err = fsutil.RemoveDir(p)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		return false, err
	}
	// The directories above it that held only it go too (os.Remove refuses any other).
	for parent := filepath.Dir(p); parent != filepath.Clean(dir) && strings.HasPrefix(parent, filepath.Clean(dir)); parent = filepath.Dir(parent) {
		if os.Remove(parent) != nil {
			break
		}
	}
	return true, nil
}
