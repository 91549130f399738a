package layout_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// syncYAML is a skopeo sync --src yaml file as skopeo's documentation writes them.
const syncYAML = `docker.io:
  images:
    busybox: []
    redis:
      - "1.0"
      - "2.0"
      - "sha256:0000000000000000000000000000000011111111111111111111111111111111"
  images-by-tag-regex:
    nginx: ^1\.13\.[12]-alpine-perl$
  credentials:
    username: john
    password: this is a secret
  tls-verify: true
  cert-dir: /home/john/certs
quay.io:
  tls-verify: false
  images:
    coreos/etcd:
      - latest
`

func TestParseSyncYAML(t *testing.T) {
	if !layout.IsSyncYAML([]byte(syncYAML)) {
		t.Fatal("IsSyncYAML(skopeo's example) = false")
	}
	for _, text := range []string{"busybox:1.36\nredis:7\n", "# comment\nquay.io/coreos/etcd:latest\n", "a: b\n", ""} {
		if layout.IsSyncYAML([]byte(text)) {
			t.Errorf("IsSyncYAML(%q) = true", text)
		}
	}
	s, err := layout.ParseSyncYAML([]byte(syncYAML), "sync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"redis:1.0", "redis:2.0", "redis@sha256:0000000000000000000000000000000011111111111111111111111111111111", "coreos/etcd:latest"}
	if got := refStrings(s.Refs); !reflect.DeepEqual(got, want) {
		t.Errorf("refs = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(s.AllTags, []string{"busybox"}) {
		t.Errorf("all tags of %q, want busybox", s.AllTags)
	}
	if len(s.Patterns) != 1 || s.Patterns[0].Repo != "nginx" || !s.Patterns[0].Regexp.MatchString("1.13.2-alpine-perl") {
		t.Errorf("patterns = %+v", s.Patterns)
	}

	tests := []struct{ name, doc, mention string }{
		{"bad repo", "r.io:\n  images:\n    UPPER: [v1]\n", "UPPER"},
		{"bad tag", "r.io:\n  images:\n    app: [\"a b\"]\n", "app"},
		{"bad digest", "r.io:\n  images:\n    app: [\"sha256:12\"]\n", "sha256:12"},
		{"bad regex", "r.io:\n  images-by-tag-regex:\n    app: \"(\"\n", "images-by-tag-regex"},
		{"semver", "r.io:\n  images-by-semver:\n    app: \">= 1.0\"\n", "images-by-semver"},
		{"not a mapping of registries", "r.io:\n  images: [a, b]\n", "sync YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := layout.ParseSyncYAML([]byte(tt.doc), "x.yaml")
			if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), tt.mention) || !strings.Contains(err.Error(), "x.yaml") {
				t.Errorf("err = %v, want ErrInvalid naming x.yaml and %q", err, tt.mention)
			}
		})
	}
}

// tagSource is a Source of tags only; with lister it is also a TagLister.
type tagSource struct {
	refs   []layout.Ref
	lister bool
	asked  []string // repos asked by Tags
	listed int      // calls of Refs
}

func (s *tagSource) Refs() ([]layout.Ref, error) { s.listed++; return s.refs, nil }
func (s *tagSource) Resolve(layout.Ref) (digest.Digest, error) {
	return "", layout.ErrNotFound
}
func (s *tagSource) ReadManifest(string, digest.Digest) (*layout.Manifest, error) {
	return nil, layout.ErrNotFound
}
func (s *tagSource) OpenBlob(string, layout.Descriptor) (io.ReadCloser, error) {
	return nil, layout.ErrNotFound
}

type listerSource struct{ *tagSource }

func (s listerSource) Tags(repo string) ([]string, error) {
	s.asked = append(s.asked, repo)
	var out []string
	for _, r := range s.refs {
		if r.Repo == repo {
			out = append(out, r.Tag)
		}
	}
	return out, nil
}

func TestSelectionExpand(t *testing.T) {
	s, err := layout.ParseSyncYAML([]byte(syncYAML), "sync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := &tagSource{refs: []layout.Ref{
		{Repo: "busybox", Tag: "1.36"}, {Repo: "busybox", Tag: "1.35"}, {Repo: "nginx", Tag: "1.13.1-alpine-perl"},
		{Repo: "nginx", Tag: "1.13.3-alpine-perl"}, {Repo: "nginx", Tag: "1.13.2-alpine-perl"}, {Repo: "redis", Tag: "9"},
	}}
	want := []string{"redis:1.0", "redis:2.0", "redis@sha256:0000000000000000000000000000000011111111111111111111111111111111",
		"coreos/etcd:latest", "busybox:1.35", "busybox:1.36", "nginx:1.13.1-alpine-perl", "nginx:1.13.2-alpine-perl"}
	got, err := s.Expand(src)
	if err != nil || !reflect.DeepEqual(refStrings(got), want) {
		t.Fatalf("Expand = %q, %v\nwant %q", refStrings(got), err, want)
	}
	if src.listed != 1 {
		t.Errorf("Refs called %d times, want once", src.listed)
	}
	// A TagLister is asked per repository, never for every repository.
	ls := listerSource{&tagSource{refs: src.refs}}
	if got, err := s.Expand(ls); err != nil || !reflect.DeepEqual(refStrings(got), want) || ls.listed != 0 {
		t.Errorf("Expand with a TagLister = %q, %v (Refs called %d times)", refStrings(got), err, ls.listed)
	}
	// A repository with no tag, or no matching tag, is an error naming it.
	_, err = s.Expand(&tagSource{refs: []layout.Ref{{Repo: "busybox", Tag: "1"}}})
	if !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("Expand without nginx tags: %v", err)
	}
	// Only refs: the source is not asked.
	only := &layout.Selection{Refs: []layout.Ref{{Repo: "a", Tag: "1"}}}
	if got, err := only.Expand(nil); err != nil || len(got) != 1 {
		t.Errorf("Expand of refs only: %v %v", got, err)
	}
}

// TestReadImageSelection: text lists and skopeo sync files together; in a directory, a YAML
// file that is not a skopeo sync file is not an image list.
func TestReadImageSelection(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.list"), []byte("redis:1.0\nx:1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(syncYAML), 0o644)
	os.WriteFile(filepath.Join(dir, "values.yaml"), []byte("replicas: 3\n"), 0o644)
	s, err := layout.ReadImageSelection([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"redis:1.0", "x:1", "redis:2.0", "redis@sha256:0000000000000000000000000000000011111111111111111111111111111111", "coreos/etcd:latest"}
	if got := refStrings(s.Refs); !reflect.DeepEqual(got, want) || len(s.AllTags) != 1 || len(s.Patterns) != 1 {
		t.Errorf("refs %q (want %q), all tags %q, patterns %d", got, want, s.AllTags, len(s.Patterns))
	}
	if _, err := layout.ReadImageLists([]string{dir}); !errors.Is(err, layout.ErrUnsupported) {
		t.Errorf("ReadImageLists of a selection with patterns: %v, want ErrUnsupported", err)
	}
	// Named on its own, a YAML file is read as a text list unless it is a skopeo sync file.
	if _, err := layout.ReadImageSelection([]string{filepath.Join(dir, "values.yaml")}); err == nil {
		t.Error("values.yaml read as an image list without an error")
	}
}
