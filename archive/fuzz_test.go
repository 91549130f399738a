package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout/registry"
)

// FuzzReader feeds arbitrary bytes to NewReader and reads every member to its end. It must
// never panic, and every member it returns must have a name registry.ParsePath accepts (so
// no name can escape the target). Seeds: testdata/fuzz/FuzzReader (a genuine bundle and
// truncations of it; regenerate with BALE_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds).
//
//	go test -run='^$' -fuzz='^FuzzReader$' -fuzztime=60s ./archive
//
// bbolt panics on, or spends seconds and gigabytes reading, a damaged catalog (see
// TestReaderCrashers); BALE_FUZZ_GENUINE_CATALOG=1 skips inputs whose catalog member is not
// the genuine one, to explore the rest of the reader past that known bug.
func FuzzReader(f *testing.F) {
	genuineCatalog := newGenuine(f).members[0].body
	onlyGenuine := os.Getenv("BALE_FUZZ_GENUINE_CATALOG") != ""
	f.Fuzz(func(t *testing.T, data []byte) {
		if onlyGenuine && !hasCatalog(data, genuineCatalog) {
			return
		}
		readBundle(t, data)
	})
}

// hasCatalog reports whether the first member of the bundle data is the catalog cat.
func hasCatalog(data, cat []byte) bool {
	zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return false
	}
	defer zr.Close()
	tr := tar.NewReader(io.LimitReader(zr, 1<<20))
	h, err := tr.Next()
	if err != nil || h.Name != archive.CatalogName || h.Size != int64(len(cat)) {
		return false
	}
	b, err := io.ReadAll(tr)
	return err == nil && bytes.Equal(b, cat)
}

// FuzzReaderMembers fuzzes the tar stream after a genuine catalog member: the target
// prepends the catalog and compresses the whole with zstd, so that mutations reach the
// member checks instead of breaking zstd or the catalog.
//
//	go test -run='^$' -fuzz='^FuzzReaderMembers$' -fuzztime=60s ./archive
func FuzzReaderMembers(f *testing.F) {
	g := newGenuine(f)
	head := plainTar(f, g.ms()[:1])
	head = head[:len(head)-1024] // without the end-of-archive blocks
	tb := plainTar(f, g.ms())
	rest := tb[len(head):]
	f.Add(rest)
	f.Add(rest[:len(rest)/2])
	f.Add(plainTar(f, g.ms()[1:1+g.nBlobs]))
	f.Add(plainTar(f, g.ms()[1+g.nBlobs:]))
	f.Fuzz(func(t *testing.T, data []byte) {
		readBundle(t, zstdBytes(t, append(bytes.Clone(head), data...)))
	})
}

// FuzzSeekTable fuzzes the seek table at the end of a genuine bundle of several frames, read
// through NewFileReader: whatever the table says, the reader must either ignore it (and
// stream) or fail, and never return members the stream does not hold.
//
//	go test -run='^$' -fuzz='^FuzzSeekTable$' -fuzztime=60s ./archive
func FuzzSeekTable(f *testing.F) {
	b := bigFixture(f, 3*cutSizeForTests).bundle(f)
	n := seekTableSize(f, b)
	frames, table := b[:len(b)-n], b[len(b)-n:]
	f.Add(table)
	f.Add(table[:len(table)-1])
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "b.tar.zst")
		if err := os.WriteFile(p, append(bytes.Clone(frames), data...), 0o644); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		br, err := archive.NewFileReader(fh)
		if err != nil {
			return
		}
		checkReader(t, br)
	})
}

// cutSizeForTests is a blob size above the writer's frame cut (64 KiB), so the fixture has a
// frame of its own for it.
const cutSizeForTests = 96 << 10

// readBundle reads a bundle the way Unpack does and checks what the reader returns.
func readBundle(t *testing.T, data []byte) {
	br, err := archive.NewReader(bytes.NewReader(data))
	if err != nil {
		return
	}
	checkReader(t, br)
}

