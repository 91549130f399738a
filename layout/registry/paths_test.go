package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sha is the sha256 digest of s, computed without the code under test.
func sha(s string) digest.Digest {
	h := sha256.Sum256([]byte(s))
	return digest.Digest("sha256:" + hex.EncodeToString(h[:]))
}

func TestPathFor(t *testing.T) {
	d := sha("a blob")
	h := d.Encoded()
	const v2 = "docker/registry/v2/"
	tests := []struct {
		spec PathSpec
		want string
	}{
		{Blobs{}, v2 + "blobs"},
		{Repositories{}, v2 + "repositories"},
		{BlobData{Digest: d}, v2 + "blobs/sha256/" + h[:2] + "/" + h + "/data"},
		{LayerLink{Repo: "nginx", Digest: d}, v2 + "repositories/nginx/_layers/sha256/" + h + "/link"},
		{LayerLink{Repo: "a/b/c/d", Digest: d}, v2 + "repositories/a/b/c/d/_layers/sha256/" + h + "/link"},
		{RevisionLink{Repo: "library/nginx", Digest: d}, v2 + "repositories/library/nginx/_manifests/revisions/sha256/" + h + "/link"},
		{RevisionLink{Repo: "a/b/c/d", Digest: d}, v2 + "repositories/a/b/c/d/_manifests/revisions/sha256/" + h + "/link"},
		{TagCurrent{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"}, v2 + "repositories/kubesphere/kube-apiserver/_manifests/tags/v1.20.6/current/link"},
		{TagCurrent{Repo: "a/b/c/d", Tag: "1.0-rc_1"}, v2 + "repositories/a/b/c/d/_manifests/tags/1.0-rc_1/current/link"},
		{TagCurrent{Repo: "x", Tag: "_"}, v2 + "repositories/x/_manifests/tags/_/current/link"},
		{TagCurrent{Repo: "x", Tag: "a.."}, v2 + "repositories/x/_manifests/tags/a../current/link"},
		{LayersDir{Repo: "a/b/c/d"}, v2 + "repositories/a/b/c/d/_layers"},
		{RevisionsDir{Repo: "a/b"}, v2 + "repositories/a/b/_manifests/revisions/sha256"},
		{TagsDir{Repo: "a/b"}, v2 + "repositories/a/b/_manifests/tags"},
		{TagIndex{Repo: "a.b/c-d/e_f/g__h", Tag: "Latest", Digest: d}, v2 + "repositories/a.b/c-d/e_f/g__h/_manifests/tags/Latest/index/sha256/" + h + "/link"},
	}
	for _, tt := range tests {
		got, err := PathFor(tt.spec)
		if err != nil {
			t.Errorf("PathFor(%#v): %v", tt.spec, err)
			continue
		}
		if got != tt.want {
			t.Errorf("PathFor(%#v)\n got %s\nwant %s", tt.spec, got, tt.want)
		}
	}
}

type bogusSpec struct{}

func (bogusSpec) pathSpec() {}

func TestPathForRefuses(t *testing.T) {
	good := sha("x")
	badDigests := []digest.Digest{
		"sha256:xyz",
		"sha256:../../etc",
		digest.Digest("sha256:" + strings.ToUpper(good.Encoded())),
		digest.Digest("sha512:" + strings.Repeat("a", 128)),
		"sha256:",
		digest.Digest(string(good) + "\n"),
	}
	badRepos := []string{"", "A", "a/B", "../x", "a/../b", "a/./b", "_x", "a/_layers", "a//b", "/a", "a/", strings.Repeat("a", 256)}
	badTags := []string{"", ".", "..", ".x", "-x", "a/b", "../..", strings.Repeat("t", 129)}

	var specs []PathSpec
	for _, bd := range badDigests {
		specs = append(specs, BlobData{Digest: bd}, LayerLink{Repo: "a", Digest: bd}, RevisionLink{Repo: "a", Digest: bd},
			TagIndex{Repo: "a", Tag: "t", Digest: bd})
	}
	for _, r := range badRepos {
		specs = append(specs, LayerLink{Repo: r, Digest: good}, RevisionLink{Repo: r, Digest: good},
			TagCurrent{Repo: r, Tag: "t"}, TagIndex{Repo: r, Tag: "t", Digest: good}, LayersDir{Repo: r})
	}
	for _, tag := range badTags {
		specs = append(specs, TagCurrent{Repo: "a", Tag: tag}, TagIndex{Repo: "a", Tag: tag, Digest: good})
	}
	specs = append(specs, nil, bogusSpec{}, BlobData{})
	for _, spec := range specs {
		p, err := PathFor(spec)
		if err == nil {
			t.Errorf("PathFor(%#v) = %q, want an error", spec, p)
			continue
		}
		if !errors.Is(err, layout.ErrInvalid) && !errors.Is(err, layout.ErrUnsupported) {
			t.Errorf("PathFor(%#v): %v is neither ErrInvalid nor ErrUnsupported", spec, err)
		}
	}
}

// TestPathForDigestWithoutAlgorithm checks that a link spec whose digest has no "algorithm:"
// part is refused with an error. go-digest's Encoded panics on such a digest, so PathFor must
// validate before calling it.
func TestPathForDigestWithoutAlgorithm(t *testing.T) {
	for _, d := range []digest.Digest{"", digest.Digest(sha("x").Encoded()), "../../../etc"} {
		for _, spec := range []PathSpec{
			LayerLink{Repo: "a", Digest: d},
			RevisionLink{Repo: "a", Digest: d},
			TagIndex{Repo: "a", Tag: "t", Digest: d},
			BlobData{Digest: d},
		} {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("PathFor(%#v) panicked: %v", spec, r)
					}
				}()
				if p, err := PathFor(spec); !errors.Is(err, layout.ErrInvalid) {
					t.Errorf("PathFor(%#v) = %q, %v; want ErrInvalid", spec, p, err)
				}
			}()
		}
	}
}

