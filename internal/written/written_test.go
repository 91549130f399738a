package written

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// TestRemoveOnlyWhatBaleWrote: an output two tags wrote stays until both are released; a file
// the site changed since, a directory the site added to, and a path outside the directory are
// left where they are; the record survives a save and a load.
func TestRemoveOnlyWhatBaleWrote(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/tool/tool", "tool bytes")
	write("b/edited/edited", "bale's bytes")
	write("c/tree/x", "x")
	m1, m2 := digest.FromString("manifest 1"), digest.FromString("manifest 2")
	v1, v2 := layout.Ref{Repo: "files/a/tool", Tag: "v1"}, layout.Ref{Repo: "files/a/tool", Tag: "v2"}
	rec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec.Put("a/tool/tool", map[string]digest.Digest{v1.String(): m1, v2.String(): m2}, Output{Digest: digest.FromString("tool bytes"), Size: 10})
	rec.Put("b/edited/edited", map[string]digest.Digest{v1.String(): m1}, Output{Digest: digest.FromString("bale's bytes"), Size: 12})
	tree, err := Tree(filepath.Join(dir, "c/tree"))
	if err != nil {
		t.Fatal(err)
	}
	rec.Put("c/tree", map[string]digest.Digest{v1.String(): m1}, Output{Tree: tree})
	rec.Put("../escape", map[string]digest.Digest{v1.String(): m1}, Output{Digest: digest.FromString("x"), Size: 1})
	if err := rec.Save(dir); err != nil {
		t.Fatal(err)
	}
	if rec, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	write("b/edited/edited", "site's bytes") // same size, other bytes
	write("c/tree/site-file", "site")

	if free := rec.Release(v1, m2); len(free) != 0 {
		t.Fatalf("v1 with another manifest freed %v", free)
	}
	free := rec.Release(v1, m1)
	if _, ok := free["a/tool/tool"]; ok || len(free) != 3 {
		t.Fatalf("released v1: %v", free)
	}
	for rel, o := range free {
		removed, err := Remove(dir, rel, o)
		if removed {
			t.Errorf("%s removed", rel)
		}
		if rel == "../escape" && err == nil {
			t.Errorf("../escape: no error")
		}
	}
	free = rec.Release(v2, m2)
	if removed, err := Remove(dir, "a/tool/tool", free["a/tool/tool"]); !removed || err != nil {
		t.Fatalf("a/tool/tool, owned by no tag: removed %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the emptied directories a/tool stay: %v", err)
	}
	for _, p := range []string{"b/edited/edited", "c/tree/x", "c/tree/site-file"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
