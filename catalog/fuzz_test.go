package catalog_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bale-project/bale/catalog"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzCatalogRead/small-catalog from the fixture catalog")

// tinyCatalog is the seed of FuzzCatalogRead: one repository, one tag, one image.
func tinyCatalog(t testing.TB) *catalog.Catalog {
	f := newFixture()
	c := catalog.New()
	c.Add("app", "v1", f.image(t, f.ociImage), nil)
	c.Meta.BaleVersion = "seed"
	c.Meta.ID = specID(c)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWriteFuzzSeed regenerates the committed format-4 seed of FuzzCatalogRead (go test -run
// TestWriteFuzzSeed -update ./catalog) and otherwise checks that it is still what Write
// produces, so the seed stays a valid catalog of the current format. The seed small-catalog
// is the same catalog as bale 0.3 wrote it (format 1, a bucket per repository), kept for the
// reader of formats 1 to 3 and for TestReadCorruptCatalog's offsets.
func TestWriteFuzzSeed(t *testing.T) {
	_, b := writeCatalog(t, tinyCatalog(t))
	seed := filepath.Join("testdata", "fuzz", "FuzzCatalogRead", "small-catalog-format4")
	enc := "go test fuzz v1\n[]byte(" + quoteBytes(b) + ")\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seed, []byte(enc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(seed)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != enc {
		t.Errorf("%s is not what Write produces now; run with -update", seed)
	}
}

// quoteBytes is Go's %q of b, the encoding of []byte values in fuzz corpus files.
func quoteBytes(b []byte) string {
	const hexd = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '\\', 'x', hexd[c>>4], hexd[c&15])
		}
	}
	return string(append(out, '"'))
}

// readDeadline bounds one Read of a catalog of at most a few pages (it takes milliseconds);
// childDeadline bounds a child process of TestReadCorruptCatalog.
const (
	readDeadline  = 5 * time.Second
	childDeadline = 2 * time.Second
)

// FuzzCatalogRead checks that Read, and OpenStream and Walk (bale list of a format-4 bundle),
// never panic, crash or hang on any file: a bundle's catalog comes from outside. Whatever it accepts must be safe to Validate and ComputeID.
// A hang is reported as a failure after readDeadline (the stuck goroutine is abandoned).
func FuzzCatalogRead(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 2*catalog.PageSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "catalog.db")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			streamWalk(p)
			c, err := catalog.Read(p)
			if err != nil {
				return
			}
			_ = c.Validate()
			_ = c.ComputeID()
			_ = c.Entries()
		}()
		select {
		case <-done:
		case <-time.After(readDeadline):
			t.Fatalf("Read of a %d-byte file did not return within %v", len(b), readDeadline)
		}
	})
}

// seedBytes decodes the committed FuzzCatalogRead seed name (a catalog written by Write).
func seedBytes(t *testing.T, name string) []byte {
	t.Helper()
	enc, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzCatalogRead", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(enc), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("seed file is not a []byte corpus entry")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestReadCorruptCatalog holds the inputs FuzzCatalogRead found: the committed seed with one
// byte changed in a bbolt leaf page, or cut short. Read must return an error for each. Every case runs in
// a child process, so a panic, a fatal fault or a runaway read cannot take the other tests
// down; the child is killed after childDeadline.
func TestReadCorruptCatalog(t *testing.T) {
	seed := seedBytes(t, "small-catalog")
	if _, err := catalog.Read(writeTemp(t, seed)); err != nil {
		t.Fatalf("the unchanged seed does not read: %v", err)
	}
	patch := func(offset int, value byte) func([]byte) []byte {
		return func(b []byte) []byte {
			b[offset] = value
			return b
		}
	}
	truncate := func(pages int) func([]byte) []byte {
		return func(b []byte) []byte { return b[:pages*catalog.PageSize] }
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		// Page 7, a leaf: the high byte of an element's key size.
		{"huge key size in a search (slice bounds panic)", patch(28747, 0xa2)},
		{"huge key size of the first element (slice bounds panic)", patch(28703, 0xa5)},
		{"huge key size in another leaf (slice bounds panic)", patch(29683, 0xb3)},
		// Page 7: an element's flags say "bucket"; its value is read as a bucket header and
		// bbolt reads tens of MiB past the mapped file (40 s, 1.6 GB, and the bytes it read
		// end up in the error message).
		{"value flagged as a bucket (runaway read)", patch(28800, 0x04)},
		// Found after Read began running bbolt's Check first: one byte in page 2 makes a
		// cursor loop while memory grows (1.8 GB after 20 s); one byte in page 2 or in page 9
		// makes Check's own goroutine fault (SIGSEGV, fatal).
		{"cursor loop (runaway read)", patch(8415, 0x01)},
		{"fault in the consistency check (page 2)", patch(8219, 0x20)},
		{"fault in the consistency check (page 9)", patch(36901, 0x19)},
		// A catalog cut short, as a truncated download would leave it: pages past the end of
		// the file are read through the memory map (SIGBUS).
		{"truncated to 10 of 12 pages", truncate(10)},
		{"truncated to 8 of 12 pages", truncate(8)},
		{"truncated to 5 of 12 pages", truncate(5)},
		{"truncated to 4 of 12 pages", truncate(4)},
		{"truncated to 2 of 12 pages", truncate(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			readInChild(t, tt.mutate(append([]byte(nil), seed...)), true)
		})
	}
}

// readInChild checks that Read of b, and OpenStream and Walk of it, return (with an error if
// refuse), in a child process killed after childDeadline.
func readInChild(t *testing.T, b []byte, refuse bool) {
	t.Helper()
	p := writeTemp(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), childDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReadChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BALE_TEST_READ_CATALOG="+p)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		t.Errorf("Read did not return within %v", childDeadline)
	case err != nil || !strings.Contains(out.String(), "READ RESULT: ") || !strings.Contains(out.String(), "STREAM RESULT: "):
		t.Errorf("Read or Stream crashed (%v):\n%s", err, firstLines(out.String(), 3))
	case refuse && (!strings.Contains(out.String(), "READ RESULT: error") || !strings.Contains(out.String(), "STREAM RESULT: error")):
		t.Errorf("Read or Stream accepted the file:\n%s", firstLines(out.String(), 3))
	}
}

// TestReadChildProcess is the child of TestReadCorruptCatalog.
func TestReadChildProcess(t *testing.T) {
	p := os.Getenv("BALE_TEST_READ_CATALOG")
	if p == "" {
		t.Skip("child process of TestReadCorruptCatalog")
	}
	if err := streamWalk(p); err != nil {
		fmt.Println("STREAM RESULT: error")
	} else {
		fmt.Println("STREAM RESULT: accepted")
	}
	_, err := catalog.Read(p)
	if err != nil {
		fmt.Println("READ RESULT: error")
		return
	}
	fmt.Println("READ RESULT: accepted")
}

// streamWalk reads the catalog at p as bale list does (catalog.OpenStream, Walk, Validate of
// each repository).
func streamWalk(p string) error {
	s, err := catalog.OpenStream(p, "catalog.db")
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Walk(func(repo *catalog.Catalog) error { return repo.Validate() })
	return err
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "..."
		}
	}
	return strings.Join(lines, "\n")
}
