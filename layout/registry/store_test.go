package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func descOf(mt string, b []byte) layout.Descriptor {
	return layout.Descriptor{MediaType: mt, Digest: sha(string(b)), Size: int64(len(b))}
}

func putBlob(t *testing.T, s *Store, mt string, b []byte) layout.Descriptor {
	t.Helper()
	d := descOf(mt, b)
	if err := s.WriteBlob(d, bytes.NewReader(b)); err != nil {
		t.Fatalf("WriteBlob(%s): %v", d.Digest, err)
	}
	return d
}

func descJSON(d layout.Descriptor) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, d.MediaType, d.Digest, d.Size)
}

// testImage stores a config, two layers and a Docker schema2 manifest naming them, and
// returns the parsed manifest.
func testImage(t *testing.T, s *Store, name string) *layout.Image {
	t.Helper()
	cfg := putBlob(t, s, layout.MediaTypeDockerConfig, []byte(`{"architecture":"amd64","os":"linux","name":"`+name+`"}`))
	l1 := putBlob(t, s, "application/vnd.docker.image.rootfs.diff.tar.gzip", []byte("layer 1 of "+name))
	l2 := putBlob(t, s, "application/vnd.docker.image.rootfs.diff.tar.gzip", []byte("shared layer"))
	raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerManifest + `","config":` + descJSON(cfg) +
		`,"layers":[` + descJSON(l1) + `,` + descJSON(l2) + `]}`)
	putBlob(t, s, layout.MediaTypeDockerManifest, raw)
	m, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &layout.Image{Manifest: m}
}

// testIndex stores two images and an OCI index of them.
func testIndex(t *testing.T, s *Store) *layout.Image {
	t.Helper()
	a, b := testImage(t, s, "amd64"), testImage(t, s, "arm64")
	raw := []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIIndex + `","manifests":[` +
		descJSON(a.Manifest.Descriptor()) + `,` + descJSON(b.Manifest.Descriptor()) + `]}`)
	putBlob(t, s, layout.MediaTypeOCIIndex, raw)
	m, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &layout.Image{Manifest: m, Children: []*layout.Manifest{a.Manifest, b.Manifest}}
}

func mustPath(t *testing.T, s *Store, spec PathSpec) string {
	t.Helper()
	p, err := s.Path(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tempFiles lists bale's temporary files left anywhere under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".bale-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestCreateOpenIs(t *testing.T) {
	root := t.TempDir()
	if Is(root) {
		t.Error("Is(empty dir) = true")
	}
	if _, err := Open(root); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("Open(empty dir) = %v, want ErrNotFound", err)
	}
	s, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"docker/registry/v2/blobs", "docker/registry/v2/repositories"} {
		if fi, err := os.Stat(filepath.Join(root, sub)); err != nil || !fi.IsDir() {
			t.Errorf("Create did not make %s: %v", sub, err)
		}
	}
	if !Is(root) {
		t.Error("Is after Create = false")
	}
	if o, err := Open(root); err != nil || o.Root() != root || s.Root() != root {
		t.Errorf("Open = %v, %v", o, err)
	}
	if repos, err := s.Repos(); err != nil || len(repos) != 0 {
		t.Errorf("Repos of an empty store = %v, %v", repos, err)
	}
}

