package layout_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
)

func descOf(b []byte) layout.Descriptor {
	h := sha256.Sum256(b)
	return layout.Descriptor{Digest: digest.Digest("sha256:" + hex.EncodeToString(h[:])), Size: int64(len(b))}
}

func TestWriteVerified(t *testing.T) {
	content := []byte("verified content")
	d := descOf(content)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"good", content, true},
		{"wrong byte", []byte("verified cOntent"), false},
		{"short", content[:3], false},
		{"long", append(append([]byte{}, content...), '!'), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "blob")
			err := layout.WriteVerified(p, d, bytes.NewReader(tt.in), fsutil.BlobMode)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(p); !bytes.Equal(got, content) {
					t.Errorf("content %q", got)
				}
				if l := testenv.Leftovers(t, dir, "blob"); len(l) != 0 {
					t.Errorf("left: %v", l)
				}
				return
			}
			if !errors.Is(err, layout.ErrDigestMismatch) {
				t.Errorf("err = %v, want ErrDigestMismatch", err)
			}
			if l := testenv.Leftovers(t, dir); len(l) != 0 {
				t.Errorf("a failed write left %v", l)
			}
		})
	}
	t.Run("reader error", func(t *testing.T) {
		dir := t.TempDir()
		boom := errors.New("boom")
		err := layout.WriteVerified(filepath.Join(dir, "blob"), d, io.MultiReader(bytes.NewReader(content[:4]), errReader{boom}), fsutil.BlobMode)
		if !errors.Is(err, boom) {
			t.Errorf("err = %v, want the reader's error", err)
		}
		if l := testenv.Leftovers(t, dir); len(l) != 0 {
			t.Errorf("a failed write left %v", l)
		}
	})
	t.Run("replaces an existing file only when verified", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "blob")
		os.WriteFile(p, []byte("old"), 0o644)
		if err := layout.WriteVerified(p, d, strings.NewReader("bad"), fsutil.BlobMode); err == nil {
			t.Fatal("bad content accepted")
		}
		if got, _ := os.ReadFile(p); string(got) != "old" {
			t.Errorf("a failed write changed the file to %q", got)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, []byte("12345"), 0o444)
	f, size, err := layout.OpenRegular(reg)
	if err != nil || size != 5 {
		t.Fatalf("layout.OpenRegular(regular) = %d, %v", size, err)
	}
	f.Close()

	link := filepath.Join(dir, "link")
	os.Symlink(reg, link)
	sub := filepath.Join(dir, "dir")
	os.Mkdir(sub, 0o755)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Logf("no fifo: %v", err)
		fifo = ""
	}
	for _, p := range []string{link, sub, fifo} {
		if p == "" {
			continue
		}
		f, _, err := layout.OpenRegular(p)
		if !errors.Is(err, layout.ErrInvalid) {
			if f != nil {
				f.Close()
			}
			t.Errorf("layout.OpenRegular(%s) = %v, want ErrInvalid", filepath.Base(p), err)
		}
	}
	if _, _, err := layout.OpenRegular(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("layout.OpenRegular(missing) = %v, want ErrNotExist", err)
	}
}

// TestOpenRegularReader checks the lean open of pack's and verify's reads: the whole content
// of a regular file then io.EOF, and what OpenRegular refuses refused the same way (a FIFO at
// once, not blocking until a writer comes).
func TestOpenRegularReader(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	content := bytes.Repeat([]byte("0123456789"), 7000) // more than one read of io.Copy
	os.WriteFile(reg, content, 0o444)
	rc, size, err := layout.OpenRegularReader(reg)
	if err != nil || size != int64(len(content)) {
		t.Fatalf("layout.OpenRegularReader(regular) = %d, %v", size, err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("reading it: %d bytes, %v; want %d bytes", len(got), err, len(content))
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Errorf("Read after Close succeeded")
	}

	link := filepath.Join(dir, "link")
	os.Symlink(reg, link)
	sub := filepath.Join(dir, "dir")
	os.Mkdir(sub, 0o755)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Logf("no fifo: %v", err)
		fifo = ""
	}
	for _, p := range []string{link, sub, fifo} {
		if p == "" {
			continue
		}
		rc, _, err := layout.OpenRegularReader(p)
		if !errors.Is(err, layout.ErrInvalid) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("layout.OpenRegularReader(%s) = %v, want ErrInvalid", filepath.Base(p), err)
		}
	}
	if _, _, err := layout.OpenRegularReader(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("layout.OpenRegularReader(missing) = %v, want ErrNotExist", err)
	}
}

