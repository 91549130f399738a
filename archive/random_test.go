package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
)

// TestOpenBlobVerifies: a blob read whole from a Bundle, also through http.ServeContent (as
// bale serve sends it: it seeks to the end and back first), is checked against its digest;
// a bundle whose frames are sound but whose blob bytes are not is caught at the end.
func TestOpenBlobVerifies(t *testing.T) {
	fx := bigFixture(t, 2*archive.FrameSize)
	good := fx.bundle(t)
	var big []byte
	for _, b := range fx.blobs {
		if len(b) > len(big) {
			big = b
		}
	}
	d := digest.FromBytes(big)

	// The same bundle with one byte of the big blob changed inside a frame re-encoded whole,
	// so that every frame still decodes and passes its checksum.
	comp, raw := frameTable(t, good)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	probe := big[archive.FrameSize : archive.FrameSize+64]
	var bad []byte
	off := 0
	for i := range comp {
		frame := good[off : off+int(comp[i])]
		got, err := dec.DecodeAll(frame, nil)
		if err != nil {
			t.Fatal(err)
		}
		if j := bytes.Index(got, probe); j >= 0 && bad == nil {
			got[j+10] ^= 0x01
			re := enc.EncodeAll(got, nil)
			c := append([]uint32{}, comp...)
			c[i] = uint32(len(re))
			spliced := append(append(append([]byte{}, good[:off]...), re...), good[off+int(comp[i]):]...)
			bad = withTable(t, spliced, c, raw)
		}
		off += int(comp[i])
	}
	if bad == nil {
		t.Fatal("no frame holds the probe")
	}

	for _, tc := range []struct {
		name   string
		bundle []byte
		ok     bool
	}{{"genuine", good, true}, {"blob bytes changed", bad, false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "b.tar.zst")
			if err := os.WriteFile(p, tc.bundle, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := archive.OpenRandom(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			rs, size, err := b.OpenBlob(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rs.Seek(0, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			if _, err := rs.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rs)
			rs.Close()
			switch {
			case tc.ok && (err != nil || !bytes.Equal(got, big)):
				t.Errorf("read after seeking to the end and back: %d of %d bytes, %v", len(got), size, err)
			case !tc.ok && !errors.Is(err, layout.ErrDigestMismatch):
				t.Errorf("read after seeking to the end and back: %v, want ErrDigestMismatch", err)
			}

			rs, _, err = b.OpenBlob(d)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			http.ServeContent(rec, httptest.NewRequest(http.MethodGet, "/blob", nil), "", time.Time{}, rs)
			rs.Close()
			// A client sees a response cut short (its Content-Length unmet) instead of bad bytes.
			sent := rec.Body.Len()
			if tc.ok && (sent != len(big) || !bytes.Equal(rec.Body.Bytes(), big)) || !tc.ok && sent >= len(big) {
				t.Errorf("http.ServeContent sent %d of %d bytes (all, and right: %v)", sent, len(big), tc.ok)
			}
		})
	}
}
