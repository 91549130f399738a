package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout/registry"
)

// TestServeLogsDamage: a bundle damaged in the frame that holds a blob's tar header is served;
// each request for that blob is answered 500, and bale serve's log gets one line per request
// naming the bundle file, the blob's member and its digest.
func TestServeLogsDamage(t *testing.T) {
	f := getFixture(t)
	bundle := filepath.Join(t.TempDir(), "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+f.registry)
	c, err := archive.ReadCatalog(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var d digest.Digest // the biggest layer, and a repository that holds it
	var repo string
	for _, name := range c.RepoNames() {
		for _, l := range c.RepoLayers(name) {
			if c.Carried(l) && (d == "" || c.Blobs[l].Size > c.Blobs[d].Size) {
				d, repo = l, name
			}
		}
	}
	member, err := registry.PathFor(registry.BlobData{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	damageHeaderFrame(t, bundle, member)

	srv, logged := startServeLogged(t, "http", "serve", "--addr", "127.0.0.1:0", bundle)
	url := "http://" + srv.Addr + "/v2/" + repo + "/blobs/" + d.String()
	for _, rng := range []string{"", "bytes=0-99"} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("GET %s (Range %q): %s, want 500", url, rng, resp.Status)
		}
	}
	// Each failure is logged before its response is written; the lines reach this process
	// through a pipe.
	var lines []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines = logged(); len(lines) >= 2 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // a third line, if any, shows
	if lines = logged(); len(lines) != 2 {
		t.Fatalf("the log has %d lines after two failed requests, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		for _, want := range []string{bundle, member, d.String(), "500"} {
			if !strings.Contains(l, want) {
				t.Errorf("log line %q does not name %s", l, want)
			}
		}
	}
}

// damageHeaderFrame flips a byte in the middle of the zstd frame of bundle (found through its
// seek table, read here by the format's spec) that holds the tar header of member.
func damageHeaderFrame(t *testing.T, bundle, member string) {
	t.Helper()
	damageMemberFrame(t, bundle, member, func(dataOff, _ int64) int64 { return dataOff - 512 }) // the last block of its header
}

// damageMemberFrame flips a byte in the middle of the zstd frame of bundle that holds the
// offset of the decompressed tar stream that at returns, given where member's data starts
// and its size.
func damageMemberFrame(t *testing.T, bundle, member string, at func(dataOff, size int64) int64) {
	t.Helper()
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	// Where the member's data starts in the decompressed tar stream.
	zr, err := zstd.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	cr := &countReader{r: zr}
	tr := tar.NewReader(cr)
	var off int64 = -1
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no member %s in %s: %v", member, bundle, err)
		}
		if h.Name == member {
			off = at(cr.n, h.Size)
			break
		}
	}
	// The seek table: footer (frames uint32, descriptor byte, magic), entries (comp, raw uint32).
	foot := raw[len(raw)-9:]
	if binary.LittleEndian.Uint32(foot[5:]) != 0x8F92EAB1 {
		t.Fatal("no seek table")
	}
	n := int(binary.LittleEndian.Uint32(foot))
	entries := raw[len(raw)-9-8*n : len(raw)-9]
	var compOff, rawOff int64
	for i := range n {
		comp, size := int64(binary.LittleEndian.Uint32(entries[8*i:])), int64(binary.LittleEndian.Uint32(entries[8*i+4:]))
		if off >= rawOff && off < rawOff+size {
			raw[compOff+comp/2] ^= 0xff
			if err := os.WriteFile(bundle, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		compOff, rawOff = compOff+comp, rawOff+size
	}
	t.Fatalf("no frame holds offset %d", off)
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}