// checkReader reads every member of br and checks what it returns.
func checkReader(t *testing.T, br *archive.Reader) {
	defer br.Close()
	c := br.Catalog()
	if c == nil {
		t.Fatal("NewReader succeeded without a catalog")
	}
	blobs := map[digest.Digest]bool{}
	readFailed := false
	for range 100000 {
		m, err := br.Next()
		if err == io.EOF {
			// A complete bundle: unless a member failed (which the caller saw, and Next then
			// skips, as bale verify relies on), every blob of the catalog came by, verified.
			if !readFailed && len(blobs) != len(c.Blobs) {
				t.Fatalf("bundle ended after %d verified blobs, the catalog has %d", len(blobs), len(c.Blobs))
			}
			return
		}
		if err != nil {
			return
		}
		checkMemberName(t, m.Name)
		spec, err := registry.ParsePath(m.Name)
		if err != nil {
			t.Fatalf("member %q: ParsePath: %v", m.Name, err)
		}
		if fmt.Sprint(spec) != fmt.Sprint(m.Spec) {
			t.Fatalf("member %q: Spec %v, ParsePath says %v", m.Name, m.Spec, spec)
		}
		b, isBlob := spec.(registry.BlobData)
		n, err := io.Copy(io.Discard, m)
		if err != nil {
			readFailed = true
			continue // Next skips the rest of the member
		}
		if isBlob {
			if m.Blob.Digest != b.Digest || n != m.Blob.Size {
				t.Fatalf("blob member %q read %d bytes as %v", m.Name, n, m.Blob)
			}
			blobs[b.Digest] = true
		} else if n != 0 {
			t.Fatalf("link member %q: Read gave %d bytes", m.Name, n)
		}
	}
	t.Fatal("more than 100000 members")
}

// TestReaderCrashers reads the bundles fuzzing found (testdata/crashers: the genuine fuzz
// seed with a few bytes of its compressed catalog changed), each in a child process so that
// a crash, a runaway allocation or a hang is reported instead of taking the test binary
// down. The reader must refuse each within a few seconds, without a panic.
func TestReaderCrashers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "crashers", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no crashers: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), crasherTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReadCrasherChild$", "-test.v")
			cmd.Env = append(os.Environ(), "BALE_CRASHER="+abs)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			switch {
			case ctx.Err() != nil:
				t.Errorf("the reader was still busy after %v on this %d-byte bundle (killed)", time.Since(start).Round(time.Millisecond), fileSize(abs))
			case err != nil:
				t.Errorf("the reader crashed: %v\n%s", err, crashReport(string(out)))
			case !strings.Contains(string(out), "refused: "):
				t.Errorf("the reader did not refuse the bundle:\n%s", lastLines(string(out), 20))
			}
		})
	}
}

// crasherTimeout bounds each crasher: a 4 KB bundle takes milliseconds to refuse.
const crasherTimeout = 5 * time.Second

// TestReadCrasherChild is TestReaderCrashers' child: it reads the bundle BALE_CRASHER names
// to its end and prints why it was refused.
func TestReadCrasherChild(t *testing.T) {
	p := os.Getenv("BALE_CRASHER")
	if p == "" {
		t.Skip("run by TestReaderCrashers")
	}
	limitMemory()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Read it several times: what bbolt makes of a damaged catalog may depend on memory it
	// should not read.
	for range 5 {
		_, dst := newTarget(t)
		_, err = unpackBytes(data, dst)
		if err == nil {
			t.Fatal("Unpack accepted a damaged bundle")
		}
	}
	fmt.Printf("refused: %.300s\n", err)
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// crashReport is the panic or fatal error in a child's output and the stack below it.
func crashReport(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "unexpected fault address") {
			return strings.Join(lines[i:min(len(lines), i+30)], "\n")
		}
	}
	return lastLines(out, 30)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkMemberName fails on a name that could leave the directory it is extracted into.
func checkMemberName(t *testing.T, name string) {
	t.Helper()
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\x00\\") ||
		filepath.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") {
		t.Fatalf("reader returned member %q", name)
	}
	if !strings.HasPrefix(name, prefix) {
		t.Fatalf("reader returned member %q outside %s", name, prefix)
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzReader from the fixture when
// BALE_WRITE_FUZZ_SEEDS is set; otherwise it checks that the genuine seed is still a bundle
// the reader accepts in full.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if os.Getenv("BALE_WRITE_FUZZ_SEEDS") == "" {
		data, err := readSeed(filepath.Join(dir, "genuine"))
		if err != nil {
			t.Fatal(err)
		}
		parent, dst := newTarget(t)
		if _, err := unpackBytes(data, dst); err != nil {
			t.Errorf("the genuine fuzz seed no longer unpacks: %v", err)
		}
		checkTagsComplete(t, dst.Root())
		checkOnlyTarget(t, parent)
		return
	}
	b := newGenuine(t).bundle
	seeds := map[string][]byte{
		"genuine":       b,
		"truncated-1-4": b[:len(b)/4],
		"truncated-1-2": b[:len(b)/2],
		"truncated-3-4": b[:len(b)*3/4],
		"no-last-byte":  b[:len(b)-1],
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readSeed reads a []byte value from a file in Go's fuzz corpus format.
func readSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
	if !ok {
		return nil, fmt.Errorf("%s: not a []byte fuzz seed", path)
	}
	rest = strings.TrimSuffix(strings.TrimSpace(rest), ")")
	var s string
	if _, err := fmt.Sscanf(rest, "%q", &s); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return []byte(s), nil
}
