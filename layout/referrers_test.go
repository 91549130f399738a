package layout_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

const subjectHex = "1cc9828bdb71400c3696ee65ea5b8492fc981967819cd7ab9eab10b8b3914fd5"

func TestParseReferrerTag(t *testing.T) {
	subject := digest.Digest("sha256:" + subjectHex)
	for _, tt := range []struct {
		tag    string
		ok     bool
		suffix string
	}{
		{"sha256-" + subjectHex, true, ""},
		{"sha256-" + subjectHex + ".sig", true, "sig"},
		{"sha256-" + subjectHex + ".att", true, "att"},
		{"sha256-" + subjectHex + ".sbom", true, "sbom"},
		{"sha256-" + subjectHex + ".", false, ""},
		{"sha256-" + subjectHex + "x", false, ""},
		{"sha256-" + subjectHex[:63], false, ""},
		{"sha256-" + strings.ToUpper(subjectHex), false, ""},
		{"sha512-" + subjectHex, false, ""},
		{"latest", false, ""},
		{"", false, ""},
	} {
		d, suffix, ok := layout.ParseReferrerTag(tt.tag)
		if ok != tt.ok || (ok && (d != subject || suffix != tt.suffix)) {
			t.Errorf("ParseReferrerTag(%q) = %s, %q, %v; want ok=%v suffix %q", tt.tag, d, suffix, ok, tt.ok, tt.suffix)
		}
	}
	if got := layout.ReferrersTag(subject); got != "sha256-"+subjectHex {
		t.Errorf("ReferrersTag = %q", got)
	}
}

// TestReferrersIndex: a new index is an OCI index of the referrers sorted by digest; merging
// keeps the old descriptors' order and bytes, adds the missing ones, and changes nothing when
// nothing is missing.
func TestReferrersIndex(t *testing.T) {
	a := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromString("a"), Size: 10, ArtifactType: "application/spdx+json",
		Annotations: map[string]string{"k": "v"}, Platform: &layout.Platform{OS: "linux", Architecture: "amd64"}}
	b := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromString("b"), Size: 11, ArtifactType: "application/vnd.in-toto+json"}
	first, b1 := a, b
	if first.Digest > b1.Digest {
		first, b1 = b1, first
	}
	raw, changed, err := layout.ReferrersIndex(nil, []layout.Descriptor{b, a})
	if err != nil || !changed {
		t.Fatalf("ReferrersIndex(nil) = %v, %v", changed, err)
	}
	m, err := layout.ParseManifest(raw)
	if err != nil {
		t.Fatalf("the index does not parse: %v\n%s", err, raw)
	}
	if m.MediaType != layout.MediaTypeOCIIndex || len(m.Manifests) != 2 || m.Manifests[0].Digest != first.Digest {
		t.Fatalf("index = %s", raw)
	}
	var generic struct {
		Manifests []map[string]any `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, d := range generic.Manifests {
		if _, ok := d["platform"]; ok {
			t.Errorf("a referrers index lists no platform: %s", raw)
		}
		if d["artifactType"] == nil {
			t.Errorf("a referrers index descriptor lacks its artifactType: %s", raw)
		}
	}
	again, changed, err := layout.ReferrersIndex(m, []layout.Descriptor{a})
	if err != nil || changed || string(again) != string(raw) {
		t.Errorf("merging what is there: changed=%v err=%v", changed, err)
	}
	c := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromString("c"), Size: 12}
	merged, changed, err := layout.ReferrersIndex(m, []layout.Descriptor{c, a})
	if err != nil || !changed {
		t.Fatalf("merging one more: %v, %v", changed, err)
	}
	mm, err := layout.ParseManifest(merged)
	if err != nil || len(mm.Manifests) != 3 || mm.Manifests[0].Digest != first.Digest || mm.Manifests[2].Digest != c.Digest {
		t.Errorf("merged = %s (%v)", merged, err)
	}
	empty, _, err := layout.ReferrersIndex(nil, nil)
	if err != nil || !strings.Contains(string(empty), `"manifests":[]`) {
		t.Errorf("empty index = %s, %v", empty, err)
	}
}

func TestMatchesReferrerType(t *testing.T) {
	for _, tt := range []struct {
		types      []string
		at, suffix string
		want       bool
	}{
		{nil, "anything", "", true},
		{[]string{"application/spdx+json"}, "application/spdx+json", "", true},
		{[]string{"application/spdx+json"}, "application/vnd.in-toto+json", "", false},
		{[]string{"sig"}, "", "sig", true},
		{[]string{"sig"}, "", "att", false},
		{[]string{"sig"}, "sig", "", true},
	} {
		if got := layout.MatchesReferrerType(tt.types, tt.at, tt.suffix); got != tt.want {
			t.Errorf("MatchesReferrerType(%v, %q, %q) = %v", tt.types, tt.at, tt.suffix, got)
		}
	}
}

// FuzzReferrersIndex: whatever index a registry's referrers tag holds, merging referrers into
// it gives an index that parses, lists every referrer added and keeps what the old one listed.
func FuzzReferrersIndex(f *testing.F) {
	old, _, _ := layout.ReferrersIndex(nil, []layout.Descriptor{{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromString("x"), Size: 3}})
	f.Add(old, "application/spdx+json")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`), "")
	f.Fuzz(func(t *testing.T, b []byte, at string) {
		m, err := layout.ParseManifest(b)
		if err != nil || !m.IsIndex() {
			return
		}
		add := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: digest.FromBytes(b), Size: int64(len(b)), ArtifactType: at}
		raw, _, err := layout.ReferrersIndex(m, []layout.Descriptor{add})
		if err != nil {
			t.Fatalf("ReferrersIndex: %v", err)
		}
		got, err := layout.ParseManifest(raw)
		if err != nil {
			t.Fatalf("the merged index does not parse: %v\n%s", err, raw)
		}
		have := map[digest.Digest]bool{}
		for _, d := range got.Manifests {
			have[d.Digest] = true
		}
		for _, d := range append(m.Manifests, add) {
			if !have[d.Digest] {
				t.Fatalf("merged index lacks %s", d.Digest)
			}
		}
	})
}

// FuzzParseReferrerTag: a tag is a referrer tag only if it names a valid sha256 digest, and
// ReferrersTag gives back its prefix.
func FuzzParseReferrerTag(f *testing.F) {
	f.Add("sha256-" + subjectHex + ".sig")
	f.Add("sha256-" + subjectHex)
	f.Fuzz(func(t *testing.T, tag string) {
		d, suffix, ok := layout.ParseReferrerTag(tag)
		if !ok {
			return
		}
		if err := layout.ValidateDigest(d); err != nil {
			t.Fatalf("%q gave digest %q: %v", tag, d, err)
		}
		want := layout.ReferrersTag(d)
		if suffix != "" {
			want += "." + suffix
		}
		if want != tag {
			t.Fatalf("%q parsed as %s + %q, which gives %q", tag, d, suffix, want)
		}
	})
}
