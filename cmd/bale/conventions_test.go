package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleRegistry is the registry storage of testdata (11 images, two multi-arch indexes).
const sampleRegistry = "../../testdata/sample-registry"

// TestUsageErrors: every mistake in the command line itself (an unknown option or command, a
// bad option value, --jobs 0 whatever the location) exits 2 with one line on standard error
// that names the bad word and --help, and prints nothing on standard output.
func TestUsageErrors(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "out.tar.zst")
	tests := []struct {
		name string
		args []string
		want []string // what the one line says
	}{
		{"unknown option of a command", []string{"list", "--bogus", sampleRegistry}, []string{"bogus", "bale list --help"}},
		{"unknown option after the arguments", []string{"list", sampleRegistry, "--bogus"}, []string{"bogus", "bale list --help"}},
		{"unknown global option", []string{"--bogus", "list"}, []string{"bogus", "bale --help"}},
		{"unknown command", []string{"bogus", "x"}, []string{`"bogus"`, "bale --help"}},
		{"help of an unknown command", []string{"help", "bogus"}, []string{`"bogus"`, "bale --help"}},
		{"bad option value", []string{"pack", "--jobs", "many", "-o", out, sampleRegistry}, []string{"many", "bale pack --help"}},
		{"--jobs 0, local source", []string{"pack", "--jobs", "0", "-o", out, "registry:" + sampleRegistry}, []string{"--jobs 0"}},
		{"--jobs 0, docker source", []string{"pack", "--jobs", "0", "-o", out, "docker://127.0.0.1:1/x"}, []string{"--jobs 0"}},
		{"--jobs=-1, copy", []string{"copy", "--jobs=-1", "registry:" + sampleRegistry, "oci:" + filepath.Join(work, "oci")}, []string{"--jobs -1"}},
		{"--jobs 0, unpack", []string{"unpack", "-j", "0", "--to", "dir:" + filepath.Join(work, "d"), out}, []string{"--jobs 0"}},
		{"--platform without an architecture", []string{"pack", "--platform", "linux", "-o", out, "registry:" + sampleRegistry}, []string{`"linux"`, "OS/ARCH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := bale(t, tt.args...)
			if res.code != exitUsage || res.stdout != "" || strings.Count(res.stderr, "\n") != 1 {
				t.Fatalf("bale %s: exit %d, want %d and one line on stderr\nstdout (%d lines):\n%.300s\nstderr:\n%s",
					strings.Join(tt.args, " "), res.code, exitUsage, strings.Count(res.stdout, "\n"), res.stdout, res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("bale %s: %q does not say %q", strings.Join(tt.args, " "), res.stderr, w)
				}
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused command wrote %s (%v)", out, err)
	}
}

// TestOptionsAfterArguments: options written after the arguments are read as if written
// before them, with their values, as docker and kubectl read them; after "--" every word is
// an argument.
func TestOptionsAfterArguments(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "b.tar.zst")
	mustBale(t, "pack", "registry:"+sampleRegistry, "-o", out, "-q", "--created", "2026-01-02T15:04:05Z")
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("pack SOURCE -o OUT wrote no %s: %v", out, err)
	}
	if res := mustBale(t, "list", out, "--json"); !strings.HasPrefix(res.stdout, "{") {
		t.Errorf("list BUNDLE --json printed no JSON:\n%.300s", res.stdout)
	}
	// bale serve BUNDLE --addr HOST:PORT listens where --addr says.
	reg := startServeArgs(t, "http", "serve", out, "--addr", "127.0.0.1:0")
	resp, err := http.Get("http://" + reg.Addr + "/v2/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("bale serve B --addr: GET /v2/: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// "--" ends the options: -q is then a path (that does not exist), not an option.
	res := bale(t, "list", "--", "-q")
	if res.code == 0 || res.code == exitUsage || !strings.Contains(res.stderr, "-q") {
		t.Errorf("list -- -q: exit %d\n%s", res.code, res.stderr)
	}
}

// TestPlatformNormalized: --platform is read as docker and containerd read it: any case, the
// architectures' other names (x86_64, aarch64), arm64's default variant v8; each spelling
// gives the same bundle as the canonical one.
func TestPlatformNormalized(t *testing.T) {
	work := t.TempDir()
	list := filepath.Join(work, "images.list")
	if err := os.WriteFile(list, []byte("multiarch/pause:3.2\nmultiarch/coredns:1.6.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idOf := func(platform string) string {
		t.Helper()
		out := filepath.Join(work, strings.NewReplacer("/", "_").Replace(platform)+".tar.zst")
		res := bale(t, "pack", "-q", "--images", list, "--platform", platform, "--platform", "linux/arm/v7", "-o", out, "registry:"+sampleRegistry)
		if res.code != 0 {
			t.Errorf("pack --platform %s: exit %d\n%s", platform, res.code, res.stderr)
			return ""
		}
		return bundleInfoOf(t, out).ID
	}
	for canonical, others := range map[string][]string{
		"linux/amd64": {"Linux/AMD64", "linux/x86_64", "LINUX/amd64/v1"},
		"linux/arm64": {"linux/arm64/v8", "linux/aarch64", "Linux/ARM64/8"},
	} {
		want := idOf(canonical)
		for _, p := range others {
			if got := idOf(p); got != want || want == "" {
				t.Errorf("--platform %s gives bundle %s, --platform %s %s", p, got, canonical, want)
			}
		}
	}
}

// TestQuietRemovals: unpack -q of a patch that removes tags prints no line per removed tag,
// only the count in its summary; without -q each removed tag is named.
func TestQuietRemovals(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	full, patch := filepath.Join(work, "a.tar.zst"), filepath.Join(work, "a-b.tar.zst")
	mustBale(t, "pack", "-q", "-o", full, r.root[0])
	mustBale(t, "pack", "-q", "--base", full, "--remove-absent-tags", "-o", patch, r.root[1])
	quiet, loud := filepath.Join(work, "q"), filepath.Join(work, "l")
	for _, x := range []string{quiet, loud} {
		mustBale(t, "unpack", "-q", "--to", "registry:"+x, full)
	}
	res := mustBale(t, "unpack", "-q", "--to", "registry:"+quiet, patch)
	if strings.Contains(res.stderr, "removed tag") || strings.Count(res.stderr, "\n") != 1 || !strings.Contains(res.stderr, "1 tag(s) removed") {
		t.Errorf("unpack -q of a patch removing rel/old:v1 printed:\n%s", res.stderr)
	}
	if res := mustBale(t, "unpack", "--to", "registry:"+loud, patch); !strings.Contains(res.stderr, "removed tag rel/old:v1\n") {
		t.Errorf("unpack of a patch removing rel/old:v1 printed:\n%s", res.stderr)
	}
}

// TestListNamesMissingVolume: bale list of a volume set reads only the catalog in the first
// volume, and still names a data volume that is missing or cut short (README: list names a
// missing or damaged volume before doing any work).
func TestListNamesMissingVolume(t *testing.T) {
	root := bigStore(t, 2, 300<<10)
	out := filepath.Join(t.TempDir(), "release.tar.zst")
	mustBale(t, "pack", "-q", "--volume-size", "256K", "-o", out, "registry:"+root)
	mustBale(t, "list", out)
	vol := out + ".002"
	if err := os.Rename(vol, vol+".away"); err != nil {
		t.Fatal(err)
	}
	if res := bale(t, "list", out); res.code != exitInvalid || !strings.Contains(res.stderr, filepath.Base(vol)+", is missing") {
		t.Errorf("list with %s missing: exit %d\n%s", vol, res.code, res.stderr)
	}
	if err := os.Truncate(vol+".away", 1000); err != nil {
		t.Fatal(err)
	}
	os.Rename(vol+".away", vol)
	if res := bale(t, "list", out+".001"); res.code != exitInvalid || !strings.Contains(res.stderr, filepath.Base(vol)+", is 1000 bytes") {
		t.Errorf("list with %s cut short: exit %d\n%s", vol, res.code, res.stderr)
	}
}