func TestWriteBlob(t *testing.T) {
	content := []byte("blob content")
	d := descOf("", content)
	tests := []struct {
		name string
		in   []byte
		d    layout.Descriptor
		want error // nil: stored
	}{
		{"good", content, d, nil},
		{"empty blob", []byte{}, descOf("", nil), nil},
		{"wrong bytes", []byte("blob cOntent"), d, layout.ErrDigestMismatch},
		{"short", content[:4], d, layout.ErrDigestMismatch},
		{"long", append(append([]byte{}, content...), 'x'), d, layout.ErrDigestMismatch},
		{"size says less", content, layout.Descriptor{Digest: d.Digest, Size: d.Size - 1}, layout.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			err := s.WriteBlob(tt.d, bytes.NewReader(tt.in))
			p := mustPath(t, s, BlobData{Digest: tt.d.Digest})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("WriteBlob: %v", err)
				}
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, tt.in) {
					t.Errorf("data file = %q, %v; want %q", got, err, tt.in)
				}
				if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o444 {
					t.Errorf("data file mode %v, want 0444", fi.Mode().Perm())
				}
				if !s.StatBlob(tt.d) {
					t.Error("StatBlob = false")
				}
				if err := s.VerifyBlob(tt.d); err != nil {
					t.Errorf("VerifyBlob: %v", err)
				}
				rc, err := s.OpenBlob("any", tt.d)
				if err != nil {
					t.Fatalf("OpenBlob: %v", err)
				}
				got, _ = io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, tt.in) {
					t.Errorf("OpenBlob read %q", got)
				}
			} else {
				if !errors.Is(err, tt.want) {
					t.Fatalf("WriteBlob = %v, want %v", err, tt.want)
				}
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("data file exists after a failed write: %v", err)
				}
				if ents, err := os.ReadDir(filepath.Dir(p)); err == nil && len(ents) != 0 {
					t.Errorf("blob dir holds %v after a failed write", ents)
				}
				if s.StatBlob(tt.d) {
					t.Error("StatBlob = true after a failed write")
				}
				if err := s.VerifyBlob(tt.d); !errors.Is(err, layout.ErrNotFound) {
					t.Errorf("VerifyBlob = %v, want ErrNotFound", err)
				}
			}
			if tmp := tempFiles(t, s.Root()); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
	t.Run("invalid digest", func(t *testing.T) {
		s := newStore(t)
		for _, bd := range []digest.Digest{"sha256:../../x", "", digest.Digest("sha256:" + strings.ToUpper(d.Digest.Encoded()))} {
			if err := s.WriteBlob(layout.Descriptor{Digest: bd, Size: 1}, strings.NewReader("x")); err == nil {
				t.Errorf("WriteBlob(%q) succeeded", bd)
			}
		}
		ents, _ := os.ReadDir(mustPath(t, s, Blobs{}))
		if len(ents) != 0 {
			t.Errorf("blobs/ holds %v", ents)
		}
	})
	t.Run("corrupt data file", func(t *testing.T) {
		s := newStore(t)
		dd := putBlob(t, s, "", content)
		p := mustPath(t, s, BlobData{Digest: dd.Digest})
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, []byte("blob c0ntent"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !s.StatBlob(dd) {
			t.Error("StatBlob checks only the size, want true")
		}
		if err := s.VerifyBlob(dd); !errors.Is(err, layout.ErrDigestMismatch) {
			t.Errorf("VerifyBlob = %v, want ErrDigestMismatch", err)
		}
	})
}

