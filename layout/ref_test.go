package layout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

var (
	hexRef = strings.Repeat("0123456789abcdef", 4)
	dgRef  = digest.Digest("sha256:" + hexRef)
)

func TestParseRef(t *testing.T) {
	long255 := strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127) // 255 bytes
	tag128 := "v" + strings.Repeat("1", 127)
	tests := []struct {
		in   string
		want layout.Ref
	}{
		{"nginx", layout.Ref{Repo: "nginx", Tag: "latest"}},
		{"nginx:1.25", layout.Ref{Repo: "nginx", Tag: "1.25"}},
		{"library/nginx", layout.Ref{Repo: "library/nginx", Tag: "latest"}},
		{"library/nginx:1.25.3-alpine", layout.Ref{Repo: "library/nginx", Tag: "1.25.3-alpine"}},
		{"docker.io/library/nginx:1.25", layout.Ref{Repo: "library/nginx", Tag: "1.25"}},
		{"docker.io/nginx", layout.Ref{Repo: "nginx", Tag: "latest"}},
		{"quay.io/x/y:1", layout.Ref{Repo: "x/y", Tag: "1"}},
		{"localhost/x:1", layout.Ref{Repo: "x", Tag: "1"}},
		{"localhost:5000/x", layout.Ref{Repo: "x", Tag: "latest"}},
		{"host:5000/a/b:v1", layout.Ref{Repo: "a/b", Tag: "v1"}},
		{"host:5000/a/b", layout.Ref{Repo: "a/b", Tag: "latest"}},
		{"registry.example.com:443/kubesphere/kube-apiserver:v1.20.6", layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"}},
		{"nginx@" + string(dgRef), layout.Ref{Repo: "nginx", Digest: dgRef}},
		{"a/b@" + string(dgRef), layout.Ref{Repo: "a/b", Digest: dgRef}},
		{"nginx:1.25@" + string(dgRef), layout.Ref{Repo: "nginx", Tag: "1.25", Digest: dgRef}},
		{"host:5000/a/b:v1@" + string(dgRef), layout.Ref{Repo: "a/b", Tag: "v1", Digest: dgRef}},
		{"host:5000/a/b@" + string(dgRef), layout.Ref{Repo: "a/b", Digest: dgRef}},
		{"a/b/c/d:v1", layout.Ref{Repo: "a/b/c/d", Tag: "v1"}},
		{"quay.io/a/b/c/d", layout.Ref{Repo: "a/b/c/d", Tag: "latest"}},
		{"x:v1.0", layout.Ref{Repo: "x", Tag: "v1.0"}},
		{"x:1-2", layout.Ref{Repo: "x", Tag: "1-2"}},
		{"x:a_b", layout.Ref{Repo: "x", Tag: "a_b"}},
		{"x:_x", layout.Ref{Repo: "x", Tag: "_x"}},
		{"x:V1.Final", layout.Ref{Repo: "x", Tag: "V1.Final"}},
		{"x:" + tag128, layout.Ref{Repo: "x", Tag: tag128}},
		{"a-b/c.d/e_f/g__h/i---j:t", layout.Ref{Repo: "a-b/c.d/e_f/g__h/i---j", Tag: "t"}},
		{"0/9:0", layout.Ref{Repo: "0/9", Tag: "0"}},
		{long255, layout.Ref{Repo: long255, Tag: "latest"}},
	}
	for _, tt := range tests {
		got, err := layout.ParseRef(tt.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRefInvalid(t *testing.T) {
	tests := []string{
		"",
		"Nginx",
		"library/Nginx",
		"_x",
		"x/_y",
		"a_",
		"-a",
		"a-",
		"a..b",
		"a___b",
		"a//b",
		"a/",
		"/a",
		":tag",
		"@" + string(dgRef),
		"docker.io/",
		"nginx:",
		"nginx:.x",
		"nginx:-x",
		"nginx:a b",
		"nginx:t@",
		"nginx@",
		"nginx@sha256:xyz",
		"nginx@sha256:../../etc",
		"nginx@sha256:" + strings.ToUpper(hexRef),
		"nginx@sha512:" + strings.Repeat("a", 128),
		"nginx@" + hexRef,
		" nginx",
		"nginx ",
		"ngi nx",
		"a:b:c",
		strings.Repeat("a", 128) + "/" + strings.Repeat("b", 127), // 256 bytes
		"x:v" + strings.Repeat("1", 128),                          // tag of 129
		"x:" + strings.Repeat("é", 3),
	}
	for _, in := range tests {
		got, err := layout.ParseRef(in)
		if err == nil {
			t.Errorf("ParseRef(%q) = %+v, want an error", in, got)
			continue
		}
		if !errors.Is(err, layout.ErrInvalid) && !errors.Is(err, layout.ErrUnsupported) {
			t.Errorf("ParseRef(%q): %v is neither ErrInvalid nor ErrUnsupported", in, err)
		}
	}
}

// TestParseRefStringRoundTrip checks that Ref.String is a fixed point of ParseRef: what ParseRef
// returns, formatted and parsed again, is the same reference (image lists, dir trees and
// messages all go through Ref.String).
func TestParseRefStringRoundTrip(t *testing.T) {
	tests := []string{
		"nginx",
		"library/nginx:1",
		"docker.io/library/nginx@" + string(dgRef),
		"host:5000/a/b:v1@" + string(dgRef),
		"a/b/c/d:x_y.z-1",
		// The repository left after stripping the host starts with a component that itself
		// looks like a host.
		"quay.io/foo.bar/app:1",
		"registry.local/localhost/app:1",
		"host:5000/a.b/c",
	}
	for _, in := range tests {
		r, err := layout.ParseRef(in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", in, err)
			continue
		}
		back, err := layout.ParseLocalRef(r.String())
		if err != nil {
			t.Errorf("ParseRef(%q) = %q, which does not parse: %v", in, r, err)
			continue
		}
		if back != r {
			t.Errorf("ParseRef(%q) = %+v, but ParseLocalRef(%q) = %+v", in, r, r.String(), back)
		}
	}
}

// TestParseImageListFuzzCrasher is the input FuzzParseImageList found: the second line's
// repository "00aaa.0/0" must survive ParseLocalRef(ref.String()).
func TestParseImageListFuzzCrasher(t *testing.T) {
	refs, err := layout.ParseImageList(strings.NewReader("00000:0000\n000000.00/00aaa.0/0"), "crasher.list")
	if err != nil {
		t.Fatalf("ParseImageList: %v", err)
	}
	for _, r := range refs {
		if back, err := layout.ParseLocalRef(r.String()); err != nil || back != r {
			t.Errorf("ParseLocalRef(%q) = %+v, %v; want %+v", r.String(), back, err, r)
		}
	}
}

func TestRefString(t *testing.T) {
	tests := []struct {
		r    layout.Ref
		want string
	}{
		{layout.Ref{Repo: "a/b", Tag: "v1"}, "a/b:v1"},
		{layout.Ref{Repo: "a/b", Digest: dgRef}, "a/b@" + string(dgRef)},
		{layout.Ref{Repo: "a", Tag: "t", Digest: dgRef}, "a:t@" + string(dgRef)},
		{layout.Ref{Repo: "a"}, "a"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestValidateRepoAndTag(t *testing.T) {
	for _, name := range []string{"a", "a/b/c/d", "a.b", "a_b", "a__b", "a-b", "a--b", "0"} {
		if err := layout.ValidateRepo(name); err != nil {
			t.Errorf("ValidateRepo(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "A", "a/B", "a/", "a//b", ".a", "a.", "a._b", "a/../b", "..", "a b", "ä"} {
		if err := layout.ValidateRepo(name); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("ValidateRepo(%q) = %v, want ErrInvalid", name, err)
		}
	}
	for _, tag := range []string{"a", "A", "_", "0", "latest", "v1.2.3-rc.1_x", strings.Repeat("t", 128)} {
		if err := layout.ValidateTag(tag); err != nil {
			t.Errorf("ValidateTag(%q) = %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".", "..", "-a", ".a", "a/b", "a:b", "a b", "a\n", strings.Repeat("t", 129)} {
		if err := layout.ValidateTag(tag); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("ValidateTag(%q) = %v, want ErrInvalid", tag, err)
		}
	}
}
