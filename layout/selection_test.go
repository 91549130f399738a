package layout_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
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

// tagSource is a Source of tags only; listerSource makes it a TagLister too.
type tagSource struct {
	refs   []layout.Ref
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
	if want := []string{"busybox", "nginx"}; !reflect.DeepEqual(ls.asked, want) {
		t.Errorf("Expand with a TagLister asked for the tags of %q, want %q", ls.asked, want)
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

// realWorldImage is image name of imagetest.RealWorld as LoadImage makes it: the top manifest
// and every child, parsed from the corpus's bytes.
func realWorldImage(t *testing.T, c *imagetest.Corpus, name string) *layout.Image {
	t.Helper()
	img := c.ByName(name)
	top, err := layout.ParseManifest(c.Blobs[img.Digest])
	if err != nil {
		t.Fatal(err)
	}
	out := &layout.Image{Manifest: top}
	for _, d := range img.Children {
		m, err := layout.ParseManifest(c.Blobs[d])
		if err != nil {
			t.Fatal(err)
		}
		out.Children = append(out.Children, m)
	}
	return out
}

// TestSelectPlatformsAttestations: of a BuildKit index, several platforms keep those images and
// the attestation manifests that name them, in index order, and leave out the other images
// and their attestations; one platform is that image, never an attestation; unknown/unknown
// is no platform to list or to pick.
func TestSelectPlatformsAttestations(t *testing.T) {
	c := imagetest.RealWorld()
	img := realWorldImage(t, c, "shapes/buildkit:multi")
	// The corpus's index: amd64, arm64, then the attestation of each (BuildKit's order).
	var amd, arm, amdAtt, armAtt digest.Digest
	for _, d := range img.Manifest.Manifests {
		switch {
		case d.Platform.Architecture == "amd64":
			amd = d.Digest
		case d.Platform.Architecture == "arm64":
			arm = d.Digest
		case d.Annotations[imagetest.AnnotationReferenceDigest] == amd.String():
			amdAtt = d.Digest
		case d.Annotations[imagetest.AnnotationReferenceDigest] == arm.String():
			armAtt = d.Digest
		}
	}
	if amd == "" || arm == "" || amdAtt == "" || armAtt == "" {
		t.Fatalf("the corpus's BuildKit index is not as expected: %s", img.Manifest.Raw)
	}
	digests := func(ms []*layout.Manifest) []digest.Digest {
		var out []digest.Digest
		for _, m := range ms {
			out = append(out, m.Digest)
		}
		return out
	}
	p := func(s string) layout.Platform {
		x, err := layout.ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	got, err := img.SelectPlatforms([]layout.Platform{p("linux/amd64"), p("linux/s390x")})
	if err != nil || !reflect.DeepEqual(digests(got.Children), []digest.Digest{amd, amdAtt}) {
		t.Fatalf("SelectPlatforms(linux/amd64, linux/s390x) = %v, %v; want %v", digests(got.Children), err, []digest.Digest{amd, amdAtt})
	}
	var absent []digest.Digest
	for _, d := range got.Absent {
		absent = append(absent, d.Digest)
	}
	if !reflect.DeepEqual(absent, []digest.Digest{arm, armAtt}) {
		t.Errorf("SelectPlatforms(linux/amd64, linux/s390x) left out %v, want %v", absent, []digest.Digest{arm, armAtt})
	}
	if all, err := img.SelectPlatforms([]layout.Platform{p("linux/arm64"), p("linux/amd64")}); err != nil || all.Sparse() ||
		!reflect.DeepEqual(digests(all.Children), []digest.Digest{amd, arm, amdAtt, armAtt}) {
		t.Errorf("SelectPlatforms(linux/arm64, linux/amd64) = %+v, %v; want every child", all, err)
	}
	if one, err := img.SelectPlatform(p("linux/arm64")); err != nil || one.Digest() != arm {
		t.Errorf("SelectPlatform(linux/arm64) = %v, %v; want %s", one, err, arm)
	}
	for _, bad := range [][]layout.Platform{{p("unknown/unknown")}, {p("unknown/unknown"), p("linux/s390x")}} {
		_, err := img.ForPlatforms(bad)
		if !errors.Is(err, layout.ErrNotFound) || strings.Contains(err.Error(), "it has [linux/amd64 linux/arm64/v8 unknown") ||
			!strings.Contains(err.Error(), "it has [linux/amd64 linux/arm64/v8]") {
			t.Errorf("ForPlatforms(%v): %v; want ErrNotFound listing linux/amd64 and linux/arm64/v8 only", bad, err)
		}
	}
	if ps := img.Platforms(); !reflect.DeepEqual(ps, []layout.Platform{p("linux/amd64"), p("linux/arm64/v8")}) {
		t.Errorf("Platforms() = %v", ps)
	}
	for _, name := range []string{"shapes/buildkit:multi", "shapes/buildkit:single", "alpine:3.14", "shapes/nested:outer"} {
		if !layout.IsRunnable(realWorldImage(t, c, name)) {
			t.Errorf("IsRunnable(%s) = false: its attestation manifests are part of the image", name)
		}
	}
	for _, d := range img.Manifest.Manifests {
		s, ok := layout.AttestationSubject(d)
		if want := d.Digest == amdAtt || d.Digest == armAtt; layout.IsAttestation(d) != want || ok != want || (ok && s != amd && s != arm) {
			t.Errorf("child %s: IsAttestation %v, AttestationSubject %s, %v", d.Digest, layout.IsAttestation(d), s, ok)
		}
	}
}

// bigSyncYAML is a skopeo sync YAML file of repos repositories of tags tags each, every tag
// listed twice, and every repository also once with an empty list (every tag) under a second
// registry.
func bigSyncYAML(repos, tags int) []byte {
	var b strings.Builder
	b.WriteString("a.example:\n  images:\n")
	for r := range repos {
		fmt.Fprintf(&b, "    ns/repo-%d:\n", r)
		for range 2 {
			for t := range tags {
				fmt.Fprintf(&b, "      - v%d\n", t)
			}
		}
	}
	b.WriteString("b.example:\n  images:\n")
	for r := range repos {
		fmt.Fprintf(&b, "    ns/repo-%d: []\n", r)
	}
	return []byte(b.String())
}

// TestParseSyncYAMLLarge: a file of 20,000 tags (each named twice) and 2,000 every-tag
// repositories (issue #19: add merged in time proportional to the selection so far) keeps
// each ref and repository once, in file order.
func TestParseSyncYAMLLarge(t *testing.T) {
	s, err := layout.ParseSyncYAML(bigSyncYAML(2000, 10), "big.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Refs) != 20000 || len(s.AllTags) != 2000 {
		t.Fatalf("%d refs, %d every-tag repositories; want 20000 and 2000", len(s.Refs), len(s.AllTags))
	}
	seen := map[string]bool{}
	for _, r := range s.Refs {
		if seen[r.String()] {
			t.Fatalf("%s twice", r)
		}
		seen[r.String()] = true
	}
	// Repositories are sorted by name, tags kept in file order.
	if first, last := s.Refs[0].String(), s.Refs[len(s.Refs)-1].String(); first != "ns/repo-0:v0" || last != "ns/repo-999:v9" {
		t.Errorf("refs from %s to %s; want ns/repo-0:v0 to ns/repo-999:v9", first, last)
	}
}

// BenchmarkParseSyncYAML: 20,000 tags in 2,000 repositories.
func BenchmarkParseSyncYAML(b *testing.B) {
	raw := bigSyncYAML(2000, 10)
	for b.Loop() {
		if _, err := layout.ParseSyncYAML(raw, "big.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}
