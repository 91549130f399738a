package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/quicklist"
)

// mainInit is the line GODEBUG=inittrace=1 prints when package main's initialiser runs: the
// last of all, so only when bale started as always and not from package quicklist's init.
var mainInit = regexp.MustCompile(`(?m)^init main @`)

// listedEarly reports whether `bale args` (env added) listed from package quicklist's init,
// before the rest of bale initialised: the runtime's trace of package initialisers then ends
// before package main's.
func listedEarly(t *testing.T, env []string, args ...string) bool {
	t.Helper()
	r := baleEnv(t, append(env, "GODEBUG=inittrace=1"), args...)
	if !strings.Contains(r.stderr, "init github.com/bale-project/bale/layout @") {
		t.Fatalf("bale %v: no trace of the package initialisers (GODEBUG=inittrace=1):\n%s", args, r.stderr)
	}
	return !mainInit.MatchString(r.stderr)
}

// checkQuickList checks that `bale args` prints, byte for byte and with the same exit code,
// what it prints with the early list turned off (BALE_QUICKLIST=0: the command as it always
// ran), and that it listed early exactly when early is true.
func checkQuickList(t *testing.T, early bool, args ...string) {
	t.Helper()
	got := baleEnv(t, nil, args...)
	want := baleEnv(t, []string{quicklist.Env + "=0"}, args...)
	if got != want {
		t.Errorf("bale %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwith %s=0: exit %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), got.code, got.stdout, got.stderr, quicklist.Env, want.code, want.stdout, want.stderr)
	}
	if e := listedEarly(t, nil, args...); e != early {
		t.Errorf("bale %s: listed before the rest of bale initialised: %v, want %v", strings.Join(args, " "), e, early)
	}
}

// TestQuickListFallsBack: the early list is taken only for an unsigned bundle with a list
// member and a command line of list|ls, --json and --wide; every other case starts bale as
// always and prints what it always printed: another option, a location with a transport, a
// bundle signed inside or beside, a site policy, a profile asked for, BALE_QUICKLIST=0, a
// bundle without a seek table, a missing file, a directory.
func TestQuickListFallsBack(t *testing.T) {
	c := imagetest.Standard()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, img := range c.Images[:3] {
		if _, err := c.WriteDir(src, img); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-o", b, "dir:"+src)
	for _, args := range [][]string{{"list", b}, {"ls", b}, {"list", "--json", b}, {"list", b, "--wide"}, {"ls", "-wide", "-json", b}} {
		checkQuickList(t, true, args...)
	}
	for _, args := range [][]string{
		{"list", "--from-catalog", b}, {"list", "--json=true", b}, {"--debug", "list", b}, {"list", b, b},
		{"list", "--", b}, {"list", "bundle:" + b}, {"list", "dir:" + src}, {"list", src},
		{"list", filepath.Join(dir, "missing.tar.zst")}, {"list", "--help"},
	} {
		checkQuickList(t, false, args...)
	}
	for _, env := range [][]string{{"BALE_POLICY=" + filepath.Join(dir, "none.yaml")}, {"BALE_POLICY="},
		{"BALE_CPUPROFILE=" + filepath.Join(dir, "cpu.prof")}, {quicklist.Env + "=0"}} {
		if listedEarly(t, env, "list", b) {
			t.Errorf("bale list with %v listed before the rest of bale initialised", env)
		}
	}
	// Signed beside it: the full command checks the signature and names its signer.
	if err := os.WriteFile(b+".sigstore.json", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkQuickList(t, false, "list", b)
}

// TestQuickListStart: bale list of an unsigned bundle prints its first line without waiting
// for Helm, sigstore and the S3 SDK to initialise: none of their initialisers ran.
func TestQuickListStart(t *testing.T) {
	c := imagetest.Standard()
	dir := t.TempDir()
	for _, img := range c.Images[:2] {
		if _, err := c.WriteDir(filepath.Join(dir, "src"), img); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-o", b, "dir:"+filepath.Join(dir, "src"))
	r := baleEnv(t, []string{"GODEBUG=inittrace=1"}, "list", b)
	full := baleEnv(t, []string{"GODEBUG=inittrace=1", quicklist.Env + "=0"}, "list", b)
	for _, pkg := range []string{"helm.sh/helm", "github.com/sigstore/sigstore-go", "github.com/aws/aws-sdk-go-v2/service/s3 ",
		"github.com/santhosh-tekuri/jsonschema", "github.com/asaskevich/govalidator", "k8s.io/client-go/kubernetes/scheme"} {
		if !strings.Contains(full.stderr, "init "+pkg) {
			t.Fatalf("the full command initialised no %s: the check below could not fail\n%s", pkg, full.stderr)
		}
		if strings.Contains(r.stderr, "init "+pkg) {
			t.Errorf("bale list initialised %s before listing", pkg)
		}
	}
}

// TestQuickListDamagedMember: a list member damaged after its first rows (a byte flipped in
// its frame, bale's frames and seek table kept) fails where the damage is found, exit 4, after
// the rows before it, as the full command fails: the same rows, the same message.
func TestQuickListDamagedMember(t *testing.T) {
	c := imagetest.Scaled(900, 19)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, img := range c.Images {
		if _, err := c.WriteDir(src, img); err != nil {
			t.Fatal(err)
		}
	}
	b, bad := filepath.Join(dir, "b.tar.zst"), filepath.Join(dir, "bad.tar.zst")
	mustBale(t, "pack", "-o", b, "dir:"+src)
	editListFrame(t, b, bad, func(frame, _ []byte) []byte {
		frame[len(frame)*3/4] ^= 0x10
		return frame
	})
	for _, args := range [][]string{{"list", bad}, {"list", "--json", bad}} {
		checkQuickList(t, true, args...)
		r := bale(t, args...)
		if r.code != exitInvalid || !strings.Contains(r.stdout, "scaled/app-000") || !strings.Contains(r.stderr, bad) {
			t.Errorf("bale %v of a list member damaged after its first rows: exit %d, want %d after the rows before the damage\nstdout (%d bytes)\nstderr:\n%s",
				args, r.code, exitInvalid, len(r.stdout), r.stderr)
		}
	}
}
