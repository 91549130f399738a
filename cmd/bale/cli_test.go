package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion: bale --version names the version, the commit and the Go version.
func TestVersion(t *testing.T) {
	res := mustBale(t, "--version")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "bale version ") || !strings.HasPrefix(lines[1], "commit ") || !strings.HasPrefix(lines[2], "go1.") {
		t.Errorf("bale --version:\n%s", res.stdout)
	}
}

// TestCompletionAndManual: the completions and the manual come from the command definitions,
// so they name every command; bash completion answers through --generate-bash-completion.
func TestCompletionAndManual(t *testing.T) {
	cmds := []string{"pack", "unpack", "copy", "push", "list", "verify", "diff", "catalog", "completion"}
	gen := mustBale(t, "--generate-bash-completion").stdout
	man := mustBale(t, "completion", "man").stdout
	md := mustBale(t, "completion", "markdown").stdout
	fish := mustBale(t, "completion", "fish").stdout
	for _, c := range cmds {
		if !strings.Contains(gen, c+"\n") {
			t.Errorf("--generate-bash-completion lacks %s", c)
		}
		for name, doc := range map[string]string{"man": man, "markdown": md, "fish": fish} {
			if !strings.Contains(doc, c) || (name != "fish" && !strings.Contains(doc, "bale "+c)) {
				t.Errorf("completion %s lacks %s", name, c)
			}
		}
	}
	if !strings.HasPrefix(man, ".nh\n.TH BALE 1") || !strings.Contains(man, `PATH/<repo>:<tag>/`) || !strings.Contains(man, "harbor.site") {
		t.Errorf("man page head or an escaped <repo>:<tag> is wrong:\n%.400s", man)
	}
	if flags := mustBale(t, "push", "--dest", "--generate-bash-completion").stdout; !strings.Contains(flags, "--dest-creds") {
		t.Errorf("flag completion of push --dest: %q", flags)
	}
	for _, sh := range []string{"bash", "zsh"} {
		if out := mustBale(t, "completion", sh).stdout; !strings.Contains(out, "complete -o default") {
			t.Errorf("completion %s:\n%s", sh, out)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		script := filepath.Join(t.TempDir(), "c.bash")
		os.WriteFile(script, []byte(mustBale(t, "completion", "bash").stdout), 0o644)
		if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n of the completion script: %v\n%s", err, out)
		}
	}
	if res := bale(t, "completion", "tcsh"); res.code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", res.code)
	}
}

// TestVerifyJSON: bale verify --json prints one document, with the problems when there are.
func TestVerifyJSON(t *testing.T) {
	root := filepath.Join(t.TempDir(), "reg")
	if out, err := exec.Command("cp", "-r", "../../testdata/sample-registry", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	var doc verifyOutput
	res := mustBale(t, "verify", "--json", "registry:"+root)
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || !doc.OK || doc.Images == 0 || len(doc.Problems) != 0 {
		t.Fatalf("verify --json of the sample: %v %+v", err, doc)
	}
	// Change one byte of one layer (the largest blob).
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(root, "docker/registry/v2/blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	os.Chmod(biggest, 0o644)
	b, _ := os.ReadFile(biggest)
	b[len(b)/2] ^= 1
	os.WriteFile(biggest, b, 0o644)
	res = bale(t, "verify", "--json", "registry:"+root)
	doc = verifyOutput{}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || doc.OK || len(doc.Problems) == 0 || res.code != 4 {
		t.Fatalf("verify --json after an edit: exit %d, %v %+v", res.code, err, doc)
	}
}
