package archive_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bale-project/bale/archive"
)

// frameTable parses the seek table at the end of a bundle bale wrote: the compressed and
// decompressed size of every frame.
func frameTable(t testing.TB, b []byte) (comp, raw []uint32) {
	t.Helper()
	n := len(b)
	size := seekTableSize(t, b)
	tab := b[n-size:]
	if binary.LittleEndian.Uint32(tab) != 0x184D2A5E || int(binary.LittleEndian.Uint32(tab[4:])) != size-8 {
		t.Fatalf("seek table frame header % x", tab[:8])
	}
	frames := int(binary.LittleEndian.Uint32(b[n-9:]))
	for i := range frames {
		e := tab[8+8*i:]
		comp = append(comp, binary.LittleEndian.Uint32(e))
		raw = append(raw, binary.LittleEndian.Uint32(e[4:]))
	}
	return comp, raw
}

// withTable returns b with its seek table entries replaced by comp and raw.
func withTable(t testing.TB, b []byte, comp, raw []uint32) []byte {
	t.Helper()
	out := bytes.Clone(b)
	tab := out[len(b)-seekTableSize(t, b):]
	for i := range comp {
		binary.LittleEndian.PutUint32(tab[8+8*i:], comp[i])
		binary.LittleEndian.PutUint32(tab[12+8*i:], raw[i])
	}
	return out
}

