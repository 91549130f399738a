package fileart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// putRaw stores an artifact of one layer (body, with annotations) as repo:tag in the
// registry storage at root, and returns the image.
func putRaw(t *testing.T, root, repo, tag string, body []byte, ann map[string]string) (*registry.Store, layout.Ref, *layout.Image) {
	t.Helper()
	st, err := registry.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	layer := layout.Descriptor{MediaType: MediaTypeDir, Digest: digest.FromBytes(body), Size: int64(len(body)), Annotations: ann}
	if err := st.WriteBlob(layer, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m, err := writeManifest(st, layer)
	if err != nil {
		t.Fatal(err)
	}
	img := &layout.Image{Manifest: m}
	ref := layout.Ref{Repo: repo, Tag: tag}
	if err := st.LinkImage(repo, img); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(repo, tag, m.Digest); err != nil {
		t.Fatal(err)
	}
	return st, ref, img
}

// tarGz makes a tar+gzip of the entries (a regular file's body from bodies, by name) and
// returns it with the tar's digest.
func tarGz(t *testing.T, hdrs []tar.Header, bodies map[string]string) ([]byte, digest.Digest) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, h := range hdrs {
		b := bodies[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(b))
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	return gz.Bytes(), digest.FromBytes(tb.Bytes())
}

// TestWriterRefusesHostile: a write through a symbolic link the tar made itself, a hard link
// out, a tar that does not match its io.deis.oras.content.digest, and entries outside the
// title are refused; the files: directory keeps what it held and no temporary is left.
func TestWriterRefusesHostile(t *testing.T) {
	dir := tar.Header{Name: "evil/", Typeflag: tar.TypeDir, Mode: 0o755}
	cases := map[string]struct {
		hdrs      []tar.Header
		badDigest bool
		want      error
	}{
		"through a symlink": {hdrs: []tar.Header{dir,
			{Name: "evil/up", Typeflag: tar.TypeSymlink, Linkname: "."},
			{Name: "evil/up/x", Typeflag: tar.TypeReg, Mode: 0o644}}, want: ErrUnsafe},
		"hard link out": {hdrs: []tar.Header{dir,
			{Name: "evil/passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, want: ErrUnsafe},
		"outside the title": {hdrs: []tar.Header{dir,
			{Name: "other/x", Typeflag: tar.TypeReg, Mode: 0o644}}, want: ErrUnsafe},
		"twice": {hdrs: []tar.Header{dir,
			{Name: "evil/x", Typeflag: tar.TypeReg, Mode: 0o644}, {Name: "evil/x", Typeflag: tar.TypeReg, Mode: 0o644}}, want: ErrUnsafe},
		"tar digest": {hdrs: []tar.Header{dir,
			{Name: "evil/x", Typeflag: tar.TypeReg, Mode: 0o644}}, badDigest: true, want: layout.ErrDigestMismatch},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			body, td := tarGz(t, c.hdrs, map[string]string{"evil/x": "pwnd", "evil/up/x": "pwnd"})
			if c.badDigest {
				td = digest.FromString("another tar")
			}
			ann := map[string]string{AnnotationTitle: "evil", AnnotationUnpack: "true", AnnotationDigest: td.String()}
			st, ref, img := putRaw(t, t.TempDir(), "files/evil", "v1", body, ann)
			out := t.TempDir()
			keep := filepath.Join(out, "evil", "evil", "keep")
			os.MkdirAll(filepath.Dir(keep), 0o755)
			os.WriteFile(keep, []byte("kept"), 0o644)
			w := NewWriter(out)
			err := w.PutImage(ref, img, st)
			if !errors.Is(err, c.want) {
				t.Fatalf("PutImage: %v, want %v", err, c.want)
			}
			w.Abort()
			ents, _ := os.ReadDir(filepath.Join(out, "evil"))
			if len(ents) != 1 || ents[0].Name() != "evil" {
				t.Errorf("left in the files: directory: %v", ents)
			}
			if b, err := os.ReadFile(keep); err != nil || string(b) != "kept" {
				t.Errorf("the file there before: %q, %v", b, err)
			}
			if ents, _ := os.ReadDir(filepath.Dir(keep)); len(ents) != 1 {
				t.Errorf("the directory there before now holds %v", ents)
			}
		})
	}
}

// TestWriterConflict: two tags of one name with different files refuse the second; the same
// file under both is written once.
func TestWriterConflict(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a", "tool"), filepath.Join(base, "b", "tool")
	os.MkdirAll(filepath.Dir(a), 0o755)
	os.MkdirAll(filepath.Dir(b), 0o755)
	os.WriteFile(a, []byte("v1"), 0o755)
	os.WriteFile(b, []byte("v2"), 0o755)
	root := t.TempDir()
	ctx := context.Background()
	for _, s := range []Spec{{Path: a, Tag: "v1"}, {Path: a, Tag: "same"}, {Path: b, Tag: "v2"}} {
		if _, err := Stage(ctx, root, s, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	st := registry.New(root)
	out := t.TempDir()
	w := NewWriter(out)
	put := func(tag string) error {
		ref := layout.Ref{Repo: "files/tool", Tag: tag}
		d, err := st.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := layout.LoadImage(st, ref.Repo, d)
		if err != nil {
			t.Fatal(err)
		}
		return w.PutImage(ref, img, st)
	}
	if err := put("v1"); err != nil {
		t.Fatal(err)
	}
	if err := put("same"); err != nil {
		t.Fatalf("the same file under a second tag: %v", err)
	}
	if err := put("v2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("another file at the same path: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "tool", "tool"))
	sum := sha256.Sum256(got)
	if string(got) != "v1" || w.Written() != 1 {
		t.Errorf("wrote %q (%x), %d outputs", got, sum, w.Written())
	}
}

// TestWriterSharedBlobModes: one blob, two files of different modes (same bytes): the first
// is a hard link with its mode less write bits, the second, which would need another mode on
// the same inode, a copy with its own mode exactly.
func TestWriterSharedBlobModes(t *testing.T) {
	base := t.TempDir()
	exe, plain := filepath.Join(base, "x", "tool"), filepath.Join(base, "y", "tool")
	for p, mode := range map[string]os.FileMode{exe: 0o755, plain: 0o644} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("same bytes"), mode)
		os.Chmod(p, mode)
	}
	root := t.TempDir()
	for _, s := range []Spec{{Path: exe, Name: "exe"}, {Path: plain, Name: "plain"}} {
		if _, err := Stage(context.Background(), root, s, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	st := registry.New(root)
	out := t.TempDir()
	w := NewWriter(out)
	for _, name := range []string{"files/exe", "files/plain"} {
		ref := layout.Ref{Repo: name, Tag: DefaultTag}
		d, err := st.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := layout.LoadImage(st, ref.Repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.PutImage(ref, img, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	linked, copied := w.Counts()
	fe, _ := os.Stat(filepath.Join(out, "exe", "tool"))
	fp, _ := os.Stat(filepath.Join(out, "plain", "tool"))
	if linked != 1 || copied != 1 || fe.Mode().Perm() != 0o555 || fp.Mode().Perm() != 0o644 || os.SameFile(fe, fp) {
		t.Errorf("linked %d, copied %d; exe %v, plain %v, same inode %v", linked, copied, fe.Mode(), fp.Mode(), os.SameFile(fe, fp))
	}
}
