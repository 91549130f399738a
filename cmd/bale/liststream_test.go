package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// TestListStream: `bale list` of a format-4 bundle, which reads its catalog in place one
// repository at a time, prints what `bale list` of the same catalog read whole prints (the
// catalog file bale catalog -o writes of the bundle), text and JSON, for the real-world pool;
// a bundle whose catalog id was changed is refused with nothing printed.
func TestListStream(t *testing.T) {
	s := getShapes(t)
	dir := t.TempDir()
	bundle, cat := filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "c.db")
	mustBale(t, "pack", "-o", bundle, "registry:"+s.registry)
	mustBale(t, "catalog", "-o", cat, bundle)

	streamed, whole := mustBale(t, "list", bundle).stdout, mustBale(t, "list", cat).stdout
	if want := strings.Replace(whole, "; catalog format 4,", "; bundle format 5,", 1); streamed != want || !strings.Contains(whole, "; catalog format 4,") {
		t.Errorf("bale list BUNDLE:\n%s\nbale list CATALOG:\n%s", streamed, whole)
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", bundle).stdout), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", cat).stdout), &b); err != nil {
		t.Fatal(err)
	}
	if a["format"] != 5.0 || b["format"] != 4.0 {
		t.Errorf("bale list --json: the bundle is format %v, its catalog file %v; want 5 and 4", a["format"], b["format"])
	}
	for _, k := range []string{"location", "format"} {
		delete(a, k)
		delete(b, k)
	}
	ja, _ := json.MarshalIndent(a, "", " ")
	jb, _ := json.MarshalIndent(b, "", " ")
	if !bytes.Equal(ja, jb) || len(a["images"].([]any)) == 0 {
		t.Errorf("bale list --json BUNDLE:\n%s\nbale list --json CATALOG:\n%s", ja, jb)
	}

	bad := filepath.Join(dir, "bad.tar.zst")
	rewriteCatalog(t, bundle, bad, func(v1 *bolt.Bucket) error {
		return v1.Bucket([]byte("meta")).Put([]byte("id"), []byte("sha256:"+strings.Repeat("0", 64)))
	})
	for _, args := range [][]string{{"list", bad}, {"list", "--json", bad}} {
		r := bale(t, args...)
		if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "does not match its content") {
			t.Errorf("bale %v of a bundle with a wrong id: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// rewriteCatalog writes to out the bundle at in with its catalog changed by edit (members in
// the same order, one zstd frame).
func rewriteCatalog(t *testing.T, in, out string, edit func(v1 *bolt.Bucket) error) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == "bale/catalog.db" {
			p := filepath.Join(t.TempDir(), "catalog.db")
			if err := os.WriteFile(p, body, 0o644); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(p, 0o644, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return edit(tx.Bucket([]byte("v1"))) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if body, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			hdr.Size = int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
