package tarfile

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoundTrip writes a plain, a gzip and a zstd archive and reads each back.
func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"x.tar", "x.tar.gz", "x.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			w, err := Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.AddBytes("oci-layout", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := w.AddBytes("blobs/sha256/abc", []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := w.AddBytes("blobs/sha256/abc", []byte("again")); err == nil {
				t.Error("a member was written twice")
			}
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s exists before Commit: %v", p, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			a, err := Open(p, Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Compression != CompressionFor(name) {
				t.Errorf("compression %s, want %s", a.Compression, CompressionFor(name))
			}
			if got := strings.Join(a.Names(), ","); got != "blobs/sha256/abc,oci-layout" {
				t.Errorf("Names = %s", got)
			}
			b, err := fs.ReadFile(a, "blobs/sha256/abc")
			if err != nil || string(b) != "hello" {
				t.Errorf("ReadFile = %q, %v", b, err)
			}
			if _, err := a.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open(missing) = %v, want ErrNotExist", err)
			}
			if name == "x.tar" {
				if out, err := exec.Command("tar", "-tvf", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "blobs/sha256/abc") {
					t.Errorf("tar -tvf: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestAbortLeavesNothing checks that an aborted writer leaves no file, temporary or final.
func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "x.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	w.AddBytes("a", []byte("a"))
	if err := w.Add("b", 10, strings.NewReader("short")); err == nil {
		t.Error("a member shorter than its size was accepted")
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// rawTar builds a tar of the given headers, each with its body.
func rawTar(t testing.TB, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = strings.Repeat("x", int(h.Size))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	return buf.Bytes()
}

func writeTemp(t testing.TB, b []byte) string {
	p := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLinks follows links that stay inside the archive, as docker save writes them.
func TestLinks(t *testing.T) {
	p := writeTemp(t, rawTar(t,
		&tar.Header{Typeflag: tar.TypeReg, Name: "./aaa/layer.tar", Size: 3},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "bbb/layer.tar", Linkname: "../aaa/layer.tar"},
		&tar.Header{Typeflag: tar.TypeLink, Name: "ccc/layer.tar", Linkname: "aaa/layer.tar"},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "loop1", Linkname: "loop2"},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "loop2", Linkname: "loop1"},
	))
	a, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, n := range []string{"aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"} {
		if b, err := fs.ReadFile(a, n); err != nil || string(b) != "xxx" {
			t.Errorf("%s: %q, %v", n, b, err)
		}
	}
	if _, err := a.Open("loop1"); !errors.Is(err, ErrArchive) {
		t.Errorf("a link loop: %v, want ErrArchive", err)
	}
}

// TestHostileArchives refuses, naming the member, what no image archive holds.
func TestHostileArchives(t *testing.T) {
	tests := []struct {
		name string
		hdr  *tar.Header
	}{
		{"dot-dot", &tar.Header{Typeflag: tar.TypeReg, Name: "../etc/passwd", Size: 1}},
		{"inner dot-dot", &tar.Header{Typeflag: tar.TypeReg, Name: "blobs/../../x", Size: 1}},
		{"absolute", &tar.Header{Typeflag: tar.TypeReg, Name: "/etc/passwd", Size: 1}},
		{"symlink out", &tar.Header{Typeflag: tar.TypeSymlink, Name: "a/layer.tar", Linkname: "../../etc/passwd"}},
		{"absolute symlink", &tar.Header{Typeflag: tar.TypeSymlink, Name: "layer.tar", Linkname: "/etc/passwd"}},
		{"hard link out", &tar.Header{Typeflag: tar.TypeLink, Name: "layer.tar", Linkname: "../x"}},
		{"device", &tar.Header{Typeflag: tar.TypeChar, Name: "dev", Devmajor: 1, Devminor: 3}},
	}
	for _, tt := range tests {
		p := writeTemp(t, rawTar(t, tt.hdr))
		_, err := Open(p, Options{})
		if !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), strings.TrimPrefix(tt.hdr.Name, "./")) {
			t.Errorf("%s: Open = %v, want ErrArchive naming %s", tt.name, err, tt.hdr.Name)
		}
	}
	dup := writeTemp(t, rawTar(t, &tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1}, &tar.Header{Typeflag: tar.TypeReg, Name: "./a", Size: 2}))
	if _, err := Open(dup, Options{}); !errors.Is(err, ErrArchive) {
		t.Errorf("a member given twice: %v", err)
	}
	good := rawTar(t, &tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1000})
	if _, err := Open(writeTemp(t, good[:700]), Options{}); !errors.Is(err, ErrArchive) {
		t.Errorf("a truncated archive: %v", err)
	}
	if _, err := Open(writeTemp(t, []byte("\xfd7zXZ\x00rest")), Options{}); !errors.Is(err, ErrArchive) || !strings.Contains(err.Error(), "xz") {
		t.Errorf("an xz file: %v", err)
	}
}

// FuzzOpen opens arbitrary bytes as an archive: it must not panic, and every member it lists
// must be a valid name that opens (or fails cleanly, for a link loop).
func FuzzOpen(f *testing.F) {
	f.Add(rawTar(f, &tar.Header{Typeflag: tar.TypeReg, Name: "index.json", Size: 2}))
	f.Add(rawTar(f, &tar.Header{Typeflag: tar.TypeReg, Name: "./blobs/sha256/a", Size: 4},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "x/layer.tar", Linkname: "../blobs/sha256/a"}))
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.tar")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Open(p, Options{TempDir: t.TempDir()})
		if err != nil {
			return
		}
		defer a.Close()
		for _, n := range a.Names() {
			if !fs.ValidPath(n) || strings.Contains(n, "..") && strings.Contains("/"+n+"/", "/../") {
				t.Fatalf("member name %q escapes", n)
			}
			if f, err := a.Open(n); err == nil {
				fi, _ := f.Stat()
				if _, err := io.Copy(io.Discard, f); err != nil && fi.Size() > 0 {
					t.Fatalf("reading %s: %v", n, err)
				}
			}
		}
	})
}

// FuzzCleanName checks that a cleaned member name never leaves the archive.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"./a/b", "a/../b", "/x", "..", "a//b/", "./", "blobs/sha256/" + strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := CleanName(s)
		if err != nil || n == "." {
			return
		}
		if !fs.ValidPath(n) || strings.HasPrefix(n, "/") {
			t.Fatalf("CleanName(%q) = %q", s, n)
		}
		for _, e := range strings.Split(n, "/") {
			if e == ".." {
				t.Fatalf("CleanName(%q) = %q keeps ..", s, n)
			}
		}
	})
}