func TestReadVerifiedAndVerifyFile(t *testing.T) {
	dir := t.TempDir()
	content := []byte("file content")
	d := descOf(content)
	p := filepath.Join(dir, "f")
	os.WriteFile(p, content, 0o444)
	if got, err := layout.ReadVerified(p, d); err != nil || !bytes.Equal(got, content) {
		t.Errorf("ReadVerified = %q, %v", got, err)
	}
	if err := layout.VerifyFile(p, d); err != nil {
		t.Errorf("VerifyFile: %v", err)
	}
	other := descOf([]byte("file c0ntent"))
	if _, err := layout.ReadVerified(p, other); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("layout.ReadVerified(wrong digest) = %v", err)
	}
	if err := layout.VerifyFile(p, other); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("layout.VerifyFile(wrong digest) = %v", err)
	}
	if err := layout.VerifyFile(p, layout.Descriptor{Digest: d.Digest, Size: d.Size + 1}); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("layout.VerifyFile(wrong size) = %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(p, link)
	if err := layout.VerifyFile(link, d); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("layout.VerifyFile(symlink) = %v, want ErrInvalid", err)
	}
	if _, err := layout.ReadVerified(link, d); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("layout.ReadVerified(symlink) = %v, want ErrInvalid", err)
	}
}

// memSource serves blobs from memory; fileSource also says where they are on disk.
type memSource struct{ blobs map[digest.Digest][]byte }

func (m memSource) Refs() ([]layout.Ref, error)               { return nil, nil }
func (m memSource) Resolve(layout.Ref) (digest.Digest, error) { return "", layout.ErrNotFound }
func (m memSource) ReadManifest(string, digest.Digest) (*layout.Manifest, error) {
	return nil, layout.ErrNotFound
}
func (m memSource) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	b, ok := m.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type fileSource struct {
	memSource
	paths map[digest.Digest]string
}

func (f fileSource) BlobPath(_ string, d layout.Descriptor) (string, error) {
	p, ok := f.paths[d.Digest]
	if !ok {
		return "", fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return p, nil
}

func TestPlace(t *testing.T) {
	content := []byte("placed blob")
	d := descOf(content)
	srcDir := t.TempDir()
	srcFile := filepath.Join(srcDir, "blob")
	os.WriteFile(srcFile, content, 0o444)
	mem := memSource{blobs: map[digest.Digest][]byte{d.Digest: content}}

	t.Run("file source links", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "d", "data")
		copied, err := layout.Place(dst, fileSource{mem, map[digest.Digest]string{d.Digest: srcFile}}, "r", d)
		if err != nil || copied {
			t.Fatalf("Place = %v, %v; want linked", copied, err)
		}
		a, _ := os.Stat(srcFile)
		if b, err := os.Stat(dst); err != nil || !os.SameFile(a, b) {
			t.Errorf("not a hard link: %v", err)
		}
	})
	t.Run("file source without the blob", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "data")
		if _, err := layout.Place(dst, fileSource{mem, nil}, "r", d); !errors.Is(err, layout.ErrNotFound) {
			t.Errorf("Place = %v, want ErrNotFound", err)
		}
	})
	t.Run("plain source copies", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "data")
		copied, err := layout.Place(dst, mem, "r", d)
		if err != nil || !copied {
			t.Fatalf("Place = %v, %v; want copied", copied, err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
			t.Errorf("copied %q", got)
		}
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != fsutil.BlobMode {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), fsutil.BlobMode)
		}
	})
	t.Run("plain source with bad content", func(t *testing.T) {
		dir := t.TempDir()
		bad := memSource{blobs: map[digest.Digest][]byte{d.Digest: []byte("placed blub")}}
		if _, err := layout.Place(filepath.Join(dir, "data"), bad, "r", d); !errors.Is(err, layout.ErrDigestMismatch) {
			t.Errorf("Place = %v, want ErrDigestMismatch", err)
		}
		if l := testenv.Leftovers(t, dir); len(l) != 0 {
			t.Errorf("left: %v", l)
		}
	})
	t.Run("cross-device falls back to a verified copy", func(t *testing.T) {
		other, err := os.MkdirTemp("/dev/shm", "bale-fsutil-test-")
		if err != nil {
			t.Skip("no /dev/shm")
		}
		defer os.RemoveAll(other)
		var a, b syscall.Stat_t
		if syscall.Stat(other, &a) != nil || syscall.Stat(srcDir, &b) != nil || a.Dev == b.Dev {
			t.Skip("/dev/shm is on the same file system as the temp dir")
		}
		dst := filepath.Join(other, "data")
		copied, err := layout.Place(dst, fileSource{mem, map[digest.Digest]string{d.Digest: srcFile}}, "r", d)
		if err != nil || !copied {
			t.Fatalf("Place = %v, %v; want copied", copied, err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
			t.Errorf("copied %q", got)
		}
	})
}
