package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bale-project/bale/archive"
)

// TestBombs: bundles that would make a reader decompress far more than they declare, or hold
// a huge decoder window, are refused with bounded memory.
func TestBombs(t *testing.T) {
	fx := newFixture(t)
	genuine := unzstd(t, fx.bundle(t))

	// 64 MiB of zeros after the tar end compress to a few KB.
	trailing := zstdBytes(t, append(append([]byte(nil), genuine...), make([]byte, 64<<20)...))

	// A window of 256 MiB declared in the frame header.
	var wide bytes.Buffer
	zw, err := zstd.NewWriter(&wide, zstd.WithWindowSize(256<<20), zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(genuine)
	zw.Write(make([]byte, 1<<20))
	zw.Close()

	// A blob member whose header claims 8 GiB (the catalog says otherwise).
	ms := readMembers(t, fx.bundle(t))
	var huge []byte
	for i, m := range ms {
		if isBlobName(m.hdr.Name) {
			h := *m.hdr
			h.Size = 8 << 30
			h.Format = tar.FormatPAX
			raw := rawHeaderOnly(t, &h)
			huge = craftWithRaw(t, ms[:i], raw)
			break
		}
	}

	for name, b := range map[string][]byte{"zeros after the end": trailing, "256 MiB window": wide.Bytes(), "8 GiB member": huge} {
		t.Run(name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, dst := newTarget(t)
			_, err := unpackBytes(b, dst)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil || !errors.Is(err, archive.ErrBundle) {
				t.Fatalf("Unpack: %v; want ErrBundle", err)
			}
			if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 256<<20 {
				t.Errorf("refusing it allocated %d MiB", grew>>20)
			}
			checkTagsComplete(t, dst.Root())
			t.Logf("refused: %.200s", strings.ReplaceAll(err.Error(), "\n", " "))
		})
	}
}

// rawHeaderOnly is the tar header blocks of h, without a body.
func rawHeaderOnly(t *testing.T, h *tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return b[:len(b)-int(h.Size%512)] // header blocks only (PAX record and header), no body
}

// craftWithRaw writes members then raw bytes, compressed: a stream that ends inside a member.
func craftWithRaw(t *testing.T, ms []member, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := *m.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	tw.Flush()
	buf.Write(raw)
	buf.Write(make([]byte, 4096))
	return zstdBytes(t, buf.Bytes())
}
