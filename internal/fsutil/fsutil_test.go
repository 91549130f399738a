package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bale-project/bale/internal/testenv"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "file")
	if err := WriteFile(p, []byte("one"), FileMode); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), BlobMode); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Errorf("content = %q, %v", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != BlobMode {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), BlobMode)
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != DirMode&^currentUmask() {
		t.Errorf("parent mode %v, want %v", di.Mode().Perm(), DirMode)
	}
	if l := testenv.Leftovers(t, filepath.Dir(p), "file"); len(l) != 0 {
		t.Errorf("left in the directory: %v", l)
	}
	// A directory in the way: the error leaves no temporary file.
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "x"), 0o755)
	if err := WriteFile(filepath.Join(blocked, "x"), []byte("y"), FileMode); err == nil {
		t.Error("WriteFile over a directory succeeded")
	}
	if l := testenv.Leftovers(t, blocked, "x"); len(l) != 0 {
		t.Errorf("left after a failed write: %v", l)
	}
}

// TestWriteFileParents checks the parents WriteFile makes: many writers making the same new
// directories at once all succeed, and a file where a parent should be is an error that
// leaves nothing behind.
func TestWriteFileParents(t *testing.T) {
	dir := t.TempDir()
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			errs <- WriteFile(filepath.Join(dir, "a", "b", "c", fmt.Sprint("f", i%4), "link"), []byte("x"), FileMode)
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent WriteFile: %v", err)
		}
	}
	for i := range 4 {
		if b, err := os.ReadFile(filepath.Join(dir, "a", "b", "c", fmt.Sprint("f", i), "link")); err != nil || string(b) != "x" {
			t.Errorf("f%d/link = %q, %v", i, b, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "file"), []byte("f"), 0o644)
	if err := WriteFile(filepath.Join(dir, "file", "sub", "link"), []byte("x"), FileMode); err == nil {
		t.Error("WriteFile under a regular file succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "file", "link"), []byte("x"), FileMode); err == nil {
		t.Error("WriteFile into a regular file succeeded")
	}
	if l := testenv.Leftovers(t, dir, "a", "file"); len(l) != 0 {
		t.Errorf("left: %v", l)
	}
}

func currentUmask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestLink(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("data"), 0o444)
	dst := filepath.Join(dir, "x", "y", "dst")
	if err := Link(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, err := os.Stat(dst)
	if err != nil || !os.SameFile(a, b) {
		t.Fatalf("dst is not a hard link of src: %v", err)
	}
	if err := Link(src, dst); err != nil {
		t.Errorf("Link onto itself: %v", err)
	}
	// An existing different dst is replaced.
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("other"), 0o444)
	if err := Link(other, dst); err != nil {
		t.Fatal(err)
	}
	o, _ := os.Stat(other)
	if b, _ := os.Stat(dst); !os.SameFile(o, b) {
		t.Error("Link did not replace dst")
	}
	if l := testenv.Leftovers(t, filepath.Dir(dst), "dst"); len(l) != 0 {
		t.Errorf("left: %v", l)
	}
	// A missing source fails and leaves nothing.
	if err := Link(filepath.Join(dir, "missing"), filepath.Join(dir, "x", "y", "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Link(missing) = %v, want ErrNotExist", err)
	}
	if l := testenv.Leftovers(t, filepath.Dir(dst), "dst"); len(l) != 0 {
		t.Errorf("left after a failed link: %v", l)
	}
}

func TestIsCrossDevice(t *testing.T) {
	if !IsCrossDevice(&os.LinkError{Op: "link", Old: "a", New: "b", Err: syscall.EXDEV}) {
		t.Error("EXDEV link error not recognised")
	}
	if !IsCrossDevice(fmt.Errorf("wrapped: %w", syscall.EXDEV)) {
		t.Error("wrapped EXDEV not recognised")
	}
	if IsCrossDevice(&os.LinkError{Op: "link", Old: "a", New: "b", Err: syscall.EPERM}) || IsCrossDevice(nil) {
		t.Error("other errors recognised as cross-device")
	}
}

// TestWriteFrom: what the reader gives lands at the path whole; a read error leaves nothing, not
// even the temporary file, and keeps a file already there.
func TestWriteFrom(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	if err := WriteFrom(p, strings.NewReader("content"), FileMode); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "content" {
		t.Errorf("content %q", got)
	}
	boom := errors.New("boom")
	err := WriteFrom(p, io.MultiReader(strings.NewReader("new"), failing{boom}), FileMode)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "content" {
		t.Errorf("a failed write changed the file to %q", got)
	}
	if l := testenv.Leftovers(t, filepath.Dir(p), "f"); len(l) != 0 {
		t.Errorf("a failed write left %v", l)
	}
}

type failing struct{ err error }

func (e failing) Read([]byte) (int, error) { return 0, e.err }

// TestLockSwept: a target with no lock file, an empty one (every bale before LockSwept) or one
// marked dirty (a holder that did not let go: killed) is swept; one whose last holder let go
// is not walked; the mark is dirty while the lock is held and clean after.
func TestLockSwept(t *testing.T) {
	leftover := func(t *testing.T, root string) string {
		p := filepath.Join(root, "repositories", "a", ".bale-tmp-123")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mark := func(t *testing.T, root string) string {
		b, _ := os.ReadFile(filepath.Join(root, LockName))
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		lock  *string // content of the lock file before, nil: none
		swept bool
	}{
		{"no lock file", nil, true},
		{"empty (an older bale)", ptr(""), true},
		{"dirty (killed)", ptr("dirty\n"), true},
		{"other content", ptr("clean"), true},
		{"clean", ptr("clean\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := leftover(t, root)
			if tc.lock != nil {
				if err := os.WriteFile(filepath.Join(root, LockName), []byte(*tc.lock), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			unlock, err := LockSwept(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); os.IsNotExist(err) != tc.swept {
				t.Errorf("leftover swept: %v, want %v", os.IsNotExist(err), tc.swept)
			}
			if m := mark(t, root); m != "dirty\n" {
				t.Errorf("while held the lock file says %q, want dirty", m)
			}
			if _, err := LockSwept(root); !errors.Is(err, ErrLocked) {
				t.Errorf("a second LockSwept: %v, want ErrLocked", err)
			}
			unlock()
			if m := mark(t, root); m != "clean\n" {
				t.Errorf("after unlock the lock file says %q, want clean", m)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
