package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// baleBin is the bale binary built once for the end-to-end tests.
var baleBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bale-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	baleBin = filepath.Join(dir, "bale")
	if out, err := exec.Command("go", "build", "-o", baleBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building bale: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	fixtureCleanup()
	for _, d := range extraCleanup {
		os.RemoveAll(d)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// extraCleanup are directories of fixtures made once per test binary, removed at its end.
var extraCleanup []string

// runResult is what one bale run printed and how it exited.
type runResult struct {
	stdout, stderr string
	code           int
}

// bale runs the built binary and returns its output and exit code.
func bale(t *testing.T, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(baleBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("running bale %v: %v", args, err)
	}
	return res
}

// mustBale runs bale and fails the test unless it exits 0.
func mustBale(t *testing.T, args ...string) runResult {
	t.Helper()
	res := bale(t, args...)
	if res.code != 0 {
		t.Fatalf("bale %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// fixture is genuine input made once per test binary by the real peers: the standard corpus
// pushed with skopeo into docker-registry (its storage root), and pulled back with skopeo into
// a skopeo dir tree.
type fixture struct {
	corpus   *imagetest.Corpus
	registry string // registry storage root written by docker-registry
	tree     string // skopeo dir tree written by skopeo copy --all
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  string
	fixDir  string
)

func fixtureCleanup() {
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.Need(t, "skopeo")
	testenv.Need(t, "docker-registry")
	fixOnce.Do(func() {
		// A sub-test owns the registry process, so it is stopped (by PID) when the sub-test ends.
		ok := t.Run("fixture", func(t *testing.T) {
			var err error
			fixDir, err = os.MkdirTemp("", "bale-fixture-")
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{corpus: imagetest.Standard(), registry: filepath.Join(fixDir, "registry"), tree: filepath.Join(fixDir, "tree")}
			reg := testenv.StartRegistry(t, f.registry)
			src := t.TempDir()
			for _, img := range f.corpus.Images {
				p, err := f.corpus.WriteDir(src, img)
				if err != nil {
					t.Fatal(err)
				}
				reg.Push(t, "dir:"+p, img.Repo, img.Tag)
			}
			for _, img := range f.corpus.Images {
				dst := filepath.Join(f.tree, img.Repo+":"+img.Tag)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				testenv.Skopeo(t, "copy", "--all", "--src-tls-verify=false", "--src-no-creds", reg.Ref(img.Repo, img.Tag), "dir:"+dst)
			}
			reg.Stop()
			fix = f
		})
		if !ok {
			fixErr = "building the fixture failed"
		}
	})
	if fix == nil {
		t.Fatal(fixErr)
	}
	return fix
}

// checkServed serves root with docker-registry and pulls every image of the corpus from it with
// skopeo, comparing manifest digests; prefix is prepended to each repository name.
func checkServed(t *testing.T, root, prefix string, images []imagetest.Image) {
	t.Helper()
	reg := testenv.StartRegistry(t, root)
	for _, img := range images {
		reg.CheckPull(t, prefix+img.Repo, img.Tag, img.Digest, img.Children)
	}
}

// listed is one image as `bale list --json` reports it.
type listed struct {
	Repo, Tag, Digest, MediaType string
	Platforms                    []string
	Size                         int64
}

func listJSON(t *testing.T, target string) []listed {
	t.Helper()
	res := mustBale(t, "list", "--json", target)
	var out struct{ Images []listed }
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("bale list --json %s: %v\n%s", target, err, res.stdout)
	}
	return out.Images
}

// wantListed is the corpus as `bale list` should report it.
func wantListed(images []imagetest.Image) []string {
	var out []string
	for _, img := range images {
		out = append(out, fmt.Sprintf("%s:%s %s %s", img.Repo, img.Tag, img.Digest, img.MediaType))
	}
	sort.Strings(out)
	return out
}

func gotListed(ls []listed) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s:%s %s %s", l.Repo, l.Tag, l.Digest, l.MediaType))
	}
	sort.Strings(out)
	return out
}

func checkList(t *testing.T, target string, images []imagetest.Image) {
	t.Helper()
	got, want := gotListed(listJSON(t, target)), wantListed(images)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bale list %s:\n got %s\nwant %s", target, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func blobData(root string, d digest.Digest) string {
	return filepath.Join(root, "docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data")
}

// TestPackUnpackRegistrySource is the core journey: genuine registry storage -> bundle ->
// registry dir + skopeo dir tree, each checked with the real registry and skopeo; plain
// tar --zstd -xf of the bundle is served too.
func TestPackUnpackRegistrySource(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+f.registry)
	checkList(t, bundle, f.corpus.Images)
	checkList(t, f.registry, f.corpus.Images) // a bare path is detected
	mustBale(t, "verify", bundle)

	// Deterministic: the same images packed twice give the same bytes.
	again := filepath.Join(work, "again.tar.zst")
	mustBale(t, "pack", "-o", again, f.registry)
	b1, _ := os.ReadFile(bundle)
	b2, _ := os.ReadFile(again)
	if !bytes.Equal(b1, b2) {
		t.Errorf("packing twice gave different bundles (%d and %d bytes)", len(b1), len(b2))
	}

	// Size: at most the unique blob bytes plus 1% plus 1 MB.
	var unique int64
	for _, b := range f.corpus.Blobs {
		unique += int64(len(b))
	}
	if limit := unique + unique/100 + 1<<20; int64(len(b1)) > limit {
		t.Errorf("bundle is %d bytes, limit %d (unique blobs %d)", len(b1), limit, unique)
	}

	checkUnpacked(t, f, bundle)
}

// checkUnpacked unpacks bundle (the whole corpus) into registry storage and a dir tree at
// once and checks them with the real peers: bale verify, hard links by inode, docker-registry
// serving the storage to skopeo copy --all, skopeo sync --src dir from the tree into another
// registry, and a plain tar --zstd -xf of the bundle served the same way.
func checkUnpacked(t *testing.T, f *fixture, bundle string) {
	t.Helper()
	work := t.TempDir()
	x, y := filepath.Join(work, "x"), filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, bundle)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "dir:"+y)
	checkList(t, "dir:"+y, f.corpus.Images)

	// The dir tree is hard-linked out of the registry storage.
	for _, img := range f.corpus.Images {
		blobs, err := f.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(y, img.Repo+":"+img.Tag)
		for _, d := range blobs {
			if inode(t, filepath.Join(dir, d.Encoded())) != inode(t, blobData(x, d)) {
				t.Errorf("%s: blob %s is not a hard link of the registry's", dir, d)
			}
		}
		if inode(t, filepath.Join(dir, "manifest.json")) != inode(t, blobData(x, img.Digest)) {
			t.Errorf("%s: manifest.json is not a hard link of the registry's", dir)
		}
	}

	t.Run("served registry dir", func(t *testing.T) { checkServed(t, x, "", f.corpus.Images) })

	t.Run("skopeo sync --src dir", func(t *testing.T) {
		reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "synced"))
		testenv.Skopeo(t, "sync", "--all", "--preserve-digests", "--scoped", "--src", "dir", "--dest", "docker",
			"--dest-tls-verify=false", "--dest-no-creds", y, reg.Addr+"/synced")
		for _, img := range f.corpus.Images {
			reg.CheckPull(t, "synced/"+img.Repo, img.Tag, img.Digest, img.Children)
		}
	})

	t.Run("plain tar --zstd -xf", func(t *testing.T) {
		testenv.Need(t, "zstd")
		z := filepath.Join(t.TempDir(), "z")
		if err := os.MkdirAll(z, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "--zstd", "-xf", bundle, "-C", z).CombinedOutput(); err != nil {
			t.Fatalf("tar --zstd -xf: %v\n%s", err, out)
		}
		// A format-5 bundle: its list member lands beside the catalog, outside the storage.
		if _, err := os.Stat(filepath.Join(z, "bale", "list.jsonl")); err != nil {
			t.Errorf("tar --zstd -xf: no list member: %v", err)
		}
		checkServed(t, z, "", f.corpus.Images)
	})
}

