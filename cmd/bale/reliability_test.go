package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/fsutil"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// bigStore writes registry storage of n images, each a shared 4 MiB base and its own layer of
// size bytes of random data (uncompressed OCI tar layers), and returns its root.
func bigStore(t *testing.T, n, size int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "big")
	st, err := registry.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	put := func(b []byte, mt string) layout.Descriptor {
		d := layout.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := st.WriteBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := func(name string, n int) layout.Descriptor {
		data := make([]byte, n)
		for i := 0; i+8 <= len(data); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0)})
		tw.Write(data)
		tw.Close()
		return put(buf.Bytes(), "application/vnd.oci.image.layer.v1.tar")
	}
	base := layer("base.bin", 4<<20)
	for i := range n {
		top := layer(fmt.Sprintf("app%d.bin", i), size)
		cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
			"rootfs": map[string]any{"type": "layers"}, "config": map[string]any{"Labels": map[string]string{"n": fmt.Sprint(i)}}})
		c := put(cfg, layout.MediaTypeOCIConfig)
		raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": layout.MediaTypeOCIManifest, "config": c, "layers": []layout.Descriptor{base, top}})
		put(raw, layout.MediaTypeOCIManifest)
		m, err := layout.ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		repo := fmt.Sprintf("big/app-%d", i)
		if err := st.LinkImage(repo, &layout.Image{Manifest: m}); err != nil {
			t.Fatal(err)
		}
		if err := st.Tag(repo, "v1", m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// checkNoBrokenTag fails if any tag of the registry storage at root points at a manifest whose
// content (children, config, layers) is not all there with the right size.
func checkNoBrokenTag(t *testing.T, root string) {
	t.Helper()
	if !registry.Is(root) {
		return
	}
	st, err := registry.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := st.Refs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		d, err := st.Resolve(ref)
		if err != nil {
			t.Fatalf("tag %s: %v", ref, err)
		}
		img, err := layout.LoadImage(st, ref.Repo, d)
		if err != nil {
			t.Fatalf("tag %s points at content that is not all there: %v", ref, err)
		}
		for _, b := range img.Blobs() {
			if !st.StatBlob(b) {
				t.Fatalf("tag %s: blob %s missing or short", ref, b.Digest)
			}
		}
	}
}

// checkNoTemp fails if an interrupted or failed run left temporary files below root.
func checkNoTemp(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".bale-tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestUnpackKilled kills bale unpack with SIGKILL at 25 points spread over its run: after
// every kill no tag of the registry storage points at missing content, and a final re-run
// completes everything, verified, with no temporary file left.
func TestUnpackKilled(t *testing.T) {
	work := t.TempDir()
	bundle := filepath.Join(work, "big.tar.zst")
	mustBale(t, "pack", "-o", bundle, bigStore(t, 8, 12<<20))
	x, y := filepath.Join(work, "x"), filepath.Join(work, "y")
	args := []string{"unpack", "--to", "registry:" + x, "--to", "dir:" + y, bundle}

	// How long a whole run takes, into a scratch target.
	start := time.Now()
	mustBale(t, "unpack", "--to", "registry:"+filepath.Join(work, "scratch"), "--to", "dir:"+filepath.Join(work, "scratch-dir"), bundle)
	full := time.Since(start)
	os.RemoveAll(filepath.Join(work, "scratch"))
	os.RemoveAll(filepath.Join(work, "scratch-dir"))

	killed := killRuns(t, args, full, 25, func(i int) {
		checkNoBrokenTag(t, x)
		// Start the next run from scratch a third of the time, so early kill points recur;
		// the last run after a kill is never from scratch.
		if i%3 == 0 {
			os.RemoveAll(x)
			os.RemoveAll(y)
		}
	})
	t.Logf("a whole unpack takes %v; killed %d runs", full, killed)
	mustBale(t, args...)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "dir:"+y)
	checkNoTemp(t, x)
	checkNoTemp(t, y)
}

