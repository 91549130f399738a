package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// checkListHead checks that bale list of the unsigned format-5 bundle at path, from its list
// member, prints what the catalog path prints of the same bundle (--from-catalog, and the
// bundle recompressed by zstd, which has no seek table): the text off a terminal, the text on
// a 120-column terminal (short digests, fitted columns), and --json (the location aside);
// and that it is listed early (checkQuickList).
func checkListHead(t *testing.T, path string) {
	t.Helper()
	testenv.Need(t, "zstd")
	flat := filepath.Join(t.TempDir(), "flat.tar.zst")
	cmd := exec.Command("sh", "-c", `zstd -qdc "$1" | zstd -q -o "$2"`, "sh", path, flat)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("recompressing %s: %v\n%s", path, err, out)
	}
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"list", "--wide"}} {
		head := mustBale(t, append(args, path)...).stdout
		whole := mustBale(t, append(args, "--from-catalog", path)...).stdout
		if head != whole {
			t.Errorf("bale %s from the list member:\n%s\nfrom the catalog:\n%s", strings.Join(args, " "), head, whole)
		}
		if recompressed := mustBale(t, append(args, flat)...).stdout; strings.ReplaceAll(recompressed, flat, path) != whole {
			t.Errorf("bale %s of the bundle without a seek table:\n%s\nwant:\n%s", strings.Join(args, " "), recompressed, whole)
		}
		// Listed before the rest of bale initialises (package quicklist), byte for byte as the
		// full command lists it; the bundle without a seek table only by the full command.
		checkQuickList(t, true, append(args, path)...)
		checkQuickList(t, false, append(args, flat)...)
	}
	if head, whole := runOnTerminal(t, "list", path), runOnTerminal(t, "list", "--from-catalog", path); head != whole {
		t.Errorf("bale list on a terminal, from the list member:\n%s\nfrom the catalog:\n%s", head, whole)
	}
}

// TestListHeadShapes: the list member of the real-world shapes (BuildKit attestation indexes,
// an inner index also tagged, one manifest in two repositories, cosign's legacy tags) lists
// as the catalog does, and so do a flipped byte and a forged member fail: verify and unpack
// exit 4 with nothing written.
func TestListHeadShapes(t *testing.T) {
	s := getShapes(t)
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	checkListHead(t, bundle)

	for name, edit := range map[string]func(body []byte) []byte{
		"flipped": func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b },
		"forged":  func(b []byte) []byte { return []byte(strings.Replace(string(b), `"tag":"`, `"tag":"x`, 1)) },
	} {
		bad := filepath.Join(dir, name+".tar.zst")
		rewriteBundle(t, "zstd", bundle, bad, func(h *tar.Header, b []byte) []byte {
			if h.Name == archive.ListName {
				return edit(b)
			}
			return b
		})
		for _, args := range [][]string{{"verify", bad}, {"unpack", "--to", "registry:" + filepath.Join(dir, name+"-out"), bad}} {
			if r := bale(t, args...); r.code != 4 {
				t.Errorf("bale %v with a %s list member: exit %d, want 4\n%s", args, name, r.code, r.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, name+"-out", "docker")); err == nil {
			t.Errorf("unpack of the %s list member wrote into its target", name)
		}
	}
}

// forgeListFrame writes to out the bundle at in with one byte of a tag in its list member
// changed, keeping bale's frames and seek table (the frame of the list member compressed
// again), so that bale list reads the forged member from its frame.
func forgeListFrame(t *testing.T, in, out string) {
	t.Helper()
	enc, _ := zstd.NewWriter(nil)
	editListFrame(t, in, out, func(_, plain []byte) []byte {
		j := bytes.Index(plain, []byte(`"tag":"`)) + len(`"tag":"`)
		if plain[j] == 'x' {
			plain[j] = 'y'
		} else {
			plain[j] = 'x'
		}
		return enc.EncodeAll(plain, nil)
	})
}

