package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout/registry"
)

// TestCopyVerify: one byte flipped in a layer of registry storage (its size kept). copy
// without --verify hard-links it and says that it did not hash the blobs; copy --verify
// exits 4 naming the blob and the image that needs it and writes nothing (no tag, not the
// blob), also into a target the first copy already put the damaged blob in; copy --verify of
// the storage unharmed hashes every manifest, config and layer of the corpus once.
func TestCopyVerify(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if out, err := exec.Command("cp", "-a", f.registry, src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	var name string
	var layer digest.Digest
	all := map[digest.Digest]bool{}
	for _, img := range f.corpus.Images {
		ds, err := f.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append(append(ds, img.Digest), img.Children...) {
			all[d] = true
		}
		if !img.IsIndex() && name == "" {
			name, layer = img.Name(), ds[len(ds)-1]
		}
	}
	data := blobData(src, layer)
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(b) != layer {
		t.Fatalf("%s is not the last blob of %s (the layer to damage)", layer, name)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// Without --verify: hard-linked unread, and it says so.
	plain := filepath.Join(dir, "plain")
	res := mustBale(t, "copy", "registry:"+src, "registry:"+plain)
	if !strings.Contains(res.stderr, "hard-linked, not re-hashed: use --verify") {
		t.Fatalf("copy without --verify does not say that it did not hash the blobs:\n%s", res.stderr)
	}
	t.Log(strings.TrimSpace(res.stderr))

	// --verify: exit 4, the blob and its image named, nothing written.
	for _, dst := range []string{filepath.Join(dir, "checked"), plain} {
		before := refsOf(t, dst)
		res = bale(t, "copy", "--verify", "registry:"+src, "registry:"+dst)
		if res.code != 4 || !strings.Contains(res.stderr, layer.String()) || !strings.Contains(res.stderr, name) {
			t.Fatalf("copy --verify of a damaged layer into %s: exit %d, want 4 naming %s and %s:\n%s", dst, res.code, layer, name, res.stderr)
		}
		if after := refsOf(t, dst); after != before {
			t.Fatalf("copy --verify refused but changed the tags of %s: %q, was %q", dst, after, before)
		}
		t.Log(firstLine(res.stderr))
	}
	if _, err := os.Stat(blobData(filepath.Join(dir, "checked"), layer)); !os.IsNotExist(err) {
		t.Fatalf("the refused copy stored the damaged blob: %v", err)
	}

	// --verify of the storage unharmed: every blob of the corpus hashed once.
	res = mustBale(t, "copy", "--verify", "registry:"+f.registry, "registry:"+filepath.Join(dir, "good"))
	m := regexp.MustCompile(`\((\d+) blobs verified\)`).FindStringSubmatch(res.stderr)
	if m == nil || strings.Contains(res.stderr, "not re-hashed") {
		t.Fatalf("copy --verify does not say it verified every blob:\n%s", res.stderr)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(all) {
		t.Fatalf("copy --verify hashed %d blobs, the corpus has %d", n, len(all))
	}
	t.Log(strings.TrimSpace(res.stderr))
}

// refsOf lists the tags of registry storage at root, "" when there is none.
func refsOf(t *testing.T, root string) string {
	t.Helper()
	if !registry.Is(root) {
		return ""
	}
	st, err := registry.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := st.Refs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.String())
	}
	return strings.Join(names, " ")
}