// TestPackUnpackDirSource packs a skopeo dir tree written by skopeo itself.
func TestPackUnpackDirSource(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "from-dir.tar.zst")
	mustBale(t, "pack", "-o", bundle, "dir:"+f.tree)
	checkList(t, bundle, f.corpus.Images)

	// The same images from a dir tree and from registry storage give the same bundle.
	fromReg := filepath.Join(work, "from-registry.tar.zst")
	mustBale(t, "pack", "-o", fromReg, f.registry)
	b1, _ := os.ReadFile(bundle)
	b2, _ := os.ReadFile(fromReg)
	if !bytes.Equal(b1, b2) {
		t.Errorf("dir tree and registry storage of the same images packed differently")
	}

	checkUnpacked(t, f, bundle)
}

// TestUnpackAcrossFileSystems: a dir tree on another file system than the registry storage
// gets copies, and bale says so.
func TestUnpackAcrossFileSystems(t *testing.T) {
	f := getFixture(t)
	other, err := os.MkdirTemp("/dev/shm", "bale-xfs-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(other)
	work := t.TempDir()
	if deviceOf(t, other) == deviceOf(t, work) {
		t.Skip("/dev/shm and the temp dir are on one file system")
	}
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, f.registry)
	y := filepath.Join(other, "y")
	res := mustBale(t, "unpack", "--to", "registry:"+filepath.Join(work, "x"), "--to", "dir:"+y, bundle)
	if !strings.Contains(res.stderr, "copied, not hard-linked") {
		t.Errorf("unpack across file systems did not say it copied:\n%s", res.stderr)
	}
	mustBale(t, "verify", "dir:"+y)
}

func deviceOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Dev)
}

