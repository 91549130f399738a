package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileSums are the sha256 of every regular file under dir (or of dir, a file), by path.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sums[p] = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		return nil
	})
	return sums
}

// TestOutputNeverReplacesInput: an output that is an input, however its path is spelled
// (the same name, ./, dir/../, a symbolic link, a hard link, a symbolic link to the
// directory), or whose volumes would overwrite an input's volumes, is refused before any
// work: exit 2, both paths named, every input unchanged and nothing else written.
func TestOutputNeverReplacesInput(t *testing.T) {
	work := t.TempDir()
	in := func(p string) string { return filepath.Join(work, p) }
	big := bigStore(t, 2, 300<<10)
	mustBale(t, "pack", "-q", "-o", in("base.tar.zst"), "registry:"+sampleRegistry)
	mustBale(t, "pack", "-q", "--volume-size", "256K", "-o", in("split.tar.zst"), "registry:"+big)
	mustBale(t, "copy", "-q", "registry:"+sampleRegistry, "oci-archive:"+in("images.tar"))
	os.WriteFile(in("images.list"), []byte("busybox:1.36.1\n"), 0o644)
	os.Symlink("base.tar.zst", in("link.tar.zst"))
	os.Link(in("base.tar.zst"), in("hard.tar.zst"))
	os.Mkdir(in("sub"), 0o755)
	os.Symlink(work, in("alias"))
	before := fileSums(t, work)

	base := in("base.tar.zst")
	tests := []struct {
		name  string
		args  []string
		named []string // both paths, as given
	}{
		{"-o the base", []string{"pack", "--base", base, "-o", base, "registry:" + sampleRegistry}, []string{base}},
		{"-o ./base", []string{"pack", "--base", base, "-o", "./" + filepath.Base(base), "registry:" + sampleRegistry}, []string{base, "./base.tar.zst"}},
		{"-o sub/../base", []string{"pack", "--base", base, "-o", work + "/sub/../base.tar.zst", "registry:" + sampleRegistry}, []string{base, "sub/../base.tar.zst"}},
		{"-o a symlink to the base", []string{"pack", "--base", base, "-o", in("link.tar.zst"), "registry:" + sampleRegistry}, []string{base, "link.tar.zst"}},
		{"-o a hard link to the base", []string{"pack", "--base", base, "-o", in("hard.tar.zst"), "registry:" + sampleRegistry}, []string{base, "hard.tar.zst"}},
		{"-o the base through a linked directory", []string{"pack", "--base", "registry:" + sampleRegistry, "--base", base, "-o", in("alias/base.tar.zst"), "registry:" + sampleRegistry}, []string{base, "alias/base.tar.zst"}},
		{"-o a volume of the base", []string{"pack", "--base", in("split.tar.zst"), "-o", in("split.tar.zst.002"), "registry:" + big}, []string{"split.tar.zst.002"}},
		{"volumes over the base's volumes", []string{"pack", "--volume-size", "64K", "--base", in("split.tar.zst.001"), "-o", in("split.tar.zst"), "registry:" + big}, []string{"split.tar.zst.001", "split.tar.zst"}},
		{"-o the source archive", []string{"pack", "-o", in("images.tar"), "oci-archive:" + in("images.tar")}, []string{"SOURCE", "images.tar"}},
		{"-o the image list", []string{"pack", "--images", in("images.list"), "-o", in("images.list"), "registry:" + sampleRegistry}, []string{"--images", "images.list"}},
		{"unpack --to oci-archive: the bundle", []string{"unpack", "--to", "oci-archive:" + base, base}, []string{"BUNDLE", base}},
		{"unpack --to docker-archive: a link to the bundle", []string{"unpack", "--to", "docker-archive:" + in("link.tar.zst"), base}, []string{base, "link.tar.zst"}},
		{"copy to the source archive", []string{"copy", "oci-archive:" + in("images.tar"), "docker-archive:" + in("alias/images.tar")}, []string{"SRC", "images.tar"}},
		{"copy a bundle onto itself", []string{"copy", base, "oci-archive:" + in("hard.tar.zst")}, []string{base, "hard.tar.zst"}},
		{"copy onto the image list", []string{"copy", "--images", in("images.list"), "registry:" + sampleRegistry, "oci-archive:" + in("images.list")}, []string{"--images", "images.list"}},
		{"unpack --to two names of one file", []string{"unpack", "--to", "oci-archive:" + in("x.tar"), "--to", "docker-archive:" + in("alias/x.tar"), base}, []string{"x.tar", "alias/x.tar"}},
	}
	t.Chdir(work)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := bale(t, tt.args...)
			if res.code != exitUsage {
				t.Fatalf("bale %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), res.code, exitUsage, res.stderr)
			}
			for _, w := range tt.named {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("the error does not name %s:\n%s", w, res.stderr)
				}
			}
			after := fileSums(t, work)
			for p, sum := range before {
				if after[p] != sum {
					t.Errorf("%s changed", p)
				}
			}
			for p := range after {
				if before[p] == "" {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// TestOutputCheckedBeforeWork: an output that cannot be written where it is named (an
// existing directory; for pack a missing directory, which unpack creates; below a file; a
// read-only file system) is refused before any work, with a message that says so, and
// nothing is left behind (no staging directory, no temporary file); named right, it works.
func TestOutputCheckedBeforeWork(t *testing.T) {
	work := t.TempDir()
	bundle := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+sampleRegistry)
	dir := filepath.Join(work, "out")
	os.Mkdir(dir, 0o755)
	ro := filepath.Join(work, "ro")
	os.Mkdir(ro, 0o755)
	readOnly := mountTmpfs(t, ro, "ro,size=1m") == nil
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unpack --to docker-archive:DIR", []string{"unpack", "--to", "docker-archive:" + dir, bundle}, exitUsage, "docker-archive:" + dir + " is a directory"},
		{"unpack --to oci-archive:DIR", []string{"unpack", "--to", "oci-archive:" + dir, bundle}, exitUsage, "is a directory"},
		{"pack -o DIR", []string{"pack", "-o", dir, "registry:" + sampleRegistry}, exitUsage, "-o " + dir + " is a directory"},
		{"pack -o in a missing directory", []string{"pack", "-o", filepath.Join(work, "no/b.tar.zst"), "registry:" + sampleRegistry}, exitUsage, "the directory " + filepath.Join(work, "no") + " does not exist"},
		{"unpack --to below a file", []string{"unpack", "--to", "oci-archive:" + filepath.Join(bundle, "no/x.tar"), bundle}, exitUsage, bundle + " is not a directory"},
		{"unpack --to below a read-only file system", []string{"unpack", "--to", "oci-archive:" + filepath.Join(ro, "no/x.tar"), bundle}, exitError, "cannot write in " + ro},
		{"pack -o on a read-only file system", []string{"pack", "-o", filepath.Join(ro, "b.tar.zst"), "registry:" + sampleRegistry}, exitError, "cannot write in " + ro},
	}
	before := fileSums(t, work)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "read-only") && !readOnly {
				needTmpfs(t, ro, "ro,size=1m") // skips, or fails under CI=true
			}
			res := bale(t, tt.args...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("bale %s: exit %d, want %d and %q\n%s", strings.Join(tt.args, " "), res.code, tt.code, tt.want, res.stderr)
			}
			entries, _ := os.ReadDir(work)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".bale") || strings.Contains(e.Name(), ".bale-") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
			if after := fileSums(t, work); len(after) != len(before) {
				t.Errorf("files written: %d before, %d after", len(before), len(after))
			}
		})
	}
	// Named as a file in that directory, the same commands work.
	mustBale(t, "unpack", "-q", "--to", "docker-archive:"+filepath.Join(dir, "images.tar"), "--to", "oci-archive:"+filepath.Join(dir, "oci.tar"), bundle)
	mustBale(t, "pack", "-q", "-o", filepath.Join(dir, "again.tar.zst"), "registry:"+sampleRegistry)
}
