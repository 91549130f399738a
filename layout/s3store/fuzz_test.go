package s3store

import (
	"strings"
	"testing"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// FuzzParseKey: a key of an S3 listing (anyone may write the bucket) becomes a spec only when
// it is exactly what PathFor writes under the prefix, with valid names and digests.
func FuzzParseKey(f *testing.F) {
	for _, k := range []string{
		"root/docker/registry/v2/blobs/sha256/ab/ab" + strings.Repeat("0", 62) + "/data",
		"root/docker/registry/v2/repositories/a/b/_manifests/tags/v1/current/link",
		"root/docker/registry/v2/repositories/a/_layers/sha256/" + strings.Repeat("1", 64) + "/link",
		"root/docker/registry/v2/repositories/a/_uploads/x/data",
		"root/docker/registry/v2/repositories/../_manifests/tags/v1/current/link",
		"docker/registry/v2/repositories/A/_manifests/tags/v1/current/link",
	} {
		f.Add("root/", k)
	}
	f.Fuzz(func(t *testing.T, prefix, key string) {
		spec, ok := parseKey(prefix, key)
		if !ok {
			return
		}
		p, err := registry.PathFor(spec)
		if err != nil || prefix+p != key {
			t.Fatalf("parseKey(%q, %q) = %#v, which PathFor writes as %q (%v)", prefix, key, spec, p, err)
		}
		if r := specRepo(spec); r != "" && layout.ValidateRepo(r) != nil {
			t.Fatalf("invalid repository %q accepted", r)
		}
	})
}

// FuzzParseRegistryConfig: a registry config.yml gives valid settings or an error, never a
// bucket or root directory that could make a key outside the root.
func FuzzParseRegistryConfig(f *testing.F) {
	f.Add([]byte("storage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"))
	f.Add([]byte("storage:\n  s3:\n    bucket: fleet\n    rootdirectory: /site\n    regionendpoint: 127.0.0.1:9000\n    secure: false\n    forcepathstyle: true\n"))
	f.Add([]byte("storage:\n  s3: {bucket: b, rootdirectory: /../x}\n"))
	f.Add([]byte("storage: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseRegistryConfig("config.yml", b)
		if err != nil || rs.S3 == nil {
			return
		}
		if err := rs.S3.validate(); err != nil {
			t.Fatalf("accepted invalid settings: %v", err)
		}
		for _, p := range strings.Split(rs.S3.Root, "/") {
			if rs.S3.Root != "" && (p == "" || p == "." || p == "..") {
				t.Fatalf("root %q accepted", rs.S3.Root)
			}
		}
	})
}

// FuzzParseURL: s3://BUCKET[/ROOT] round-trips through String.
func FuzzParseURL(f *testing.F) {
	f.Add("s3://fleet/site/a")
	f.Add("s3://fleet")
	f.Add("s3://Fleet//..")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		back, err := ParseURL(c.String())
		if err != nil || back.Bucket != c.Bucket || back.Root != c.Root {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), back, err)
		}
	})
}
