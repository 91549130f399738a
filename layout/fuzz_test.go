package layout_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
)

// FuzzParseManifest checks that ParseManifest never panics and that whatever it accepts is
// named by the sha256 of the input and holds only valid descriptors. Seeds: the manifests of
// the unit tests and testdata/fuzz/FuzzParseManifest (manifests from testdata/sample-registry).
func FuzzParseManifest(f *testing.F) {
	amd := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA, layerB)
	f.Add(amd)
	f.Add(imageManifest("", false, cfgArm64, layerC))
	f.Add(indexManifest(layout.MediaTypeDockerManifestList, true,
		platDesc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd)), "linux", "amd64", "")))
	f.Add(indexManifest("", false, desc(layout.MediaTypeOCIManifest, sha(amd), 1)))
	f.Add([]byte(`{"schemaVersion":1,"fsLayers":[],"signatures":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		m, err := layout.ParseManifest(b)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseManifest returned a manifest and an error %v", err)
			}
			return
		}
		if want := sha(in); m.Digest != want {
			t.Fatalf("Digest = %s, want sha256 of the input %s", m.Digest, want)
		}
		if !bytes.Equal(m.Raw, in) {
			t.Fatalf("Raw differs from the input")
		}
		if !layout.IsManifestType(m.MediaType) {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if m.IsIndex() != (m.Config == nil) {
			t.Fatalf("IsIndex() = %v with Config %v", m.IsIndex(), m.Config)
		}
		if m.IsIndex() && len(m.Layers) != 0 || !m.IsIndex() && len(m.Manifests) != 0 {
			t.Fatalf("%s with %d layers and %d children", m.MediaType, len(m.Layers), len(m.Manifests))
		}
		for _, d := range append(m.Blobs(), m.Manifests...) {
			if err := layout.ValidateDigest(d.Digest); err != nil {
				t.Fatalf("accepted descriptor with digest %q: %v", d.Digest, err)
			}
			if d.Size < 0 {
				t.Fatalf("accepted descriptor %s with size %d", d.Digest, d.Size)
			}
		}
		for _, d := range m.Manifests {
			if !layout.IsManifestType(d.MediaType) {
				t.Fatalf("accepted index child of media type %q", d.MediaType)
			}
		}
	})
}

// FuzzParseImageList checks that ParseImageList never panics, that every reference it returns
// is valid, unique, and a fixed point of ParseLocalRef(ref.String()).
func FuzzParseImageList(f *testing.F) {
	f.Add("##k8s-images\nnginx:1.25 # c\r\n\ndocker.io/library/busybox\n")
	f.Add("host:5000/a/b:v1@sha256:" + hexRef + "\nBad\n")
	f.Fuzz(func(t *testing.T, in string) {
		refs, _ := layout.ParseImageList(strings.NewReader(in), "fuzz.list")
		seen := map[string]bool{}
		for _, r := range refs {
			s := r.String()
			if seen[s] {
				t.Fatalf("duplicate reference %q", s)
			}
			seen[s] = true
			if r.Tag == "" && r.Digest == "" {
				t.Fatalf("reference %q has neither tag nor digest", s)
			}
			if err := layout.ValidateRepo(r.Repo); err != nil {
				t.Fatalf("reference %q: %v", s, err)
			}
			back, err := layout.ParseLocalRef(s)
			if err != nil {
				t.Fatalf("ParseLocalRef(%q) of a returned reference: %v", s, err)
			}
			if back != r {
				t.Fatalf("ParseLocalRef(%q) = %+v, want %+v", s, back, r)
			}
		}
	})
}

// FuzzParseSyncYAML: skopeo sync YAML files are untrusted input too.
func FuzzParseSyncYAML(f *testing.F) {
	f.Add([]byte("docker.io:\n  images:\n    busybox: []\n    redis: [\"1.0\", \"sha256:0000000000000000000000000000000011111111111111111111111111111111\"]\n  images-by-tag-regex:\n    nginx: ^1\\.13$\n"))
	f.Add([]byte("a: b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := layout.ParseSyncYAML(b, "f.yaml")
		if err != nil || s == nil {
			return
		}
		for _, r := range s.Refs {
			if _, err := layout.ParseLocalRef(r.String()); err != nil {
				t.Fatalf("ParseSyncYAML gave %q, which does not parse back: %v", r, err)
			}
		}
		for _, repo := range s.AllTags {
			if err := layout.ValidateRepo(repo); err != nil {
				t.Fatalf("ParseSyncYAML gave repository %q: %v", repo, err)
			}
		}
	})
}