// killRuns runs bale with args points times, killing run i (SIGKILL) at i/(points+1) of full,
// the time a whole run takes, and calls after(i) once it has ended. It returns how many runs
// were still going when their kill came.
func killRuns(t *testing.T, args []string, full time.Duration, points int, after func(i int)) int {
	t.Helper()
	killed := 0
	for i := 1; i <= points; i++ {
		cmd := exec.Command(baleBin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(full * time.Duration(i) / time.Duration(points+1))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			killed++
		}
		cmd.Wait()
		after(i)
	}
	return killed
}

// TestUnpackLocked: while another bale holds the target, unpack fails at once and says why;
// two unpacks started together end with a consistent target.
func TestUnpackLocked(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, f.registry)
	x := filepath.Join(work, "x")
	if err := os.MkdirAll(x, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := fsutil.Lock(x)
	if err != nil {
		t.Fatal(err)
	}
	res := bale(t, "unpack", "--to", "registry:"+x, bundle)
	unlock()
	if res.code == 0 || !strings.Contains(res.stderr, "another bale is writing there") {
		t.Fatalf("unpack into a locked target: exit %d\n%s", res.code, res.stderr)
	}

	// Two at once: each succeeds or says the target is locked; the target ends complete.
	cmds := []*exec.Cmd{exec.Command(baleBin, "unpack", "--to", "registry:"+x, bundle), exec.Command(baleBin, "unpack", "--to", "registry:"+x, bundle)}
	outs := make([]bytes.Buffer, 2)
	for i, c := range cmds {
		c.Stderr = &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ok := 0
	for i, c := range cmds {
		err := c.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ee) && strings.Contains(outs[i].String(), "another bale is writing there"):
		default:
			t.Errorf("concurrent unpack %d: %v\n%s", i, err, outs[i].String())
		}
	}
	if ok == 0 {
		t.Errorf("neither concurrent unpack succeeded")
	}
	mustBale(t, "verify", "registry:"+x)
	checkList(t, "registry:"+x, f.corpus.Images)
}

// TestUnpackDiskFull unpacks into a small tmpfs that already holds images: the unpack fails
// with a clear message, leaves no temporary file, and what was there still verifies.
func TestUnpackDiskFull(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	mnt := filepath.Join(work, "small")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	small := filepath.Join(work, "small.tar.zst")
	mustBale(t, "pack", "-o", small, f.registry)
	x := filepath.Join(mnt, "x")
	mustBale(t, "unpack", "--to", "registry:"+x, small)

	big := filepath.Join(work, "big.tar.zst")
	mustBale(t, "pack", "-o", big, bigStore(t, 2, 2<<20))
	res := bale(t, "unpack", "--to", "registry:"+x, big)
	if res.code == 0 || !strings.Contains(res.stderr, "is full") {
		t.Fatalf("unpack into a full file system: exit %d\n%s", res.code, res.stderr)
	}
	checkNoTemp(t, x)
	mustBale(t, "verify", "registry:"+x)
	checkList(t, "registry:"+x, f.corpus.Images)
}

// TestEditThroughLinkIsFound: unpacked blobs are read-only, and if one is edited anyway
// through the hard-linked dir tree, bale verify of the registry storage names it.
func TestEditThroughLinkIsFound(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, f.registry)
	x, y := filepath.Join(work, "x"), filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, bundle)
	img := imageNamed(f.corpus, "kubesphere/kube-apiserver:v1.20.6")
	blobs, err := f.corpus.BlobDigests(img)
	if err != nil {
		t.Fatal(err)
	}
	victim := blobs[len(blobs)-1]
	p := filepath.Join(y, img.Repo+":"+img.Tag, victim.Encoded())
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("unpacked blob %s has mode %v, want 0444", p, fi.Mode().Perm())
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, p)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := bale(t, "verify", "registry:"+x)
	if res.code != exitInvalid || !strings.Contains(res.stderr, string(victim)) {
		t.Fatalf("verify after an edit through a link: exit %d, want %d naming %s\n%s", res.code, exitInvalid, victim, res.stderr)
	}
}
