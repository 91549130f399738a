package layout_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
)

func TestParseImageList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // Ref.String() of each ref, in order
	}{
		{"empty", "", nil},
		{"only comments and blanks", "##k8s-images\n\n   \n# nothing\n\t\n", nil},
		{"kubekey style", "##k8s-images\n" +
			"registry.cn-beijing.aliyuncs.com/kubesphereio/kube-apiserver:v1.20.6\n" +
			"kubesphere/kube-proxy:v1.20.6 # trailing comment\n" +
			"\n" +
			"##kubesphere-images\n" +
			"  docker.io/library/busybox:1.36.1  \n",
			[]string{"kubesphereio/kube-apiserver:v1.20.6", "kubesphere/kube-proxy:v1.20.6", "library/busybox:1.36.1"}},
		{"CRLF line endings", "##images\r\nnginx:1.25\r\n\r\nbusybox # c\r\nalpine@sha256:" + hexRef + "\r\n",
			[]string{"nginx:1.25", "busybox:latest", "alpine@sha256:" + hexRef}},
		{"no final newline", "a:1\nb:2", []string{"a:1", "b:2"}},
		{"duplicates dropped, first kept", "b:1\na\nb:1\nquay.io/b:1\na:latest\nlocalhost/a\na@sha256:" + hexRef + "\nb:1#again\n",
			[]string{"b:1", "a:latest", "a@sha256:" + hexRef}},
		{"tag and digest", "a:1@sha256:" + hexRef + "\n", []string{"a:1@sha256:" + hexRef}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs, err := layout.ParseImageList(strings.NewReader(tt.in), "images.list")
			if err != nil {
				t.Fatalf("ParseImageList: %v", err)
			}
			if got := refStrings(refs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("refs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseImageListReportsEveryBadLine(t *testing.T) {
	in := "##k8s-images\n" + // 1
		"nginx:1.25\n" + // 2
		"Bad/Name:1\n" + // 3
		"# comment\n" + // 4
		"x@sha256:xyz\r\n" + // 5
		"busybox\n" + // 6
		"a b c # spaces\n" // 7
	refs, err := layout.ParseImageList(strings.NewReader(in), "lists/k8s.list")
	if err == nil {
		t.Fatal("no error for three bad lines")
	}
	for _, want := range []string{"lists/k8s.list:3:", "lists/k8s.list:5:", "lists/k8s.list:7:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, notWant := range []string{":2:", ":4:", ":6:"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("error %q mentions good line %q", err, notWant)
		}
	}
	if !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("error is not ErrInvalid: %v", err)
	}
	if n := len(unwrapJoined(err)); n != 3 {
		t.Errorf("error joins %d errors, want 3", n)
	}
	if got, want := refStrings(refs), []string{"nginx:1.25", "busybox:latest"}; !reflect.DeepEqual(got, want) {
		t.Errorf("good refs = %q, want %q", got, want)
	}
}

func TestParseImageListLineTooLong(t *testing.T) {
	in := "a:1\n" + strings.Repeat("b", 2<<20) + "\n"
	_, err := layout.ParseImageList(strings.NewReader(in), "big.list")
	if err == nil || !strings.Contains(err.Error(), "big.list") {
		t.Fatalf("err = %v, want an error naming big.list", err)
	}
}

func TestReadImageLists(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lists := filepath.Join(dir, "lists")
	write("lists/b.list", "##b\nb:1\na:1\n")
	write("lists/a.txt", "a:1\nc:1\n")
	write("lists/c.yaml", "yaml:1\n")
	write("lists/README", "readme:1\n")
	write("lists/z.list.bak", "bak:1\n")
	write("lists/sub.list/inner.list", "inner:1\n") // a directory named *.list is not read
	write("lists/sub/deeper.txt", "deeper:1\n")     // not recursive
	extra := write("extra.conf", "extra:1\nc:1\n")

	refs, err := layout.ReadImageLists([]string{lists, extra})
	if err != nil {
		t.Fatalf("ReadImageLists: %v", err)
	}
	want := []string{"a:1", "c:1", "b:1", "extra:1"}
	if got := refStrings(refs); !reflect.DeepEqual(got, want) {
		t.Errorf("refs = %q, want %q", got, want)
	}

	t.Run("dir without lists", func(t *testing.T) {
		empty := filepath.Join(dir, "empty")
		write("empty/notes.md", "x:1\n")
		_, err := layout.ReadImageLists([]string{empty})
		if !errors.Is(err, layout.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("missing path", func(t *testing.T) {
		if _, err := layout.ReadImageLists([]string{filepath.Join(dir, "nope.list")}); err == nil {
			t.Error("no error for a missing list")
		}
	})
	t.Run("bad lines in two files", func(t *testing.T) {
		p1 := write("bad/1.list", "ok:1\nBAD\n")
		p2 := write("bad/2.txt", "\n\nx@sha256:1\nok:2\n")
		refs, err := layout.ReadImageLists([]string{filepath.Join(dir, "bad")})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{p1 + ":2:", p2 + ":3:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if got, want := refStrings(refs), []string{"ok:1", "ok:2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("good refs = %q, want %q", got, want)
		}
	})
}

func refStrings(refs []layout.Ref) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return out
}

// unwrapJoined flattens an errors.Join tree one level.
func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestReadImageSelectionBOMAndYAML: a list saved with a UTF-8 byte order mark reads like one
// without; a skopeo sync YAML file with a syntax error is reported as YAML, with its line,
// not read as a text list whose lines are bad references.
func TestReadImageSelectionBOMAndYAML(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, text string
		want             []string // refs, when it reads
		wantErr          []string // what the error says, when it fails
	}{
		{"BOM list", "bom.list", "\ufeffnginx:1.25\r\nbusybox:1.36\r\n", []string{"nginx:1.25", "busybox:1.36"}, nil},
		{"BOM sync YAML", "bom.yaml", "\ufeffdocker.io:\n  images:\n    nginx: [\"1.25\"]\n", []string{"nginx:1.25"}, nil},
		{"sync YAML, bad indentation", "bad.yaml", "docker.io:\n  images:\n    nginx:\n    - \"1.25\"\n   busybox: [1.36]\n",
			nil, []string{"bad.yaml", "YAML", "yaml: line 1:"}},
		{"sync YAML, a bracket left open", "open.yaml", "docker.io:\n  images:\n    nginx: [\"1.25\"\n    busybox: []\n",
			nil, []string{"open.yaml", "YAML", "yaml: line 2:"}},
		{"sync YAML with a tab", "tab.txt", "quay.io:\n\timages:\n    x: []\n", nil, []string{"tab.txt", "YAML", "yaml: line "}},
		{"YAML that names no images", "other.yml", "docker.io:\n  image:\n    nginx: [\"1.25\"]\n", nil, []string{"other.yml", "images"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := layout.ReadImageSelection([]string{write(tt.file, tt.text)})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; read %+v", sel)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "reference") || strings.Count(err.Error(), "\n") > 0 {
					t.Errorf("error reads the YAML as a list, line by line: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range sel.Refs {
				got = append(got, r.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("refs %v, want %v", got, tt.want)
			}
		})
	}
}
