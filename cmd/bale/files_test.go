package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout/fileart"
)

// runPeer runs a real client tool (bin, found by the caller) in dir with a HOME of its own
// plus env, and returns its stdout.
func runPeer(t *testing.T, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker")), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(bin), strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// fileTree lists every entry below dir: type, permission bits, and content hash or link target.
func fileTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "link " + l
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().Perm().String()
		default:
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			out[rel] = "file " + fi.Mode().Perm().String() + " " + hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// filesSample writes a 0755 tool, a second file, and a directory tree with modes, an empty
// directory and a relative symbolic link, under base.
func filesSample(t *testing.T, base string) (tool, data, tree string) {
	t.Helper()
	tool = filepath.Join(base, "kubeadm")
	data = filepath.Join(base, "oras-tool")
	tree = filepath.Join(base, "osrepo")
	write := func(p, body string, mode fs.FileMode) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(tool, strings.Repeat("#!/bin/sh\necho kubeadm\n", 2000), 0o755)
	write(data, strings.Repeat("oras tool ", 3000), 0o755)
	write(filepath.Join(tree, "Release"), "Origin: site\n", 0o644)
	write(filepath.Join(tree, "pool/main/a.deb"), strings.Repeat("deb ", 5000), 0o640)
	write(filepath.Join(tree, "bin/run"), "#!/bin/sh\n", 0o750)
	if err := os.Mkdir(filepath.Join(tree, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pool/main/a.deb", filepath.Join(tree, "latest.deb")); err != nil {
		t.Fatal(err)
	}
	return tool, data, tree
}

// TestFilesUnpack: bale-staged artifacts (a 0755 file and a directory) and stock oras push
// ones (a file and a directory) in docker-registry, packed from docker://, unpacked with
// --to files: beside a registry: target (hard links to the blobs, checked by inode), alone
// (through the stage), and copied from the bundle (verified copies, modes exact).
func TestFilesUnpack(t *testing.T) {
	oras := testenv.NeedTool(t, "oras")
	work := t.TempDir()
	tool, data, tree := filesSample(t, filepath.Join(work, "src"))
	root := filepath.Join(work, "storage")
	ctx := context.Background()
	if _, err := fileart.Stage(ctx, root, fileart.Spec{Path: tool, Name: "tools/kubeadm", Tag: "v1.28.2"}, fileart.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fileart.Stage(ctx, root, fileart.Spec{Path: tree, Name: "os/debian-12", Tag: "2026.12"}, fileart.Options{}); err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, root)
	src := filepath.Dir(tool)
	runPeer(t, src, nil, oras, "push", "--plain-http", reg.Addr+"/files/tools/oras-tool:v1", "oras-tool")
	runPeer(t, src, nil, oras, "push", "--plain-http", reg.Addr+"/files/os/stock:v1", "osrepo")
	runPeer(t, src, nil, oras, "push", "--plain-http", reg.Addr+"/other/not-files:v1", "oras-tool") // not under files/

	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "docker://"+reg.Addr)
	out := filepath.Join(work, "out")
	regOut := filepath.Join(out, "registry")
	filesOut := filepath.Join(out, "files")
	res := mustBale(t, "unpack", "--to", "registry:"+regOut, "--to", "files:"+filesOut, bundle)
	t.Log(res.stderr)
	if !strings.Contains(res.stderr, "1 images that are not file artifacts skipped") {
		t.Errorf("unpack does not say it skipped other/not-files:\n%s", res.stderr)
	}
	srcTree := fileTree(t, tree)
	check := func(dir string, linked bool) {
		t.Helper()
		toolMode, stockMode := "-rwxr-xr-x", "-rw-r--r--" // bale's annotation; stock oras: no mode, 0644
		if linked {
			toolMode, stockMode = "-r-xr-xr-x", "-r--r--r--" // the blob's inode stays read-only
		}
		got := fileTree(t, dir)
		wantTool, wantData := fileTree(t, tool)["."], fileTree(t, data)["."]
		if g := got["tools/kubeadm/kubeadm"]; g != strings.Replace(wantTool, "-rwxr-xr-x", toolMode, 1) {
			t.Errorf("%s: kubeadm %q, want %q with mode %s", dir, g, wantTool, toolMode)
		}
		if g := got["tools/oras-tool/oras-tool"]; g != strings.Replace(wantData, "-rwxr-xr-x", stockMode, 1) {
			t.Errorf("%s: stock oras file %q, want %q with mode %s", dir, g, wantData, stockMode)
		}
		for rel, want := range srcTree {
			if g := got[filepath.Join("os/debian-12/osrepo", rel)]; g != want {
				t.Errorf("%s: bale directory: %s is %q, want %q", dir, rel, g, want)
			}
			// oras-go tars the modes too; only its content matters for a stock one here.
			g := got[filepath.Join("os/stock/osrepo", rel)]
			if strings.HasPrefix(want, "file") && g[len(g)-64:] != want[len(want)-64:] {
				t.Errorf("%s: stock oras directory: %s is %q, want %q", dir, rel, g, want)
			}
		}
		for rel := range got {
			if strings.Contains(rel, ".bale-") || strings.HasPrefix(rel, "other") {
				t.Errorf("%s: left behind or not a file artifact: %s", dir, rel)
			}
		}
	}
	check(filesOut, true)
	sum := sha256.Sum256(mustRead(t, tool))
	if inode(t, filepath.Join(filesOut, "tools/kubeadm/kubeadm")) != inode(t, blobData(regOut, digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:])))) {
		t.Errorf("files: kubeadm is not a hard link to its blob in the registry: target")
	}

	alone := filepath.Join(work, "alone")
	mustBale(t, "unpack", "--to", "files:"+alone, bundle)
	check(alone, true)
	if _, err := os.Stat(filepath.Join(alone, stagingDir)); err == nil {
		t.Errorf("the stage %s was left in files:", stagingDir)
	}

	copied := filepath.Join(work, "copied")
	res = mustBale(t, "copy", bundle, "files:"+copied)
	t.Log(res.stderr)
	check(copied, false)
	if !strings.Contains(res.stderr, "0 hard links") {
		t.Errorf("copy from a bundle: %s", res.stderr)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFilesHostile: directory artifacts pushed with the real oras whose tar holds a "..", an
// absolute name or a symbolic link out of the tree are refused by copy --to files:, and the
// directory keeps what it held, with no temporary file left.
func TestFilesHostile(t *testing.T) {
	oras := testenv.NeedTool(t, "oras")
	for name, hdr := range map[string]tar.Header{
		"dotdot":   {Name: "evil/../../escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4},
		"absolute": {Name: "/tmp/escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4},
		"symlink":  {Name: "evil/out", Typeflag: tar.TypeSymlink, Linkname: "../../../etc", Mode: 0o777},
		"device":   {Name: "evil/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
	} {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			var tb bytes.Buffer
			tw := tar.NewWriter(&tb)
			tw.WriteHeader(&tar.Header{Name: "evil/", Typeflag: tar.TypeDir, Mode: 0o755})
			tw.WriteHeader(&hdr)
			if hdr.Typeflag == tar.TypeReg {
				tw.Write([]byte("pwnd"))
			}
			tw.Close()
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(tb.Bytes())
			zw.Close()
			src := filepath.Join(work, "src")
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "evil"), gz.Bytes(), 0o644)
			tarSum := sha256.Sum256(tb.Bytes())
			ann, _ := json.Marshal(map[string]map[string]string{"evil": {
				fileart.AnnotationUnpack: "true", fileart.AnnotationDigest: "sha256:" + hex.EncodeToString(tarSum[:])}})
			os.WriteFile(filepath.Join(src, "ann.json"), ann, 0o644)
			root := filepath.Join(work, "storage")
			reg := testenv.StartRegistry(t, root)
			runPeer(t, src, nil, oras, "push", "--plain-http", "--annotation-file", "ann.json",
				reg.Addr+"/files/evil:v1", "evil:application/vnd.oci.image.layer.v1.tar+gzip")
			reg.Stop()

			dst := filepath.Join(work, "deep", "er", "files")
			os.MkdirAll(filepath.Join(dst, "evil"), 0o755)
			os.WriteFile(filepath.Join(dst, "evil", "keep"), []byte("kept"), 0o644)
			before := fileTree(t, filepath.Join(work, "deep"))
			res := bale(t, "copy", "registry:"+root, "files:"+dst)
			if res.code == 0 || !strings.Contains(res.stderr, "unsafe directory artifact") {
				t.Fatalf("copy of a hostile artifact: exit %d\n%s", res.code, res.stderr)
			}
			if after := fileTree(t, filepath.Join(work, "deep")); !mapsEqual(before, after) {
				t.Errorf("the files: directory changed:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat("/tmp/escaped"); err == nil && name == "absolute" {
				t.Errorf("/tmp/escaped was written")
			}
		})
	}
}
