package layout

import "testing"

// TestKindOf: Helm's config makes a chart anywhere; under files/ an artifact with layers and a
// config that is not a container image's is a file; everything else is an image.
func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		repo, mt, cfg string
		layers        int
		want          Kind
	}{
		{"charts/demo", MediaTypeOCIManifest, MediaTypeHelmConfig, 1, KindChart},
		{"up/charts/demo", MediaTypeOCIManifest, MediaTypeHelmConfig, 2, KindChart},
		{"files/tools/kubeadm", MediaTypeOCIManifest, "application/vnd.oci.empty.v1+json", 1, KindFile},
		{"files/old-oras", MediaTypeOCIManifest, "application/vnd.unknown.config.v1+json", 1, KindFile},
		{"files/app", MediaTypeOCIManifest, MediaTypeOCIConfig, 3, KindImage},
		{"files/app", MediaTypeDockerManifest, MediaTypeDockerConfig, 3, KindImage},
		{"files/empty", MediaTypeOCIManifest, "application/vnd.oci.empty.v1+json", 0, KindImage},
		{"files/index", MediaTypeOCIIndex, "", 0, KindImage},
		{"tools/kubeadm", MediaTypeOCIManifest, "application/vnd.oci.empty.v1+json", 1, KindImage},
		{"busybox", MediaTypeDockerManifest, MediaTypeDockerConfig, 1, KindImage},
	} {
		if got := KindOf(tc.repo, tc.mt, tc.cfg, tc.layers); got != tc.want {
			t.Errorf("KindOf(%q, %q, %q, %d) = %s, want %s", tc.repo, tc.mt, tc.cfg, tc.layers, got, tc.want)
		}
	}
	if n, v := ChartName("charts/demo", "1.0.0_build.7"); n != "demo" || v != "1.0.0+build.7" {
		t.Errorf("ChartName: %s %s", n, v)
	}
}
