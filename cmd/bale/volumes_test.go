package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bale-project/bale/internal/testenv"
)

// TestVolumesEndToEnd: bale pack --volume-size writes OUT.001, OUT.002, ...; `cat OUT.* |
// tar --zstd -x` gives registry storage docker-registry serves to skopeo; bale list, verify
// and unpack take the set by its first volume or by OUT; with one volume missing or one byte
// flipped, verify and unpack name that volume and write nothing.
func TestVolumesEndToEnd(t *testing.T) {
	testenv.Need(t, "zstd")
	root := bigStore(t, 3, 300<<10)
	work := t.TempDir()
	out := filepath.Join(work, "release.tar.zst")
	res := mustBale(t, "pack", "--volume-size", "256K", "-o", out, "registry:"+root)
	t.Logf("%s", res.stderr)
	vols, _ := filepath.Glob(out + ".*")
	if len(vols) < 4 || !strings.Contains(res.stderr, "volumes)") {
		t.Fatalf("volumes %v\n%s", vols, res.stderr)
	}
	for _, p := range []string{out, vols[0]} {
		if l := mustBale(t, "list", p); !strings.Contains(l.stdout, "big/app-2") {
			t.Errorf("bale list %s:\n%s", p, l.stdout)
		}
		mustBale(t, "verify", p)
	}
	x := filepath.Join(work, "x")
	os.MkdirAll(x, 0o755)
	if o, err := exec.Command("bash", "-c", "cat "+out+".* | tar --zstd -x -C "+x).CombinedOutput(); err != nil {
		t.Fatalf("cat | tar --zstd -x: %v\n%s", err, o)
	}
	reg := testenv.StartRegistry(t, x)
	for i := range 3 {
		repo := "big/app-" + string(rune('0'+i))
		want := readLink(t, tagLink(root, repo, "v1"))
		reg.CheckPull(t, repo, "v1", want, nil)
	}
	y := filepath.Join(work, "y")
	mustBale(t, "unpack", "--to", "registry:"+y, out)
	mustBale(t, "verify", "registry:"+y)

	os.Rename(vols[2], vols[2]+".away")
	for _, args := range [][]string{{"verify", out}, {"unpack", "--to", "registry:" + filepath.Join(work, "z"), out}} {
		r := bale(t, args...)
		if r.code != 4 || !strings.Contains(r.stderr, filepath.Base(vols[2])) {
			t.Errorf("bale %v with %s missing: exit %d\n%s", args, vols[2], r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "z")); !os.IsNotExist(err) {
		t.Error("unpack created its target though a volume is missing")
	}
	// serve refuses before it listens (killed by the timeout if it served anyway).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, baleBin, "serve", "--addr", "127.0.0.1:0", out)
	o, err := serve.CombinedOutput()
	if code := serve.ProcessState.ExitCode(); code != 4 || !strings.Contains(string(o), filepath.Base(vols[2])) {
		t.Errorf("bale serve with %s missing: exit %d (%v)\n%s", vols[2], code, err, o)
	}
	os.Rename(vols[2]+".away", vols[2])
	b, _ := os.ReadFile(vols[1])
	b[100] ^= 0x40
	os.WriteFile(vols[1], b, 0o644)
	if r := bale(t, "verify", vols[0]); r.code != 4 || !strings.Contains(r.stderr, filepath.Base(vols[1])+" is damaged") {
		t.Errorf("verify with a flipped byte in %s: exit %d\n%s", vols[1], r.code, r.stderr)
	}
}