// sampleSpecs is a small storage tree: two nested repositories, a tag that moved.
func sampleSpecs() []PathSpec {
	idx, amd, cfg, l1, l2 := sha("index"), sha("amd64 manifest"), sha("config"), sha("layer 1"), sha("layer 2")
	var specs []PathSpec
	for _, d := range []digest.Digest{idx, amd, cfg, l1, l2} {
		specs = append(specs, BlobData{Digest: d})
	}
	for _, repo := range []string{"a/b", "a/b/c"} {
		for _, d := range []digest.Digest{cfg, l1, l2} {
			specs = append(specs, LayerLink{Repo: repo, Digest: d})
		}
		specs = append(specs, RevisionLink{Repo: repo, Digest: idx}, RevisionLink{Repo: repo, Digest: amd},
			TagIndex{Repo: repo, Tag: "v1.0", Digest: amd}, TagIndex{Repo: repo, Tag: "v1.0", Digest: idx},
			TagCurrent{Repo: repo, Tag: "v1.0"}, TagCurrent{Repo: repo, Tag: "latest_x-1"})
	}
	return specs
}

func TestPathForGolden(t *testing.T) {
	var b strings.Builder
	for _, spec := range sampleSpecs() {
		p, err := PathFor(spec)
		if err != nil {
			t.Fatalf("PathFor(%#v): %v", spec, err)
		}
		fmt.Fprintf(&b, "%-24T %s\n", spec, p)
	}
	golden := filepath.Join("testdata", "paths.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("paths differ from %s (run with -update if the change is intended):\n got:\n%s\nwant:\n%s", golden, b.String(), want)
	}
}

func TestParsePathRoundTrip(t *testing.T) {
	d := sha("round trip")
	specs := append(sampleSpecs(),
		BlobData{Digest: d},
		LayerLink{Repo: "x", Digest: d},
		LayerLink{Repo: "a/b/c/d", Digest: d},
		RevisionLink{Repo: "a.b/c-d", Digest: d},
		TagCurrent{Repo: "x", Tag: "_"},
		TagCurrent{Repo: "x", Tag: "_manifests"},
		TagCurrent{Repo: "x", Tag: "index"},
		TagCurrent{Repo: "x", Tag: "current"},
		TagIndex{Repo: "x/y", Tag: "V1.0-RC_2", Digest: d},
		TagIndex{Repo: "x", Tag: strings.Repeat("t", 128), Digest: d},
	)
	for _, spec := range specs {
		p, err := PathFor(spec)
		if err != nil {
			t.Fatalf("PathFor(%#v): %v", spec, err)
		}
		got, err := ParsePath(p)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", p, err)
			continue
		}
		if got != spec {
			t.Errorf("ParsePath(%q) = %#v, want %#v", p, got, spec)
		}
	}
}

