package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

const sigMember = "bale/signatures/1.sigstore.json"

// TestSignMember: pack --sign-key writes its signature into the bundle, as the member
// bale/signatures/1.sigstore.json right after bale/catalog.db, and nothing beside it. Stock
// cosign verify-blob accepts that member (extracted with tar) over bale sign --statement;
// verify and list show it; unpack, serve and push take the bundle and a patch signed the
// same way with --key; plain tar --zstd -xf of both still gives storage docker-registry
// serves. Tampered: a flipped byte in the member, a member swapped from another bundle (the
// catalog's size record fixed up, as a forger would: it is outside the id) and another
// signer's key exit 6 with nothing unpacked; a member whose size differs from the record, or
// one the catalog does not record, is a malformed bundle (exit 4).
func TestSignMember(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	zstd := testenv.Need(t, "zstd")
	priv, pub := cosignKey(t)
	_, otherPub := cosignKey(t)
	c := imagetest.Standard()
	dir := t.TempDir()
	one, both, third := filepath.Join(dir, "one"), filepath.Join(dir, "both"), filepath.Join(dir, "third")
	for i, img := range c.Images[:3] {
		roots := []string{one, both}[min(i, 1):]
		if i == 2 {
			roots = []string{third}
		}
		for _, root := range roots {
			if _, err := c.WriteDir(root, img); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, patch, b := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "patch.tar.zst"), filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "--sign-key", priv, "-o", a, "dir:"+one)
	mustBale(t, "pack", "--sign-key", priv, "--base", a, "-o", patch, "dir:"+both)
	mustBale(t, "pack", "--sign-key", priv, "-o", b, "dir:"+third)
	for _, p := range []string{a, patch} {
		if m, _ := filepath.Glob(p + ".*sigstore.json"); len(m) != 0 {
			t.Errorf("pack --sign-key wrote %v beside the bundle", m)
		}
		names := tarNames(t, p)
		if len(names) < 3 || names[0] != "bale/catalog.db" || names[1] != "bale/list.jsonl" || names[2] != sigMember {
			t.Fatalf("members of %s: %v, want bale/catalog.db, bale/list.jsonl, then %s", p, names[:min(len(names), 3)], sigMember)
		}
	}

	// Stock cosign checks the member, as extracted by tar, over bale's statement.
	x := filepath.Join(dir, "x")
	os.MkdirAll(x, 0o755)
	if out, err := exec.Command("tar", "--zstd", "-xf", a, "-C", x, sigMember).CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd -xf %s %s: %v\n%s", a, sigMember, err, out)
	}
	stmt, empty := filepath.Join(dir, "statement.json"), filepath.Join(dir, "empty-root.json")
	os.WriteFile(stmt, []byte(mustBale(t, "sign", "--statement", a).stdout), 0o644)
	os.WriteFile(empty, []byte(testenv.EmptyTrustedRoot), 0o644)
	runCosign(t, dir, "verify-blob", "--bundle", filepath.Join(x, sigMember), "--key", pub, "--new-bundle-format",
		"--trusted-root", empty, "--insecure-ignore-tlog", stmt)

	fp, source := keyFingerprint(t, pub), sigMember+" in "+a
	if out := mustBale(t, "verify", "--key", pub, a).stdout; !strings.Contains(out, "signature "+source+": signed by key "+fp) ||
		!strings.Contains(out, "covers bundle "+bundleID(t, a)) {
		t.Errorf("verify --key does not show the member's signer and what it covers:\n%s", out)
	}
	var l struct {
		Signatures []struct{ Source, Key string }
	}
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", "--key", pub, patch).stdout), &l); err != nil ||
		len(l.Signatures) != 1 || l.Signatures[0].Key != fp || l.Signatures[0].Source != sigMember+" in "+patch {
		t.Errorf("list --json --key of the patch: %+v %v", l, err)
	}
	// Signed later too: both signatures count.
	mustBale(t, "sign", "--key", priv, b)
	if out := mustBale(t, "verify", "--key", pub, b).stdout; strings.Count(out, "signed by key "+fp) != 2 {
		t.Errorf("verify of a bundle signed in it and beside it does not show both:\n%s", out)
	}
	os.Remove(b + ".sigstore.json")

	// Tampering.
	site := filepath.Join(t.TempDir(), "site")
	untouched := func(what string) {
		t.Helper()
		if _, err := os.Stat(site); !os.IsNotExist(err) {
			t.Fatalf("%s: %s exists after a refused unpack (%v)", what, site, err)
		}
	}
	good := memberOf(t, a, sigMember)
	flipped := bytes.Clone(good)
	i := bytes.Index(flipped, []byte(`"signature":"`)) + len(`"signature":"`) + 7
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	tampered := filepath.Join(dir, "tampered.tar.zst")
	rewriteSignature(t, zstd, a, tampered, flipped, true)
	wantExit6(t, "flipped byte in the member", "verify", "--key", pub, tampered)
	wantExit6(t, "flipped byte in the member, unpack", "unpack", "--key", pub, "--to", "registry:"+site, tampered)
	untouched("flipped byte")
	rewriteSignature(t, zstd, a, tampered, memberOf(t, b, sigMember), true)
	wantExit6(t, "member swapped from another bundle", "verify", "--key", pub, tampered)
	wantExit6(t, "member swapped from another bundle, unpack, no key", "unpack", "--to", "registry:"+site, tampered)
	untouched("swapped member")
	wantExit6(t, "another signer", "verify", "--key", otherPub, a)
	wantExit6(t, "another signer, unpack", "unpack", "--key", otherPub, "--to", "registry:"+site, a, patch)
	untouched("another signer")
	// The member's size is the catalog's record: a member of another size, or one the catalog
	// does not record, makes the bundle malformed (§8), whatever its signature: exit 4, and
	// exit 6 when signers are required (a damaged bundle is untrusted).
	rewriteSignature(t, zstd, a, tampered, append(bytes.Clone(good), ' '), false)
	if res := bale(t, "verify", tampered); res.code != exitInvalid || !strings.Contains(res.stderr, "the catalog records") {
		t.Errorf("member longer than recorded: exit %d, want %d\n%s", res.code, exitInvalid, res.stderr)
	}
	if res := bale(t, "verify", "--key", pub, tampered); res.code != exitUnsigned || !strings.Contains(res.stderr, "the catalog records") {
		t.Errorf("member longer than recorded, --key: exit %d, want %d\n%s", res.code, exitUnsigned, res.stderr)
	}
	stripSignatureRecord(t, zstd, a, tampered)
	if res := bale(t, "verify", tampered); res.code != exitInvalid {
		t.Errorf("a signature member the catalog does not record: exit %d, want %d\n%s", res.code, exitInvalid, res.stderr)
	}

	// Signed in the file, the chain is taken by unpack, serve and push with --key.
	res := mustBale(t, "unpack", "--key", pub, "--to", "registry:"+site, a, patch)
	if !strings.Contains(res.stderr, patch+": signed by key "+fp) {
		t.Errorf("unpack does not say who signed the patch:\n%s", res.stderr)
	}
	checkList(t, "registry:"+site, c.Images[:2])
	srv := startServeArgs(t, "http", "serve", "--addr", "127.0.0.1:0", "--key", pub, a, patch)
	for _, img := range c.Images[:2] {
		srv.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
	dst := testenv.StartRegistry(t, t.TempDir())
	mustBale(t, "push", "--key", pub, "--dest-tls-verify=false", a, patch, "docker://"+dst.Addr)
	for _, img := range c.Images[:2] {
		dst.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
	// The member lives under bale/, beside the catalog: plain tar gives registry storage.
	z := filepath.Join(t.TempDir(), "z")
	os.MkdirAll(z, 0o755)
	for _, p := range []string{a, patch} {
		if out, err := exec.Command("tar", "--zstd", "-xf", p, "-C", z).CombinedOutput(); err != nil {
			t.Fatalf("tar --zstd -xf %s: %v\n%s", p, err, out)
		}
	}
	checkServed(t, z, "", c.Images[:2])
}

// tarNames lists the member names of the bundle at path with tar.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("tar", "--zstd", "-tf", path).Output()
	if err != nil {
		t.Fatalf("tar --zstd -tf %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

// memberOf is the content of member name of the bundle at path, extracted by tar.
func memberOf(t *testing.T, path, name string) []byte {
	t.Helper()
	out, err := exec.Command("tar", "--zstd", "-xOf", path, name).Output()
	if err != nil {
		t.Fatalf("tar --zstd -xOf %s %s: %v", path, name, err)
	}
	return out
}

// rewriteSignature writes to out the bundle at in with its signature member's content
// replaced by sig; record sets the catalog's record of the member's size to len(sig), as a
// forger would (it is outside the id).
func rewriteSignature(t *testing.T, zstd, in, out string, sig []byte, record bool) {
	t.Helper()
	rewriteBundle(t, zstd, in, out, func(h *tar.Header, data []byte) []byte {
		switch {
		case h.Name == sigMember:
			return sig
		case h.Name == "bale/catalog.db" && record:
			return editCatalog(t, data, func(c *catalog.Catalog) { c.Meta.Signatures = []int64{int64(len(sig))} })
		}
		return data
	})
}

// stripSignatureRecord writes to out the bundle at in with the catalog's record of its
// signature members removed (the member stays).
func stripSignatureRecord(t *testing.T, zstd, in, out string) {
	t.Helper()
	rewriteBundle(t, zstd, in, out, func(h *tar.Header, data []byte) []byte {
		if h.Name == "bale/catalog.db" {
			return editCatalog(t, data, func(c *catalog.Catalog) { c.Meta.Signatures = nil })
		}
		return data
	})
}

// rewriteBundle writes to out the bundle at in (decompressed and compressed again with the
// zstd tool: one stream, no seek table) with each member's content passed through edit.
func rewriteBundle(t *testing.T, zstd, in, out string, edit func(*tar.Header, []byte) []byte) {
	t.Helper()
	raw, err := exec.Command(zstd, "-dc", in).Output()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(h, data)
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	os.Remove(out)
	cmd := exec.Command(zstd, "-q", "-o", out)
	cmd.Stdin = &buf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v\n%s", err, b)
	}
}

// editCatalog is the catalog db with edit applied to it, written again (its id unchanged).
func editCatalog(t *testing.T, db []byte, edit func(*catalog.Catalog)) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "in.db")
	os.WriteFile(p, db, 0o644)
	c, err := catalog.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	q := filepath.Join(dir, "out.db")
	if err := catalog.Write(q, c); err != nil {
		t.Fatal(err)
	}
	return mustRead(t, q)
}
