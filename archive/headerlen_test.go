package archive

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestHeaderLengths: the header length remembered for a shape of name is the one archive/tar
// writes for every name of that shape: registry paths of every kind, names past USTAR's 100
// and 255 bytes (split, PAX), non-ASCII and NUL bytes, sizes past USTAR's 8 GiB.
func TestHeaderLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	mtime := time.Date(2024, 3, 4, 10, 11, 12, 0, time.UTC)
	alphabet := []string{"a", "b", "z", "0", "9", "-", "_", ".", "/", "é", "\x00", "A"}
	hexDigest := func() string {
		const hx = "0123456789abcdef"
		var b strings.Builder
		for range 64 {
			b.WriteByte(hx[r.IntN(16)])
		}
		return b.String()
	}
	var names []string
	for range 400 {
		// Few lengths, so that names of one length with slashes in other places (split
		// by USTAR or not) meet.
		repo := ""
		for range []int{1, 40, 60, 100, 101, 140, 156, 200}[r.IntN(8)] {
			if r.IntN(4) == 0 {
				repo += alphabet[r.IntN(len(alphabet))]
			} else {
				repo += "a"
			}
		}
		h := hexDigest()
		names = append(names,
			"docker/registry/v2/blobs/sha256/"+h[:2]+"/"+h+"/data",
			"docker/registry/v2/repositories/"+repo+"/_layers/sha256/"+h+"/link",
			"docker/registry/v2/repositories/"+repo+"/_manifests/tags/"+repo[:min(len(repo), 128)]+"/current/link",
			repo)
	}
	sizes := []int64{0, 71, 1<<33 - 1, 1 << 33, 99999999999, 100000000000}
	hl := headerLengths{mtime: mtime}
	for _, name := range names {
		for _, mode := range []int64{0o444, 0o644} {
			size := sizes[r.IntN(len(sizes))]
			var buf bytes.Buffer
			werr := tar.NewWriter(&buf).WriteHeader(memberHeader(name, mode, size, mtime))
			got, err := hl.of(name, mode, size)
			if (err != nil) != (werr != nil) {
				t.Fatalf("%q: of says %v, archive/tar %v", name, err, werr)
			}
			if err == nil && got != int64(buf.Len()) {
				t.Fatalf("%q (mode %o, %d bytes): of says %d, archive/tar writes %d", name, mode, size, got, buf.Len())
			}
		}
	}
	t.Logf("%d shapes for %d names", len(hl.known), 2*len(names))
}
