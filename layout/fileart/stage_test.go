package fileart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// runOras runs the real oras in dir with a HOME of its own and returns its stdout.
func runOras(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	bin := testenv.NeedTool(t, "oras")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oras %s: %v\n%s\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// sampleTree makes a file (mode 0755) and a directory with a nested file, an empty
// directory and a relative symbolic link inside it, and returns their paths.
func sampleTree(t *testing.T) (file, dir string) {
	t.Helper()
	base := t.TempDir()
	file = filepath.Join(base, "kubeadm")
	body := bytes.Repeat([]byte("kubeadm binary \x00\x01\x02"), 5000)
	if err := os.WriteFile(file, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "osrepo")
	for p, c := range map[string]string{"Release": "Origin: site\n", "pool/main/a.deb": strings.Repeat("deb", 3000), "pool/main/b.deb": "b"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pool/main/a.deb", filepath.Join(dir, "latest.deb")); err != nil {
		t.Fatal(err)
	}
	return file, dir
}

// treeOf lists every entry below dir: its type, permission bits and content or link target.
func treeOf(t *testing.T, dir string) map[string]string {
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

func manifestOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return m
}

// TestStageOrasPull stages a file and a directory with Stage, serves the storage with
// docker-registry and pulls both with the real oras: the same bytes, the whole tree. It then
// pushes the same file and directory with oras push and compares the manifests field by
// field: they differ only in oras's created time (bale writes none, so the same bytes give
// the same manifest) and bale's mode annotation, and the directory's gzip bytes (oras keeps
// file times, bale writes them at 1970).
func TestStageOrasPull(t *testing.T) {
	testenv.NeedTool(t, "oras")
	file, dir := sampleTree(t)
	root := t.TempDir()
	ctx := context.Background()
	fref, err := Stage(ctx, root, Spec{Path: file, Name: "tools/kubeadm", Tag: "v1.28.2"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dref, err := Stage(ctx, root, Spec{Path: dir, Name: "os/debian-12", Tag: "2026.12"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fref.String() != "files/tools/kubeadm:v1.28.2" || dref.String() != "files/os/debian-12:2026.12" {
		t.Fatalf("refs %s, %s", fref, dref)
	}
	reg := testenv.StartRegistry(t, root)
	out := t.TempDir()
	runOras(t, out, "pull", "--plain-http", reg.Addr+"/"+fref.String())
	runOras(t, out, "pull", "--plain-http", reg.Addr+"/"+dref.String())
	want, _ := os.ReadFile(file)
	got, err := os.ReadFile(filepath.Join(out, "kubeadm"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("oras pull of the file: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	wantTree, gotTree := treeOf(t, dir), treeOf(t, filepath.Join(out, "osrepo"))
	for k, v := range wantTree {
		if k == "." || strings.HasPrefix(v, "dir ") {
			if !strings.HasPrefix(gotTree[k], "dir ") {
				t.Errorf("oras pull: %s is %q, want a directory", k, gotTree[k])
			}
			continue
		}
		if gotTree[k] != v && !(strings.HasPrefix(v, "file ") && strings.HasSuffix(gotTree[k], v[len(v)-64:])) {
			t.Errorf("oras pull: %s is %q, want %q", k, gotTree[k], v)
		}
	}
	if len(gotTree) != len(wantTree) {
		t.Errorf("oras pull gave %d entries, want %d:\n%v\n%v", len(gotTree), len(wantTree), gotTree, wantTree)
	}

	// The same file and directory pushed by oras itself, beside them.
	runOras(t, filepath.Dir(file), "push", "--plain-http", reg.Addr+"/oras/kubeadm:v1", "kubeadm", "osrepo")
	orasRaw := runOras(t, "", "manifest", "fetch", "--plain-http", reg.Addr+"/oras/kubeadm:v1")
	t.Logf("oras push: %s", orasRaw)
	orasM := manifestOf(t, orasRaw)
	for _, ref := range []layout.Ref{fref, dref} {
		raw := runOras(t, "", "manifest", "fetch", "--plain-http", reg.Addr+"/"+ref.String())
		t.Logf("bale %s: %s", ref, raw)
		baleM := manifestOf(t, raw)
		for _, k := range []string{"schemaVersion", "mediaType", "artifactType"} {
			if baleM[k] != orasM[k] {
				t.Errorf("%s: %s is %v, oras push writes %v", ref, k, baleM[k], orasM[k])
			}
		}
		if b, o := mustJSON(t, baleM["config"]), mustJSON(t, orasM["config"]); b != o {
			t.Errorf("%s: config %s, oras push writes %s", ref, b, o)
		}
		if ann, _ := orasM["annotations"].(map[string]any); ann["org.opencontainers.image.created"] == nil {
			t.Errorf("oras push wrote no created time: %v", orasM["annotations"])
		}
		if baleM["annotations"] != nil {
			t.Errorf("%s: manifest annotations %v, want none (no created time)", ref, baleM["annotations"])
		}
		bl := baleM["layers"].([]any)
		ol := orasM["layers"].([]any)
		if len(bl) != 1 || len(ol) != 2 {
			t.Fatalf("layers: bale %d, oras %d", len(bl), len(ol))
		}
		b := bl[0].(map[string]any)
		o := ol[0].(map[string]any)
		if ref == dref {
			o = ol[1].(map[string]any)
		}
		bann := b["annotations"].(map[string]any)
		oann := o["annotations"].(map[string]any)
		if b["mediaType"] != o["mediaType"] {
			t.Errorf("%s: layer media type %v, oras %v", ref, b["mediaType"], o["mediaType"])
		}
		for k, v := range oann {
			if bann[k] != v && k != AnnotationDigest {
				t.Errorf("%s: layer annotation %s=%v, oras %v", ref, k, bann[k], v)
			}
			if k == AnnotationDigest && (ref != dref || bann[k] == nil) {
				t.Errorf("%s: layer annotation %s=%v", ref, k, bann[k])
			}
		}
		wantAnn := len(oann) + 1 // bale's mode
		if len(bann) != wantAnn {
			t.Errorf("%s: layer annotations %v, want oras's %v and %s", ref, bann, oann, AnnotationMode)
		}
		if ref == fref {
			if b["digest"] != o["digest"] || b["size"] != o["size"] || bann[AnnotationMode] != "0755" {
				t.Errorf("file layer: bale %v, oras %v", b, o)
			}
		} else if bann[AnnotationMode] != FormatMode(mustStat(t, dir).Mode()) {
			t.Errorf("directory mode annotation %v", bann[AnnotationMode])
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustStat(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestStageReproducible: the same directory staged twice (in two stores) gives one manifest.
func TestStageReproducible(t *testing.T) {
	_, dir := sampleTree(t)
	var digests []string
	for range 2 {
		root := t.TempDir()
		ref, err := Stage(context.Background(), root, Spec{Path: dir}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := registry.New(root).Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
		if ref.String() != "files/osrepo:latest" {
			t.Errorf("default ref %s", ref)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two stages of one tree: %v", digests)
	}
}

// TestStageURL fetches a file from a real HTTP server on 127.0.0.1: with the right sha256 it
// is staged; with a wrong one, or a 404, nothing is written and the error names the URL and
// both digests; a missing path is named.
func TestStageURL(t *testing.T) {
	body := bytes.Repeat([]byte("helm-v3.21.4-linux-amd64 "), 4000)
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dl/helm.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	u := srv.URL + "/dl/helm.tar.gz"
	root := t.TempDir()
	ctx := context.Background()
	ref, err := Stage(ctx, root, Spec{URL: u, SHA256: hex.EncodeToString(sum[:])}, Options{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if ref.String() != "files/helm.tar.gz:latest" {
		t.Errorf("ref %s", ref)
	}
	st := registry.New(root)
	d, err := st.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.ReadManifest(ref.Repo, d)
	if err != nil {
		t.Fatal(err)
	}
	if l := Layers(ref.Repo, m); len(l) != 1 || l[0].Digest.Encoded() != hex.EncodeToString(sum[:]) || l[0].Annotations[AnnotationTitle] != "helm.tar.gz" {
		t.Errorf("layers %+v", m.Layers)
	}

	empty := t.TempDir()
	wrong := strings.Repeat("ab", 32)
	_, err = Stage(ctx, empty, Spec{URL: u, SHA256: wrong}, Options{Client: srv.Client()})
	if !errors.Is(err, layout.ErrDigestMismatch) || !strings.Contains(err.Error(), u) ||
		!strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
		t.Errorf("wrong sha256: %v", err)
	}
	_, err = Stage(ctx, empty, Spec{URL: srv.URL + "/nothing", SHA256: wrong}, Options{Client: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/nothing") {
		t.Errorf("404: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-file")
	_, err = Stage(ctx, empty, Spec{Path: missing}, Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := Stage(ctx, empty, Spec{URL: u}, Options{Client: srv.Client()}); !errors.Is(err, ErrSpec) {
		t.Errorf("URL without sha256: %v", err)
	}
	if _, err := Stage(ctx, empty, Spec{Path: "rel/path"}, Options{}); !errors.Is(err, ErrSpec) {
		t.Errorf("relative path: %v", err)
	}
	blobs := 0
	filepath.WalkDir(empty, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs++
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}