func TestWriteLinkBytes(t *testing.T) {
	s := newStore(t)
	d := sha("manifest")
	specs := []PathSpec{
		LayerLink{Repo: "a/b", Digest: d},
		RevisionLink{Repo: "a/b", Digest: d},
		TagIndex{Repo: "a/b", Tag: "v1", Digest: d},
		TagCurrent{Repo: "a/b", Tag: "v1"},
	}
	for _, spec := range specs {
		if err := s.WriteLink(spec, d); err != nil {
			t.Fatalf("WriteLink(%#v): %v", spec, err)
		}
		b, err := os.ReadFile(mustPath(t, s, spec))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 71 || string(b) != string(d) || bytes.ContainsAny(b, "\r\n ") {
			t.Errorf("link %#v holds %q (%d bytes), want exactly %q (71 bytes)", spec, b, len(b), d)
		}
		if got, err := s.ReadLink(spec); err != nil || got != d {
			t.Errorf("ReadLink(%#v) = %q, %v", spec, got, err)
		}
		if !s.HasLink(spec) {
			t.Errorf("HasLink(%#v) = false", spec)
		}
	}
	// Rewriting the same digest is a no-op; a tag's current link can move.
	p := mustPath(t, s, TagCurrent{Repo: "a/b", Tag: "v1"})
	before, _ := os.Stat(p)
	if err := s.WriteLink(TagCurrent{Repo: "a/b", Tag: "v1"}, d); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(p); !os.SameFile(before, after) {
		t.Error("rewriting an identical link replaced the file")
	}
	d2 := sha("other manifest")
	if err := s.WriteLink(TagCurrent{Repo: "a/b", Tag: "v1"}, d2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ReadLink(TagCurrent{Repo: "a/b", Tag: "v1"}); got != d2 {
		t.Errorf("moved tag reads %s, want %s", got, d2)
	}
	// Invalid target digests are refused.
	for _, bad := range []digest.Digest{"", "sha256:x", digest.Digest(string(d) + "\n")} {
		if err := s.WriteLink(TagCurrent{Repo: "a/b", Tag: "v2"}, bad); err == nil {
			t.Errorf("WriteLink(%q) succeeded", bad)
		}
	}
	if tmp := tempFiles(t, s.Root()); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestReadLinkRefuses(t *testing.T) {
	d, other := sha("target"), sha("other")
	tests := []struct {
		name    string
		spec    PathSpec
		content string // "" with symlink set: a symlink
		symlink bool
		want    error
	}{
		{"trailing newline", LayerLink{Repo: "r", Digest: d}, string(d) + "\n", false, layout.ErrInvalid},
		{"trailing newline in tag", TagCurrent{Repo: "r", Tag: "t"}, string(d) + "\n", false, layout.ErrInvalid},
		{"trailing CRLF", RevisionLink{Repo: "r", Digest: d}, string(d) + "\r\n", false, layout.ErrInvalid},
		{"leading space", RevisionLink{Repo: "r", Digest: d}, " " + string(d), false, layout.ErrInvalid},
		{"content differs from path (layer)", LayerLink{Repo: "r", Digest: d}, string(other), false, layout.ErrInvalid},
		{"content differs from path (revision)", RevisionLink{Repo: "r", Digest: d}, string(other), false, layout.ErrInvalid},
		{"content differs from path (tag index)", TagIndex{Repo: "r", Tag: "t", Digest: d}, string(other), false, layout.ErrInvalid},
		{"uppercase", TagCurrent{Repo: "r", Tag: "t"}, "sha256:" + strings.ToUpper(d.Encoded()), false, layout.ErrInvalid},
		{"empty", TagCurrent{Repo: "r", Tag: "t"}, "", false, layout.ErrInvalid},
		{"huge", TagCurrent{Repo: "r", Tag: "t"}, string(d) + strings.Repeat(" ", 1000), false, layout.ErrInvalid},
		{"symlink", TagCurrent{Repo: "r", Tag: "t"}, "", true, layout.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := mustPath(t, s, tt.spec)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.symlink {
				real := filepath.Join(s.Root(), "elsewhere")
				os.WriteFile(real, []byte(d), 0o644)
				if err := os.Symlink(real, p); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReadLink(tt.spec)
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadLink = %q, %v; want %v", got, err, tt.want)
			}
			if s.HasLink(tt.spec) {
				t.Error("HasLink = true")
			}
		})
	}
	s := newStore(t)
	if _, err := s.ReadLink(TagCurrent{Repo: "r", Tag: "missing"}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("missing link: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadLink(TagCurrent{Repo: "R", Tag: "t"}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("invalid repo: %v, want ErrInvalid", err)
	}
}

func TestTagWritesIndexThenCurrent(t *testing.T) {
	s := newStore(t)
	d1, d2 := sha("m1"), sha("m2")
	if err := s.Tag("a/b", "v1", d1); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("a/b", "v1", d2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadLink(TagCurrent{Repo: "a/b", Tag: "v1"}); err != nil || got != d2 {
		t.Errorf("current = %s, %v; want %s", got, err, d2)
	}
	for _, d := range []digest.Digest{d1, d2} {
		if !s.HasLink(TagIndex{Repo: "a/b", Tag: "v1", Digest: d}) {
			t.Errorf("no index entry for %s", d)
		}
	}

	// Make the current link impossible to write: the index entry must be there already.
	cur := mustPath(t, s, TagCurrent{Repo: "a/b", Tag: "v2"})
	if err := os.MkdirAll(filepath.Dir(filepath.Dir(cur)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Dir(cur), []byte("not a dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("a/b", "v2", d1); err == nil {
		t.Fatal("Tag succeeded with an unwritable current link")
	}
	if !s.HasLink(TagIndex{Repo: "a/b", Tag: "v2", Digest: d1}) {
		t.Error("the index entry was not written before the current link")
	}
	if err := s.Tag("a/b", "bad/tag", d1); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("Tag with an invalid tag = %v", err)
	}
}

func TestReposTagsRefs(t *testing.T) {
	s := newStore(t)
	img := testImage(t, s, "x")
	d := img.Digest()
	for _, repo := range []string{"a/b", "a/b/c", "x", "library/nginx", "z/0y"} {
		if err := s.LinkImage(repo, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range []string{"v2", "v1", "latest", "V0", "1.0_rc-1"} {
		if err := s.Tag("a/b", tag, d); err != nil {
			t.Fatal(err)
		}
	}
	s.Tag("a/b/c", "t", d)
	s.Tag("x", "t", d)
	// A repository holding only _layers counts; one holding only _uploads does not.
	if err := s.EnsureRepo("only/layers"); err != nil {
		t.Fatal(err)
	}
	reposDir := mustPath(t, s, Repositories{})
	for _, dir := range []string{"uploads/_uploads/0b6c7f0a", "plain/dir", "Bad/_manifests/tags/t/current", "a/b/_manifests/tags/notag/index", "a/b/_manifests/tags/.hidden/current"} {
		if err := os.MkdirAll(filepath.Join(reposDir, filepath.FromSlash(dir)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(reposDir, "Bad/_manifests/tags/t/current/link"), []byte(d), 0o644)
	os.WriteFile(filepath.Join(reposDir, "a/b/_manifests/tags/.hidden/current/link"), []byte(d), 0o644)

	repos, err := s.Repos()
	if err != nil {
		t.Fatal(err)
	}
	wantRepos := []string{"Bad", "a/b", "a/b/c", "library/nginx", "only/layers", "x", "z/0y"}
	if !reflect.DeepEqual(repos, wantRepos) {
		t.Errorf("Repos() = %q, want %q", repos, wantRepos)
	}
	tags, err := s.Tags("a/b")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1.0_rc-1", "V0", "latest", "v1", "v2"}; !reflect.DeepEqual(tags, want) {
		t.Errorf("Tags(a/b) = %q, want %q", tags, want)
	}
	if tags, err := s.Tags("library/nginx"); err != nil || len(tags) != 0 {
		t.Errorf("Tags(library/nginx) = %q, %v; want none", tags, err)
	}
	if tags, err := s.Tags("no/such"); err != nil || len(tags) != 0 {
		t.Errorf("Tags(no/such) = %q, %v; want none", tags, err)
	}
	refs, err := s.Refs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.String())
	}
	want := []string{"a/b:1.0_rc-1", "a/b:V0", "a/b:latest", "a/b:v1", "a/b:v2", "a/b/c:t", "x:t"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %q, want %q", got, want)
	}
}

func TestResolve(t *testing.T) {
	s := newStore(t)
	img := testImage(t, s, "r")
	d := img.Digest()
	if err := s.LinkImage("a/b", img); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("a/b", "v1", d); err != nil {
		t.Fatal(err)
	}
	// Registry 2.8 also finds a manifest through a _layers link.
	if err := s.WriteLink(LayerLink{Repo: "old", Digest: d}, d); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  layout.Ref
		want error
	}{
		{layout.Ref{Repo: "a/b", Tag: "v1"}, nil},
		{layout.Ref{Repo: "a/b", Digest: d}, nil},
		{layout.Ref{Repo: "old", Digest: d}, nil},
		{layout.Ref{Repo: "a/b", Tag: "v2"}, layout.ErrNotFound},
		{layout.Ref{Repo: "a", Tag: "v1"}, layout.ErrNotFound},
		{layout.Ref{Repo: "a/b/c", Digest: d}, layout.ErrNotFound},
		{layout.Ref{Repo: "a/b", Digest: sha("unknown")}, layout.ErrNotFound},
	}
	for _, tt := range tests {
		got, err := s.Resolve(tt.ref)
		if tt.want == nil && (err != nil || got != d) {
			t.Errorf("Resolve(%s) = %s, %v; want %s", tt.ref, got, err, d)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Resolve(%s) = %s, %v; want %v", tt.ref, got, err, tt.want)
		}
	}
}

func TestReadManifest(t *testing.T) {
	s := newStore(t)
	idx := testIndex(t, s)
	if err := s.LinkImage("multi", idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests() {
		got, err := s.ReadManifest("multi", m.Digest)
		if err != nil {
			t.Fatalf("ReadManifest(%s): %v", m.Digest, err)
		}
		if !bytes.Equal(got.Raw, m.Raw) || got.MediaType != m.MediaType {
			t.Errorf("ReadManifest(%s) = %s", m.Digest, got.MediaType)
		}
	}
	img, err := layout.LoadImage(s, "multi", idx.Digest())
	if err != nil || len(img.Children) != 2 {
		t.Fatalf("LoadImage = %v, %v", img, err)
	}

	// The blob exists, but "other" does not link it.
	if err := s.EnsureRepo("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadManifest("other", idx.Digest()); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("unlinked manifest: %v, want ErrNotFound", err)
	}
	// Linked, but the blob data is missing.
	missing := sha("missing manifest")
	s.WriteLink(RevisionLink{Repo: "multi", Digest: missing}, missing)
	if _, err := s.ReadManifest("multi", missing); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("missing data: %v, want ErrNotFound", err)
	}
	// Linked, but the data does not hash to its digest.
	child := idx.Children[0]
	p := mustPath(t, s, BlobData{Digest: child.Digest})
	os.Chmod(p, 0o644)
	os.WriteFile(p, bytes.Replace(child.Raw, []byte("schemaVersion"), []byte("schemaVersioN"), 1), 0o644)
	if _, err := s.ReadManifest("multi", child.Digest); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("corrupt manifest: %v, want ErrDigestMismatch", err)
	}
	// Linked blob that is not a manifest.
	cfg := child.Config.Digest
	s.WriteLink(RevisionLink{Repo: "multi", Digest: cfg}, cfg)
	if _, err := s.ReadManifest("multi", cfg); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("config read as a manifest: %v, want ErrInvalid", err)
	}
	if _, err := s.ReadManifest("multi", "sha256:../../../x"); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("invalid digest: %v, want ErrInvalid", err)
	}
}

func TestSymlinkedBlobRefused(t *testing.T) {
	s := newStore(t)
	img := testImage(t, s, "sym")
	if err := s.LinkImage("r", img); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	for _, d := range append(img.Blobs(), img.Manifest.Descriptor()) {
		p := mustPath(t, s, BlobData{Digest: d.Digest})
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Same content, but reached through a symlink.
		target := outside + d.Digest.Encoded()
		if err := os.WriteFile(target, b, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range img.Blobs() {
		if rc, err := s.OpenBlob("r", d); !errors.Is(err, layout.ErrInvalid) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("OpenBlob(symlink) = %v, want ErrInvalid", err)
		}
		if s.StatBlob(d) {
			t.Errorf("StatBlob(symlink) = true")
		}
		if err := s.VerifyBlob(d); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("VerifyBlob(symlink) = %v, want ErrInvalid", err)
		}
	}
	if _, err := s.ReadManifest("r", img.Digest()); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("ReadManifest(symlink) = %v, want ErrInvalid", err)
	}
	// A directory in place of the data file is refused too.
	dd := descOf("", []byte("dir"))
	os.MkdirAll(mustPath(t, s, BlobData{Digest: dd.Digest}), 0o755)
	if _, err := s.OpenBlob("r", dd); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("OpenBlob(dir) = %v, want ErrInvalid", err)
	}
}

