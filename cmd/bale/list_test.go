package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/bale-project/bale/internal/listview"
)

// listLongTag is a tag of 128 characters, the longest the distribution spec allows.
var listLongTag = "v2.11.0-" + strings.Repeat("build.20240101-", 7) + strings.Repeat("x", 3) + "-linux-arm64"

// listLongRepo is a deep repository name, as a mirror of a mirror names them.
const listLongRepo = "mirror.example/platform-team/observability/kube-state-metrics-exporter"

// longNamesRegistry is a copy of testdata/sample-registry where busybox also has the tag
// listLongTag and listLongRepo holds the image of kubesphere/kube-controller-manager.
func longNamesRegistry(t *testing.T) string {
	t.Helper()
	if len(listLongTag) != 128 {
		t.Fatalf("listLongTag has %d characters", len(listLongTag))
	}
	root := filepath.Join(t.TempDir(), "reg")
	if out, err := exec.Command("cp", "-r", "../../testdata/sample-registry", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	repos := filepath.Join(root, "docker/registry/v2/repositories")
	tags := filepath.Join(repos, "busybox/_manifests/tags")
	if out, err := exec.Command("cp", "-r", filepath.Join(tags, "latest"), filepath.Join(tags, listLongTag)).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(repos, listLongRepo)), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(repos, "kubesphere/kube-controller-manager"), filepath.Join(repos, listLongRepo)).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return root
}

// listOnTerminal runs bale with a pseudo-terminal cols wide as its standard output (and
// error) and returns what it wrote, with the terminal's \r\n made \n.
func listOnTerminal(t *testing.T, cols uint16, args ...string) string {
	t.Helper()
	cmd := exec.Command(baleBin, args...)
	cmd.Env = append(os.Environ(), "COLUMNS=")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: cols})
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer f.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, f); close(done) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bale %v on a terminal: %v\n%s", args, err, out.String())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

// TestListWideAndTerminal: off a terminal `bale list` prints every column whole, as --wide
// does; on a terminal of 100 columns every line fits, the long tag and repository are cut
// in the middle with the ellipsis and the digests are short, while TYPE and SIZE stay whole;
// --wide on the terminal and --json keep everything.
func TestListWideAndTerminal(t *testing.T) {
	loc := "registry:" + longNamesRegistry(t)
	fullDigest := "sha256:0a4c4558c2fdbeebcc88c8325f0a19f42fd77e786a01cebb18943b957489997e"

	wide := mustBale(t, "list", "--wide", loc).stdout
	if piped := mustBale(t, "list", loc).stdout; piped != wide {
		t.Errorf("off a terminal, list differs from list --wide:\n%s\n--wide:\n%s", piped, wide)
	}
	for _, s := range []string{listLongTag, listLongRepo, fullDigest, "docker-list", "linux/amd64,linux/arm/v7"} {
		if !strings.Contains(wide, s) {
			t.Errorf("list --wide lacks %q:\n%s", s, wide)
		}
	}
	if strings.Contains(wide, listview.Ellipsis) || !strings.Contains(wide, "13 images") {
		t.Errorf("list --wide cut something or lost an image:\n%s", wide)
	}

	var doc listOutput
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", loc).stdout), &doc); err != nil {
		t.Fatal(err)
	}
	var tagged, repo bool
	for _, im := range doc.Images {
		tagged = tagged || im.Tag == listLongTag
		repo = repo || (im.Repo == listLongRepo && im.Digest == fullDigest)
	}
	if !tagged || !repo {
		t.Errorf("list --json lacks the long tag (%v) or the long repository (%v): %+v", tagged, repo, doc.Images)
	}

	out := listOnTerminal(t, 100, "list", loc)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 15 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.HasPrefix(lines[14], "13 images") {
		t.Fatalf("list on a terminal of 100 columns:\n%s", out)
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 100 {
			t.Errorf("line of %d runes on a terminal of 100 columns: %q", n, l)
		}
	}
	for _, s := range []string{"v2.11.0-", "ux-arm64  ", "mirror.e", "exporter  ", "sha256:0a4c4558c2fd  ", "docker-list", "oci-index", "2.5 KiB", "linux/amd64,linux"} {
		if !strings.Contains(out, s) {
			t.Errorf("list on a terminal lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, listLongTag) || strings.Contains(out, listLongRepo) || strings.Contains(out, fullDigest) || strings.Count(out, listview.Ellipsis) < 2 {
		t.Errorf("list on a terminal did not cut the long cells:\n%s", out)
	}

	if out := listOnTerminal(t, 100, "list", "--wide", loc); !strings.Contains(out, listLongTag) || !strings.Contains(out, fullDigest) || strings.Contains(out, listview.Ellipsis) {
		t.Errorf("list --wide on a terminal cut something:\n%s", out)
	}
	// A wide terminal cuts nothing but the digests.
	if out := listOnTerminal(t, 300, "list", loc); !strings.Contains(out, listLongTag) || !strings.Contains(out, listLongRepo) || strings.Contains(out, fullDigest) || strings.Contains(out, listview.Ellipsis) {
		t.Errorf("list on a terminal of 300 columns:\n%s", out)
	}
}