// TestFrames: a bundle is independent frames, each at most archive.FrameSize decompressed,
// listed by a seek table that covers every byte before it; the blob phase starts a frame, and
// every frame decodes alone. Decoding them one by one gives the stream's bytes.
func TestFrames(t *testing.T) {
	fx := bigFixture(t, 3*archive.FrameSize+12345)
	b := fx.bundle(t)
	comp, raw := frameTable(t, b)
	if len(comp) < 5 {
		t.Fatalf("%d frames for a bundle with a %d-byte blob", len(comp), 3*archive.FrameSize)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	whole, err := dec.DecodeAll(b, nil)
	if err != nil {
		t.Fatalf("decoding the bundle as one stream: %v", err)
	}
	var off int
	var joined []byte
	for i := range comp {
		if raw[i] > archive.FrameSize {
			t.Errorf("frame %d holds %d bytes, more than %d", i, raw[i], archive.FrameSize)
		}
		frame := b[off : off+int(comp[i])]
		got, err := dec.DecodeAll(frame, nil)
		if err != nil {
			t.Fatalf("frame %d alone: %v", i, err)
		}
		if len(got) != int(raw[i]) {
			t.Fatalf("frame %d decodes to %d bytes, the table says %d", i, len(got), raw[i])
		}
		joined = append(joined, got...)
		off += int(comp[i])
	}
	if off != len(b)-seekTableSize(t, b) {
		t.Errorf("frames end at %d, the seek table starts at %d", off, len(b)-seekTableSize(t, b))
	}
	if !bytes.Equal(joined, whole) {
		t.Error("the frames decoded one by one differ from the stream")
	}
	// The catalog member is alone in the first frame (header, content, padding).
	if raw[0]%512 != 0 || !bytes.HasPrefix(whole[257:], []byte("ustar")) {
		t.Errorf("first frame of %d bytes does not end at a member boundary", raw[0])
	}
	if bytes.HasPrefix(joined[raw[0]:], make([]byte, 512)) || !bytes.Equal(whole[raw[0]+257:raw[0]+262], []byte("ustar")) {
		t.Error("the second frame does not start with a tar header")
	}
}

// TestFramesStockZstd: the zstd command decodes a bundle (frames and the skippable seek table)
// to the same tar stream.
func TestFramesStockZstd(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not installed")
	}
	fx := bigFixture(t, archive.FrameSize+1)
	b := fx.bundle(t)
	p := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zstd", "-dc", p).Output()
	if err != nil {
		t.Fatalf("zstd -dc: %v", err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	want, err := dec.DecodeAll(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("zstd -dc gives %d bytes, the Go decoder %d", len(out), len(want))
	}
}

// TestSeekTableLies: the parallel reader trusts the seek table for nothing but where frames
// are. A table whose boundaries or sizes are wrong makes the unpack fail (on the file path) or
// is ignored; an unreadable table falls back to streaming, which succeeds.
func TestSeekTableLies(t *testing.T) {
	fx := bigFixture(t, 2*archive.FrameSize)
	b := fx.bundle(t)
	comp, raw := frameTable(t, b)
	mid := len(comp) / 2
	edit := func(f func(comp, raw []uint32)) []byte {
		c, r := append([]uint32{}, comp...), append([]uint32{}, raw...)
		f(c, r)
		return withTable(t, b, c, r)
	}
	refused := map[string][]byte{
		"boundary moved": edit(func(c, r []uint32) { c[mid]--; c[mid+1]++ }),
		"raw size short": edit(func(c, r []uint32) { r[mid]-- }),
		"raw size long":  edit(func(c, r []uint32) { r[mid]++ }),
		"sizes swapped":  edit(func(c, r []uint32) { r[0], r[1] = r[1], r[0] }),
	}
	for name, bad := range refused {
		t.Run(name, func(t *testing.T) {
			_, dst := newTarget(t)
			_, panicked, err := safeUnpackFile(t, bad, dst)
			if panicked != "" {
				t.Fatalf("panicked: %s", panicked)
			}
			if err == nil {
				t.Fatal("UnpackFiles succeeded with a lying seek table")
			}
			t.Logf("UnpackFiles: %v", err)
			checkTagsComplete(t, dst.Root())
			checkNoTemp(t, dst.Root())
		})
	}
	n := len(b)
	ignored := map[string][]byte{
		"footer magic":                 func() []byte { x := bytes.Clone(b); x[n-1] ^= 0xff; return x }(),
		"frame count huge":             func() []byte { x := bytes.Clone(b); binary.LittleEndian.PutUint32(x[n-9:], 1<<31); return x }(),
		"frame count zero":             func() []byte { x := bytes.Clone(b); binary.LittleEndian.PutUint32(x[n-9:], 0); return x }(),
		"checksum flag":                func() []byte { x := bytes.Clone(b); x[n-5] = 0x80; return x }(),
		"frames do not cover the file": edit(func(c, r []uint32) { c[0]++ }),
		"two frames as one":            edit(func(c, r []uint32) { c[0] += c[1]; r[0] += r[1]; c[1], r[1] = 0, 0 }),
	}
	for name, odd := range ignored {
		t.Run(name, func(t *testing.T) {
			_, dst := newTarget(t)
			res, panicked, err := safeUnpackFile(t, odd, dst)
			if panicked != "" {
				t.Fatalf("panicked: %s", panicked)
			}
			if err != nil {
				t.Fatalf("UnpackFiles: %v (the content is intact: stream it)", err)
			}
			if res.BlobsWritten != len(fx.blobs) {
				t.Errorf("wrote %d blobs, want %d", res.BlobsWritten, len(fx.blobs))
			}
			checkTagsComplete(t, dst.Root())
		})
	}
}

// TestSingleFrameBundle: a bundle as bale 0.1 wrote it (the same tar stream in one zstd frame,
// no seek table) still unpacks from a file, by streaming.
func TestSingleFrameBundle(t *testing.T) {
	fx := bigFixture(t, archive.FrameSize+1)
	old := zstdBytes(t, unzstd(t, fx.bundle(t)))
	if bytes.HasSuffix(old, []byte{0xB1, 0xEA, 0x92, 0x8F}) {
		t.Fatal("the re-compressed bundle still ends with a seek table")
	}
	_, dst := newTarget(t)
	res, panicked, err := safeUnpackFile(t, old, dst)
	if panicked != "" || err != nil {
		t.Fatalf("UnpackFiles of a single-frame bundle: %v %s", err, panicked)
	}
	if res.BlobsWritten != len(fx.blobs) {
		t.Errorf("wrote %d blobs, want %d", res.BlobsWritten, len(fx.blobs))
	}
	checkTagsComplete(t, dst.Root())
}