func TestLinkImageAndCheckLinks(t *testing.T) {
	s := newStore(t)
	idx := testIndex(t, s)
	if errs := CheckLinks(s, "multi", "", idx); len(errs) != len(idx.Blobs())+len(idx.Manifests()) {
		t.Errorf("CheckLinks before LinkImage reports %d problems, want %d", len(errs), len(idx.Blobs())+len(idx.Manifests()))
	} else if !errors.Is(errs[0], layout.ErrNotFound) {
		t.Errorf("CheckLinks error %v is not ErrNotFound", errs[0])
	}
	if err := s.LinkImage("multi", idx); err != nil {
		t.Fatal(err)
	}
	if errs := CheckLinks(s, "multi", "", idx); len(errs) != 0 {
		t.Errorf("CheckLinks after LinkImage: %v", errs)
	}
	for _, b := range idx.Blobs() {
		if !s.HasLink(LayerLink{Repo: "multi", Digest: b.Digest}) {
			t.Errorf("no _layers link for %s", b.Digest)
		}
		if s.HasLink(RevisionLink{Repo: "multi", Digest: b.Digest}) {
			t.Errorf("revision link for blob %s", b.Digest)
		}
	}
	for _, m := range idx.Manifests() {
		if !s.HasLink(RevisionLink{Repo: "multi", Digest: m.Digest}) {
			t.Errorf("no revision link for manifest %s", m.Digest)
		}
	}
	// The shared layer is linked once; 2 configs + 2 own layers + 1 shared = 5.
	ents, err := os.ReadDir(filepath.Dir(filepath.Dir(mustPath(t, s, LayerLink{Repo: "multi", Digest: sha("x")}))))
	if err != nil || len(ents) != 5 {
		t.Errorf("_layers/sha256 holds %d entries, %v; want 5", len(ents), err)
	}
}