func TestParsePathRefuses(t *testing.T) {
	d := sha("refused")
	h := d.Encoded()
	other := sha("other").Encoded()
	const v2 = "docker/registry/v2/"
	blob := v2 + "blobs/sha256/" + h[:2] + "/" + h + "/data"
	layer := v2 + "repositories/a/b/_layers/sha256/" + h + "/link"
	tests := []string{
		"",
		"docker/registry/v2",
		"docker/registry/v2/",
		v2 + "blobs",
		v2 + "repositories",
		v2 + "repositories/a",
		// traversal and unclean paths
		"../" + blob,
		v2 + "../v2/blobs/sha256/" + h[:2] + "/" + h + "/data",
		v2 + "repositories/a/../b/_layers/sha256/" + h + "/link",
		v2 + "repositories/../_layers/sha256/" + h + "/link",
		v2 + "repositories/a/./b/_layers/sha256/" + h + "/link",
		v2 + "repositories/a/b/_manifests/tags/../current/link",
		v2 + "repositories/a/b/_manifests/tags/./current/link",
		v2 + "blobs/sha256/" + h[:2] + "/../" + h[:2] + "/" + h + "/data",
		"./" + blob,
		"/" + blob,
		"/" + layer,
		blob + "/",
		layer + "/",
		strings.Replace(blob, "/blobs/", "//blobs/", 1),
		strings.Replace(layer, "a/b", "a//b", 1),
		strings.Replace(layer, "/_layers", "//_layers", 1),
		strings.ReplaceAll(blob, "/", `\`),
		// blob fan-out
		v2 + "blobs/sha256/" + other[:2] + "/" + h + "/data",
		v2 + "blobs/sha256/" + h[:3] + "/" + h + "/data",
		v2 + "blobs/sha256/" + h[:1] + "/" + h + "/data",
		v2 + "blobs/sha256/" + h + "/data",
		v2 + "blobs/sha256/" + h[:2] + "/" + h[:2] + "/" + h + "/data",
		v2 + "blobs/sha256/" + strings.ToUpper(h[:2]) + "/" + strings.ToUpper(h) + "/data",
		v2 + "blobs/sha256/" + h[:2] + "/" + strings.ToUpper(h) + "/data",
		v2 + "blobs/sha512/" + strings.Repeat("a", 2) + "/" + strings.Repeat("a", 128) + "/data",
		v2 + "blobs/sha256/" + h[:2] + "/" + h[:63] + "/data",
		v2 + "blobs/sha256/" + h[:2] + "/" + h,
		v2 + "blobs/sha256/" + h[:2] + "/" + h + "/link",
		// uppercase hex in links
		v2 + "repositories/a/b/_layers/sha256/" + strings.ToUpper(h) + "/link",
		v2 + "repositories/a/_manifests/revisions/sha256/" + strings.ToUpper(h) + "/link",
		// uploads
		v2 + "repositories/a/b/_uploads/0b6c7f0a-1b2c-4d5e-8f90-123456789abc/data",
		v2 + "repositories/a/b/_uploads/0b6c7f0a-1b2c-4d5e-8f90-123456789abc/startedat",
		v2 + "repositories/a/b/_uploads/0b6c7f0a-1b2c-4d5e-8f90-123456789abc/hashstates/sha256/0",
		v2 + "repositories/a/b/_uploads",
		v2 + "repositories/a/b/_layers",
		v2 + "repositories/a/b/_manifests",
		v2 + "repositories/a/b/_manifests/tags/v1",
		// repository names
		v2 + "repositories/A/b/_layers/sha256/" + h + "/link",
		v2 + "repositories/a/B/_manifests/tags/v1/current/link",
		v2 + "repositories/a-/_layers/sha256/" + h + "/link",
		v2 + "repositories/a b/_layers/sha256/" + h + "/link",
		v2 + "repositories/" + strings.Repeat("a", 256) + "/_layers/sha256/" + h + "/link",
		// tags
		v2 + "repositories/a/_manifests/tags/.x/current/link",
		v2 + "repositories/a/_manifests/tags/-x/current/link",
		v2 + "repositories/a/_manifests/tags/" + strings.Repeat("t", 129) + "/current/link",
		v2 + "repositories/a/_manifests/tags//current/link",
		v2 + "repositories/a/_manifests/tags/v1/index/sha256/" + strings.ToUpper(h) + "/link",
		// extra, missing or misspelled components
		blob + "/x",
		layer + "/x",
		v2 + "repositories/a/_layers/sha256/" + h + "/link/link",
		v2 + "repositories/a/_layers/" + h + "/link",
		v2 + "repositories/a/_layers/sha256/" + h,
		v2 + "repositories/a/_manifests/revisions/" + h + "/link",
		v2 + "repositories/a/_manifests/revisions/sha256/" + h + "/data",
		v2 + "repositories/a/_manifests/tags/v1/current",
		v2 + "repositories/a/_manifests/tags/v1/current/link/x",
		v2 + "repositories/a/_manifests/tags/v1/previous/link",
		v2 + "repositories/a/_manifests/tags/v1/index/sha256/" + h,
		v2 + "repositories/a/_manifests/tags/v1/index/" + h + "/link",
		v2 + "repositories/a/_manifests/_layers/sha256/" + h + "/link",
		v2 + "repositories/a/_layers/_manifests/revisions/sha256/" + h + "/link",
		v2 + "repositories/a/_foo/sha256/" + h + "/link",
		"docker/registry/v3/repositories/a/_layers/sha256/" + h + "/link",
		"registry/v2/repositories/a/_layers/sha256/" + h + "/link",
		"x/" + layer,
		// a link path whose repository is empty
		v2 + "repositories/_layers/sha256/" + h + "/link",
		v2 + "repositories/_manifests/revisions/sha256/" + h + "/link",
		v2 + "repositories/_manifests/tags/v1/current/link",
		v2 + "repositories/_manifests/tags/v1/index/sha256/" + h + "/link",
	}
	for _, p := range tests {
		spec, err := ParsePath(p)
		if err == nil {
			t.Errorf("ParsePath(%q) = %#v, want an error", p, spec)
			continue
		}
		if !errors.Is(err, layout.ErrInvalid) && !errors.Is(err, layout.ErrUnsupported) {
			t.Errorf("ParsePath(%q): %v is neither ErrInvalid nor ErrUnsupported", p, err)
		}
	}
}

func TestLinkDigest(t *testing.T) {
	d := sha("link")
	tests := []struct {
		spec PathSpec
		want digest.Digest
	}{
		{LayerLink{Repo: "a", Digest: d}, d},
		{RevisionLink{Repo: "a", Digest: d}, d},
		{TagIndex{Repo: "a", Tag: "t", Digest: d}, d},
		{TagCurrent{Repo: "a", Tag: "t"}, ""},
		{BlobData{Digest: d}, ""},
	}
	for _, tt := range tests {
		if got := LinkDigest(tt.spec); got != tt.want {
			t.Errorf("LinkDigest(%#v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

// FuzzParsePath checks that ParsePath never panics and accepts only clean relative paths that
// PathFor maps back to exactly the input.
func FuzzParsePath(f *testing.F) {
	for _, spec := range sampleSpecs() {
		p, _ := PathFor(spec)
		f.Add(p)
	}
	f.Add("docker/registry/v2/repositories/a/_uploads/x/data")
	f.Add("docker/registry/v2/repositories/_layers/sha256/" + sha("").Encoded() + "/link")
	f.Fuzz(func(t *testing.T, p string) {
		spec, err := ParsePath(p)
		if err != nil {
			if spec != nil {
				t.Fatalf("ParsePath(%q) returned %#v and an error", p, spec)
			}
			return
		}
		back, err := PathFor(spec)
		if err != nil {
			t.Fatalf("ParsePath(%q) = %#v, which PathFor refuses: %v", p, spec, err)
		}
		if back != p {
			t.Fatalf("ParsePath(%q) = %#v, but PathFor gives %q", p, spec, back)
		}
		if path.Clean(p) != p || path.IsAbs(p) || filepath.IsAbs(p) || strings.Contains(p, `\`) {
			t.Fatalf("ParsePath accepted unclean path %q", p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." || c == "" {
				t.Fatalf("ParsePath accepted path %q with component %q", p, c)
			}
		}
		switch spec.(type) {
		case BlobData, LayerLink, RevisionLink, TagCurrent, TagIndex:
		default:
			t.Fatalf("ParsePath(%q) = %T, not a file kind", p, spec)
		}
	})
}