// editListFrame writes to out the bundle at in with the frame that starts its list member
// replaced by edit(frame, plain): the frame as it is compressed and decoded. The seek table
// is rewritten for the new frame.
func editListFrame(t *testing.T, in, out string, edit func(frame, plain []byte) []byte) {
	t.Helper()
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(raw[len(raw)-9:]))
	tableStart := len(raw) - (8 + 8*n + 9)
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	var body []byte
	var entries []byte
	off, found := 0, false
	for i := range n {
		e := raw[tableStart+8+8*i:]
		comp := int(binary.LittleEndian.Uint32(e))
		frame := raw[off : off+comp]
		off += comp
		plain, err := dec.DecodeAll(frame, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hdr, err := tar.NewReader(bytes.NewReader(plain)).Next(); err == nil && hdr.Name == archive.ListName {
			frame, found = edit(bytes.Clone(frame), plain), true
		}
		body = append(body, frame...)
		entries = binary.LittleEndian.AppendUint32(entries, uint32(len(frame)))
		entries = binary.LittleEndian.AppendUint32(entries, uint32(len(plain)))
	}
	if !found || off != tableStart {
		t.Fatalf("no list member frame in %s (frames end at %d, the table at %d)", in, off, tableStart)
	}
	body = append(body, raw[tableStart:tableStart+8]...)
	body = append(append(body, entries...), raw[len(raw)-9:]...)
	if err := os.WriteFile(out, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestListHeadSigned: bale list of a signed format-5 bundle checks its signatures against
// the statement made of its list member's header and digest, before anything is printed:
// with the signer's key it lists what the catalog lists; a list member forged in its frame
// (a tag changed, the frames and seek table as bale writes them) is exit 6 with --key and
// nothing printed, and the catalog path (unpack) refuses it too (exit 4 without signers).
func TestListHeadSigned(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	priv, pub := cosignKey(t)
	c := imagetest.Standard()
	dir := t.TempDir()
	for _, img := range c.Images[:3] {
		if _, err := c.WriteDir(filepath.Join(dir, "src"), img); err != nil {
			t.Fatal(err)
		}
	}
	inside, beside := filepath.Join(dir, "inside.tar.zst"), filepath.Join(dir, "beside.tar.zst")
	mustBale(t, "pack", "--sign-key", priv, "-o", inside, "dir:"+filepath.Join(dir, "src"))
	mustBale(t, "pack", "-o", beside, "dir:"+filepath.Join(dir, "src"))
	mustBale(t, "sign", "--key", priv, beside)
	for _, b := range []string{inside, beside} {
		// Without --key the full command still lists it (its signatures need sigstore-go),
		// not package quicklist, and names the signer.
		checkQuickList(t, false, "list", b)
		if out := mustBale(t, "list", b).stdout; !strings.Contains(out, "signed by") {
			t.Errorf("bale list of the signed %s names no signer:\n%s", b, out)
		}
		head := mustBale(t, "list", "--key", pub, b).stdout
		if whole := mustBale(t, "list", "--key", pub, "--from-catalog", b).stdout; head != whole || !strings.Contains(head, "signature") {
			t.Errorf("bale list --key of %s from the list member:\n%s\nfrom the catalog:\n%s", b, head, whole)
		}
		forged := strings.TrimSuffix(b, ".tar.zst") + "-forged.tar.zst"
		forgeListFrame(t, b, forged)
		if sig, err := os.ReadFile(b + ".sigstore.json"); err == nil {
			os.WriteFile(forged+".sigstore.json", sig, 0o644)
		}
		for _, args := range [][]string{{"list", "--key", pub, forged}, {"list", "--json", "--key", pub, forged}} {
			r := bale(t, args...)
			if r.code != exitUnsigned || r.stdout != "" {
				t.Errorf("bale %v of a forged list member: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
		}
		if r := bale(t, "unpack", "--to", "registry:"+filepath.Join(dir, "out"), forged); r.code != 4 {
			t.Errorf("unpack of a forged list member: exit %d\n%s", r.code, r.stderr)
		}
	}
}

// TestListJSONGrouped: bale list --json lists the rows grouped by kind, images then charts
// then files, as the text tables and the list member do, on every path: here the image
// tools/raw-layer sorts after the file artifact's repository files/tools/kubeadm, and comes
// before it.
func TestListJSONGrouped(t *testing.T) {
	work := t.TempDir()
	d := releaseDir(work)
	d.write(t, "images.txt", []byte("busybox:latest\ntools/raw-layer:1.0\n"), 0o644)
	d.write(t, "bin/kubeadm", randomBytes(t, 1<<10), 0o755)
	rel := d.write(t, "r.yaml", []byte("images: [images.txt]\nfiles:\n  - path: bin/kubeadm\n    name: tools/kubeadm\n    tag: \"v1\"\n"), 0o644)
	bundle := filepath.Join(work, "r.tar.zst")
	mustBale(t, "pack", "-f", rel, "-o", bundle, "registry:../../testdata/sample-registry")
	for _, args := range [][]string{{"list", "--json", bundle}, {"list", "--json", "--from-catalog", bundle}} {
		var doc struct{ Images []listedKind }
		if err := json.Unmarshal([]byte(mustBale(t, args...).stdout), &doc); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range doc.Images {
			got = append(got, string(l.Kind)+" "+l.Repo)
		}
		if want := "image busybox,image tools/raw-layer,file files/tools/kubeadm"; strings.Join(got, ",") != want {
			t.Errorf("bale %v: %s, want %s", args, strings.Join(got, ","), want)
		}
	}
	checkListHead(t, bundle)
}