// memSource is a Source whose blobs are not files, so PutImage must copy.
type memSource struct{ blobs map[digest.Digest][]byte }

func (m memSource) Refs() ([]layout.Ref, error)               { return nil, nil }
func (m memSource) Resolve(layout.Ref) (digest.Digest, error) { return "", layout.ErrNotFound }
func (m memSource) ReadManifest(_ string, d digest.Digest) (*layout.Manifest, error) {
	return layout.ParseManifest(m.blobs[d])
}
func (m memSource) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	b, ok := m.blobs[d.Digest]
	if !ok {
		return nil, layout.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestPutImage(t *testing.T) {
	src := newStore(t)
	idx := testIndex(t, src)
	ref := layout.Ref{Repo: "mirror/multi", Tag: "v1"}

	t.Run("hard links from a store", func(t *testing.T) {
		dst, err := Create(filepath.Join(filepath.Dir(src.Root()), "dst-link"))
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.PutImage(ref, idx, src); err != nil {
			t.Fatal(err)
		}
		if dst.Copied != 0 {
			t.Errorf("Copied = %d, want 0 (same file system)", dst.Copied)
		}
		for _, d := range append(idx.Blobs(), idx.Manifest.Descriptor()) {
			a, _ := os.Stat(mustPath(t, src, BlobData{Digest: d.Digest}))
			b, err := os.Stat(mustPath(t, dst, BlobData{Digest: d.Digest}))
			if err != nil || !os.SameFile(a, b) {
				t.Errorf("blob %s is not a hard link of the source: %v", d.Digest, err)
			}
		}
		if got, err := dst.Resolve(ref); err != nil || got != idx.Digest() {
			t.Errorf("Resolve = %s, %v", got, err)
		}
		if errs := CheckLinks(dst, ref.Repo, ref.Tag, idx); len(errs) != 0 {
			t.Errorf("CheckLinks: %v", errs)
		}
	})
	// inMemory is every file of idx, read from src.
	inMemory := func(t *testing.T) memSource {
		mem := memSource{blobs: map[digest.Digest][]byte{}}
		for _, d := range append(idx.Blobs(), idx.Manifest.Descriptor(), idx.Children[0].Descriptor(), idx.Children[1].Descriptor()) {
			b, err := os.ReadFile(mustPath(t, src, BlobData{Digest: d.Digest}))
			if err != nil {
				t.Fatal(err)
			}
			mem.blobs[d.Digest] = b
		}
		return mem
	}
	t.Run("copies from a non-file source", func(t *testing.T) {
		mem := inMemory(t)
		dst := newStore(t)
		if err := dst.PutImage(layout.Ref{Repo: "pinned", Digest: idx.Digest()}, idx, mem); err != nil {
			t.Fatal(err)
		}
		if want := len(mem.blobs); dst.Copied != want {
			t.Errorf("Copied = %d, want %d", dst.Copied, want)
		}
		if tags, _ := dst.Tags("pinned"); len(tags) != 0 {
			t.Errorf("a digest reference made tags %v", tags)
		}
		if got, err := dst.Resolve(layout.Ref{Repo: "pinned", Digest: idx.Digest()}); err != nil || got != idx.Digest() {
			t.Errorf("Resolve = %s, %v", got, err)
		}
		// A second put finds every blob in place.
		dst.Copied = 0
		if err := dst.PutImage(ref, idx, mem); err != nil || dst.Copied != 0 {
			t.Errorf("second PutImage: Copied = %d, %v", dst.Copied, err)
		}
	})
	t.Run("concurrent puts fetch a shared blob once", func(t *testing.T) {
		mem := inMemory(t)
		counted := &countingSource{memSource: mem, opens: map[digest.Digest]int{}}
		dst := newStore(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if err := dst.PutImage(layout.Ref{Repo: fmt.Sprintf("r%d", i), Tag: "v1"}, idx, counted); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for d, n := range counted.opens {
			if n != 1 {
				t.Errorf("blob %s fetched %d times by 8 concurrent puts, want once", d, n)
			}
		}
		if len(counted.opens) != len(mem.blobs) {
			t.Errorf("%d blobs fetched, want %d", len(counted.opens), len(mem.blobs))
		}
	})
	t.Run("source blob corrupt", func(t *testing.T) {
		mem := memSource{blobs: map[digest.Digest][]byte{}}
		for _, d := range append(idx.Blobs(), idx.Manifest.Descriptor(), idx.Children[0].Descriptor(), idx.Children[1].Descriptor()) {
			mem.blobs[d.Digest] = []byte("garbage")
		}
		dst := newStore(t)
		if err := dst.PutImage(ref, idx, mem); !errors.Is(err, layout.ErrDigestMismatch) {
			t.Errorf("PutImage = %v, want ErrDigestMismatch", err)
		}
		if tags, _ := dst.Tags(ref.Repo); len(tags) != 0 {
			t.Errorf("a failed put left tags %v", tags)
		}
		if tmp := tempFiles(t, dst.Root()); len(tmp) != 0 {
			t.Errorf("temporary files left: %v", tmp)
		}
	})
}

func TestLinkBlob(t *testing.T) {
	s := newStore(t)
	content := []byte("linked")
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, content, 0o444)
	d := descOf("", content)
	if err := s.LinkBlob(d, src); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.EXDEV {
			t.Skip("temp dirs on different file systems")
		}
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, err := os.Stat(mustPath(t, s, BlobData{Digest: d.Digest}))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("LinkBlob did not hard-link: %v", err)
	}
	if err := s.LinkBlob(d, src); err != nil {
		t.Errorf("LinkBlob again: %v", err)
	}
	if p, err := s.BlobPath("x", d); err != nil || p != mustPath(t, s, BlobData{Digest: d.Digest}) {
		t.Errorf("BlobPath = %q, %v", p, err)
	}
}

// countingSource counts the OpenBlob calls of a memSource.
type countingSource struct {
	memSource
	mu    sync.Mutex
	opens map[digest.Digest]int
}

func (c *countingSource) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opens[d.Digest]++
	c.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // let the other puts arrive while this one fetches
	return c.memSource.OpenBlob(repo, d)
}
