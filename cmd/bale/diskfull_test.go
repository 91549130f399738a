package main

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// freeHint finds how much unpack's full-disk hint says to free: "free 1.2 MiB (1234567
// bytes) or more", or "free 371.8 KiB or more" (as bale 0.1 said it, without the bytes).
var freeHint = regexp.MustCompile(`free ([\d.]+) ([KMG]i)?B(?: \((\d+) bytes\))? or more`)

// hintBytes is the number of bytes of a freeHint match, rounded up; 0 without one.
func hintBytes(m []string) int64 {
	if m == nil {
		return 0
	}
	if m[3] != "" {
		n, _ := strconv.ParseInt(m[3], 10, 64)
		return n
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m[2]]
	return int64(math.Ceil(f * mult))
}

// TestFullDiskHintIsEnough: unpack into registry storage and a dir tree on a small tmpfs
// fails for want of space; the hint names how much to free; once exactly that much more is
// there (the tmpfs grown by that many bytes), the same command succeeds.
func TestFullDiskHintIsEnough(t *testing.T) {
	root := bigStore(t, 3, 2<<20) // 4 MiB shared, 3 x 2 MiB
	bundle := filepath.Join(t.TempDir(), "big.tar.zst")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+root)
	small := t.TempDir()
	size := int64(3 << 20)
	needTmpfs(t, small, "size="+strconv.FormatInt(size, 10))

	args := []string{"unpack", "-q", "--to", "registry:" + filepath.Join(small, "reg"), "--to", "dir:" + filepath.Join(small, "tree"), bundle}
	res := bale(t, args...)
	short := hintBytes(freeHint.FindStringSubmatch(res.stderr))
	if res.code != exitError || short == 0 {
		t.Fatalf("unpack onto %d bytes: exit %d, want %d and a hint with the bytes to free\n%s", size, res.code, exitError, res.stderr)
	}
	t.Logf("%s", res.stderr)
	if short > 12<<20 {
		t.Errorf("the hint says to free %d bytes; the whole bundle's content is about 10 MiB", short)
	}
	size += short
	remountTmpfs(t, small, size)
	res = bale(t, args...)
	if res.code != 0 {
		t.Fatalf("after freeing the %d bytes the hint named, unpack: exit %d\n%s", short, res.code, res.stderr)
	}
	mustBale(t, "verify", "registry:"+filepath.Join(small, "reg"))
	mustBale(t, "verify", "dir:"+filepath.Join(small, "tree"))
}

// TestFailedArchiveUnpackLeavesNoStaging: unpack into an archive file alone stages registry
// storage beside it; when it fails (here, a file system too small), that staging goes too.
func TestFailedArchiveUnpackLeavesNoStaging(t *testing.T) {
	root := bigStore(t, 3, 2<<20)
	bundle := filepath.Join(t.TempDir(), "big.tar.zst")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+root)
	tiny := t.TempDir()
	needTmpfs(t, tiny, "size=3m")
	res := bale(t, "unpack", "-q", "--to", "oci-archive:"+filepath.Join(tiny, "images.tar"), bundle)
	if res.code == 0 {
		t.Fatalf("unpack of 10 MiB into a 3 MiB file system succeeded\n%s", res.stderr)
	}
	entries, _ := os.ReadDir(tiny)
	for _, e := range entries {
		t.Errorf("left in %s after a failed unpack: %s", tiny, e.Name())
	}
	if strings.Contains(res.stderr, "kept in") {
		t.Errorf("the error says the staging is kept:\n%s", res.stderr)
	}
}
