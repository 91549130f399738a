package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
)

// Benchmarks of the hot paths (go test -run '^$' -bench . ./archive): writing a bundle,
// reading and verifying one, unpacking one into registry storage, reading its catalog. The
// fixture is newFixture plus four 16 MiB layers: three incompressible (like gzip layers) and
// one of text (like an uncompressed tar layer). make bench measures whole commands.

const benchLayer = 16 << 20

// benchFixture is shared by the benchmarks of one run.
func benchFixture(b *testing.B) (*fixture, []byte, string) {
	b.Helper()
	fx := newFixture(b)
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 4 {
		body := make([]byte, benchLayer)
		if i < 3 {
			for j := range body {
				body[j] = byte(r.Uint32())
			}
		} else {
			words := strings.Fields("usr lib bin share doc locale python3 site-packages etc ssl certs include")
			var buf bytes.Buffer
			for buf.Len() < benchLayer {
				fmt.Fprintf(&buf, "/%s/%s/%s-%d.so\n", words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1000))
			}
			body = buf.Bytes()[:benchLayer]
		}
		img := fx.image(b, i%2 == 0, jplatform{OS: "linux", Architecture: "amd64"}, "2021-01-01T00:00:00Z", makeLayer(b, "data.bin", string(body)))
		fx.link(b, fmt.Sprintf("bench/img%d", i), img, nil, "v1")
	}
	bundle := fx.bundle(b)
	p := filepath.Join(b.TempDir(), "bench.tar.zst")
	if err := os.WriteFile(p, bundle, 0o644); err != nil {
		b.Fatal(err)
	}
	return fx, bundle, p
}

// BenchmarkWrite: catalog, every blob read from registry storage and verified, frames
// compressed on every core, written to io.Discard.
func BenchmarkWrite(b *testing.B) {
	fx, _, _ := benchFixture(b)
	c := fx.catalog(b)
	b.SetBytes(fx.totalBytes())
	b.ResetTimer()
	for b.Loop() {
		if err := archive.Write(context.Background(), io.Discard, c, fx.store, archive.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// readAll reads and verifies every member of r.
func readAll(b *testing.B, r *archive.Reader) {
	for {
		m, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFile: every member of a bundle file read and verified (what bale verify
// BUNDLE does), with the parallel frame reader.
func BenchmarkReadFile(b *testing.B) {
	fx, _, p := benchFixture(b)
	b.SetBytes(fx.totalBytes())
	b.ResetTimer()
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		r, err := archive.NewFileReader(f)
		if err != nil {
			b.Fatal(err)
		}
		readAll(b, r)
		r.Close()
		f.Close()
	}
}

// BenchmarkReadStream: the same through the one-stream decoder (a bundle on a pipe).
func BenchmarkReadStream(b *testing.B) {
	fx, bundle, _ := benchFixture(b)
	b.SetBytes(fx.totalBytes())
	b.ResetTimer()
	for b.Loop() {
		r, err := archive.NewReader(bytes.NewReader(bundle))
		if err != nil {
			b.Fatal(err)
		}
		readAll(b, r)
		r.Close()
	}
}

// BenchmarkUnpackFile: a bundle file into a new registry storage dir (no syncfs), blobs
// verified and written on the pipeline.
func BenchmarkUnpackFile(b *testing.B) {
	fx, _, p := benchFixture(b)
	b.SetBytes(fx.totalBytes())
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		_, dst := newTarget(b)
		b.StartTimer()
		if _, err := archive.UnpackFiles(context.Background(), []string{p}, dst, archive.UnpackOptions{NoSync: true}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dst.Root())
		b.StartTimer()
	}
}

// BenchmarkReadCatalog: what bale list reads.
func BenchmarkReadCatalog(b *testing.B) {
	_, _, p := benchFixture(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := archive.ReadCatalog(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifier: sha256 while copying, the cost every blob pays once.
func BenchmarkVerifier(b *testing.B) {
	body := make([]byte, benchLayer)
	d := layout.Descriptor{Digest: digest.Digest("sha256:" + hexOf(body)), Size: int64(len(body))}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, layout.NewVerifier(bytes.NewReader(body), d)); err != nil {
			b.Fatal(err)
		}
	}
}