// TestUnpackDirOnly: with dir: alone each unique blob is stored once and linked into every
// image that uses it, and nothing else is left in the tree.
func TestUnpackDirOnly(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, f.registry)
	y := filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "dir:"+y, bundle)
	if _, err := os.Stat(filepath.Join(y, ".bale-staging")); !os.IsNotExist(err) {
		t.Errorf("staging dir left behind: %v", err)
	}
	inodes := map[digest.Digest]uint64{}
	for _, img := range f.corpus.Images {
		blobs, err := f.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range blobs {
			ino := inode(t, filepath.Join(y, img.Repo+":"+img.Tag, d.Encoded()))
			if old, ok := inodes[d]; ok && old != ino {
				t.Errorf("blob %s stored twice (inodes %d and %d)", d, old, ino)
			}
			inodes[d] = ino
		}
	}
	mustBale(t, "verify", "dir:"+y)
	// skopeo reads every image of the tree.
	for _, img := range f.corpus.Images {
		out := testenv.Skopeo(t, "inspect", "--raw", "dir:"+filepath.Join(y, img.Repo+":"+img.Tag))
		if got := digest.FromBytes(out); got != img.Digest {
			t.Errorf("%s: skopeo reads manifest %s, want %s", img.Name(), got, img.Digest)
		}
	}
}

// TestPackImageListAndPlatform packs a list with a host prefix, comments and duplicates, and
// --platform, then serves the result.
func TestPackImageListAndPlatform(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	var pick []imagetest.Image
	var lines []string
	lines = append(lines, "##k8s-images", "")
	for _, img := range f.corpus.Images {
		if strings.HasPrefix(img.Repo, "multiarch/") || img.Repo == "kubesphere/kube-apiserver" {
			pick = append(pick, img)
			lines = append(lines, "docker.io/"+img.Repo+":"+img.Tag+"  # pinned", img.Repo+":"+img.Tag)
		}
	}
	list := filepath.Join(work, "images-list.txt")
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(work, "amd64.tar.zst")
	mustBale(t, "pack", "--images", list, "--platform", "linux/amd64", "-o", bundle, f.registry)

	// Each multi-arch tag now points at its linux/amd64 child, with the child's own digest.
	var want []imagetest.Image
	for _, img := range pick {
		if img.IsIndex() {
			child := amd64Child(t, f.corpus, img)
			img = imagetest.Image{Repo: img.Repo, Tag: img.Tag, Digest: child.Digest, MediaType: child.MediaType}
		}
		want = append(want, img)
	}
	checkList(t, bundle, want)
	x := filepath.Join(work, "x")
	mustBale(t, "unpack", "--to", "registry:"+x, bundle)
	checkServed(t, x, "", want)
}

// TestPackMissingImages: every missing image is reported, the exit code says "not found",
// and no output (nor temporary file) is left.
func TestPackMissingImages(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	list := filepath.Join(work, "list.txt")
	os.WriteFile(list, []byte("busybox:1.36.1\nnope/one:v1\nbusybox:no-such-tag\n"), 0o644)
	out := filepath.Join(work, "out", "b.tar.zst")
	os.MkdirAll(filepath.Dir(out), 0o755)
	res := bale(t, "pack", "--images", list, "-o", out, f.registry)
	if res.code != exitNotFound {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitNotFound, res.stderr)
	}
	for _, ref := range []string{"nope/one:v1", "busybox:no-such-tag"} {
		if !strings.Contains(res.stderr, ref) {
			t.Errorf("error does not name %s:\n%s", ref, res.stderr)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Errorf("files left behind: %v", ents)
	}
}

// TestUnpackMerges: unpacking into registry storage that holds other repositories keeps them.
func TestUnpackMerges(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	var first, second []imagetest.Image
	var l1, l2 []string
	for _, img := range f.corpus.Images {
		if strings.HasPrefix(img.Repo, "a/") || img.Repo == "busybox" {
			first, l1 = append(first, img), append(l1, img.Name())
		} else {
			second, l2 = append(second, img), append(l2, img.Name())
		}
	}
	x := filepath.Join(work, "x")
	for i, step := range []struct {
		list []string
		want []imagetest.Image // in x after this step's unpack
	}{{l1, first}, {l2, append(first, second...)}} {
		list := filepath.Join(work, fmt.Sprintf("l%d.list", i))
		os.WriteFile(list, []byte(strings.Join(step.list, "\n")), 0o644)
		b := filepath.Join(work, fmt.Sprintf("b%d.tar.zst", i))
		mustBale(t, "pack", "--images", list, "-o", b, f.registry)
		mustBale(t, "unpack", "--to", "registry:"+x, b)
		checkList(t, "registry:"+x, step.want)
	}
	mustBale(t, "verify", "registry:"+x)
	// Unpacking the same bundle again reuses every blob.
	res := mustBale(t, "unpack", "--to", "registry:"+x, filepath.Join(work, "b1.tar.zst"))
	if !strings.Contains(res.stderr, " 0 blobs written") {
		t.Errorf("re-unpack wrote blobs again: %s", res.stderr)
	}
}
