package layout

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestRuntimeName(t *testing.T) {
	d := digest.FromString("x")
	tests := []struct {
		prefix string
		ref    Ref
		want   string
	}{
		{"", Ref{Repo: "busybox", Tag: "1.36.1"}, "docker.io/library/busybox:1.36.1"},
		{"", Ref{Repo: "library/busybox", Tag: "1.36.1"}, "docker.io/library/busybox:1.36.1"},
		{"", Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"}, "docker.io/kubesphere/kube-apiserver:v1.20.6"},
		{"", Ref{Repo: "quay.io/x/y", Tag: "1"}, "quay.io/x/y:1"},
		{"", Ref{Repo: "busybox", Digest: d}, "docker.io/library/busybox@" + string(d)},
		{"registry.site:5000", Ref{Repo: "busybox", Tag: "1"}, "registry.site:5000/busybox:1"},
		{"registry.site/mirror/", Ref{Repo: "a/b/c", Tag: "v_1"}, "registry.site/mirror/a/b/c:v_1"},
		{"docker.io", Ref{Repo: "busybox", Tag: "1"}, "docker.io/library/busybox:1"},
	}
	for _, tt := range tests {
		got, err := RuntimeName(tt.prefix, tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("RuntimeName(%q, %s) = %q, %v; want %q", tt.prefix, tt.ref, got, err, tt.want)
		}
		// Read back as an image list reads a name, the host goes and the path stays.
		back, err := ParseRef(got)
		if err != nil || (tt.prefix == "" && back.Repo != tt.ref.Repo && "library/"+tt.ref.Repo != back.Repo && "quay.io/"+back.Repo != tt.ref.Repo) {
			t.Errorf("ParseRef(%q) = %s, %v", got, back, err)
		}
	}
	for _, bad := range []string{"host.example/UPPER", "host:port:x", "a b"} {
		if err := ValidateNamePrefix(bad); err == nil {
			t.Errorf("ValidateNamePrefix(%q) accepted", bad)
		}
	}
	if err := ValidateNamePrefix("registry.site:5000/library"); err != nil {
		t.Error(err)
	}
}

func TestIsRunnable(t *testing.T) {
	d := digest.FromString("x")
	img := func(cfg string, layers ...string) *Image {
		m := &Manifest{MediaType: MediaTypeOCIManifest, Config: &Descriptor{MediaType: cfg, Digest: d}}
		for _, l := range layers {
			m.Layers = append(m.Layers, Descriptor{MediaType: l, Digest: d})
		}
		return &Image{Manifest: m}
	}
	tests := []struct {
		name string
		img  *Image
		want bool
	}{
		{"docker image", img(MediaTypeDockerConfig, "application/vnd.docker.image.rootfs.diff.tar.gzip"), true},
		{"oci image, zstd and plain", img(MediaTypeOCIConfig, "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar"), true},
		{"helm chart", img("application/vnd.cncf.helm.config.v1+json", "application/vnd.cncf.helm.chart.content.v1.tar+gzip"), false},
		{"cosign signature", img(MediaTypeOCIConfig, "application/vnd.dev.cosign.simplesigning.v1+json"), false},
	}
	sbom := img("application/vnd.oci.empty.v1+json", "application/spdx+json")
	sbom.Manifest.Subject = &Descriptor{Digest: d}
	tests = append(tests, struct {
		name string
		img  *Image
		want bool
	}{"sbom", sbom, false})
	for _, tt := range tests {
		if got := IsRunnable(tt.img); got != tt.want {
			t.Errorf("%s: IsRunnable = %v", tt.name, got)
		}
	}
}
