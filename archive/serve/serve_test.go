package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// TestSplitRoute: the path after /v2/ splits into name, route and reference at the last
// route marker; anything else is no route.
func TestSplitRoute(t *testing.T) {
	for _, c := range []struct{ path, name, route, ref string }{
		{"a/b/manifests/v1", "a/b", routeManifests, "v1"},
		{"a/manifests/sha256:00", "a", routeManifests, "sha256:00"},
		{"a/blobs/sha256:00", "a", routeBlobs, "sha256:00"},
		{"a/referrers/sha256:00", "a", routeReferrers, "sha256:00"},
		{"a/tags/list", "a", routeTagsList, ""},
		{"blobs/manifests/v1", "blobs", routeManifests, "v1"}, // a repository named like a route
		{"a/manifests/b/blobs/sha256:00", "a/manifests/b", routeBlobs, "sha256:00"},
		{"a/referrers/x/manifests/latest", "a/referrers/x", routeManifests, "latest"},
		{"a/blobs/uploads/", "a", routeBlobs, "uploads/"},
		{"a/blobs/uploads/0123-abc", "a", routeBlobs, "uploads/0123-abc"},
		{"a/manifests/", "", "", ""},
		{"a/manifests/x/y", "", "", ""},
		{"manifests/v1", "", "", ""}, // no name
		{"a/_oci/ext/discover", "", "", ""},
		{"a", "", "", ""},
	} {
		name, route, ref := splitRoute(c.path)
		if name != c.name || route != c.route || ref != c.ref {
			t.Errorf("splitRoute(%q) = %q %q %q, want %q %q %q", c.path, name, route, ref, c.name, c.route, c.ref)
		}
	}
}

// testView is a view of one catalog without its bundle's bytes: enough for every answer but
// a manifest or blob body. It returns the digests and the referrers' descriptors by name.
func testView(t *testing.T) (*View, map[string]digest.Digest, map[digest.Digest]layout.Descriptor) {
	d := map[string]digest.Digest{}
	for _, n := range []string{"subject", "sbom", "sig", "other", "layer"} {
		d[n] = digest.FromString(n) // the test's own names, not bale's output
	}
	sbom := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: d["sbom"], Size: 500,
		ArtifactType: "application/spdx+json", Annotations: map[string]string{"org.opencontainers.image.created": "2000-01-01T00:00:00Z"}}
	sig := layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: d["sig"], Size: 400,
		ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json"}
	c := catalog.New()
	c.Repos["app"] = &catalog.Repo{
		Tags:      map[string]digest.Digest{"v1": d["subject"]},
		Manifests: []digest.Digest{d["subject"], d["sbom"], d["sig"]},
		Referrers: map[digest.Digest]*catalog.ReferrerRecord{
			d["sbom"]: {Subject: d["subject"], ArtifactType: sbom.ArtifactType, Annotations: sbom.Annotations},
			d["sig"]:  {Subject: d["subject"], ArtifactType: sig.ArtifactType},
		},
	}
	c.Repos["other"] = &catalog.Repo{}
	c.Manifests[d["subject"]] = &catalog.ManifestRecord{MediaType: layout.MediaTypeOCIManifest, Size: 300, Blobs: []digest.Digest{d["layer"]}}
	c.Manifests[d["sbom"]] = &catalog.ManifestRecord{MediaType: sbom.MediaType, Size: sbom.Size}
	c.Manifests[d["sig"]] = &catalog.ManifestRecord{MediaType: sig.MediaType, Size: sig.Size}
	s, err := archive.NewSource(&archive.Bundle{Path: "test.tar.zst", Catalog: c})
	if err != nil {
		t.Fatal(err)
	}
	return New(s), d, map[digest.Digest]layout.Descriptor{d["sbom"]: sbom, d["sig"]: sig}
}

// referrersIndex is the response of the referrers API, as a client decodes it.
type referrersIndex struct {
	SchemaVersion int                 `json:"schemaVersion"`
	MediaType     string              `json:"mediaType"`
	Manifests     []layout.Descriptor `json:"manifests"`
}

// TestReferrersAPI: GET and HEAD /v2/<name>/referrers/<digest>, with and without an
// artifactType filter; a digest or repository without referrers is an empty 200.
func TestReferrersAPI(t *testing.T) {
	v, d, descs := testView(t)
	sortedAll := []digest.Digest{d["sbom"], d["sig"]}
	if sortedAll[0] > sortedAll[1] {
		sortedAll[0], sortedAll[1] = sortedAll[1], sortedAll[0]
	}
	for _, c := range []struct {
		name, path string
		want       []digest.Digest
		filtered   bool
	}{
		{"all", "/v2/app/referrers/" + d["subject"].String(), sortedAll, false},
		{"by artifactType", "/v2/app/referrers/" + d["subject"].String() + "?artifactType=application/spdx%2Bjson", []digest.Digest{d["sbom"]}, true},
		{"artifactType none has", "/v2/app/referrers/" + d["subject"].String() + "?artifactType=text/plain", nil, true},
		{"empty artifactType", "/v2/app/referrers/" + d["subject"].String() + "?artifactType=", sortedAll, false},
		{"subject without referrers", "/v2/app/referrers/" + d["sig"].String(), nil, false},
		{"unknown digest", "/v2/app/referrers/" + digest.FromString("nothing").String(), nil, false},
		{"another repository", "/v2/other/referrers/" + d["subject"].String(), nil, false},
		{"unknown repository", "/v2/no/such/referrers/" + d["subject"].String(), nil, false},
		{"sha512 digest", "/v2/app/referrers/sha512:" + strings.Repeat("ab", 64), nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			v.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
			res := rec.Result()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, rec.Body)
			}
			if ct := res.Header.Get("Content-Type"); ct != layout.MediaTypeOCIIndex {
				t.Errorf("Content-Type %q", ct)
			}
			if got := res.Header.Get(HeaderFiltersApplied); (got == "artifactType") != c.filtered || (!c.filtered && got != "") {
				t.Errorf("%s: %q, filtered %v", HeaderFiltersApplied, got, c.filtered)
			}
			if cc := res.Header.Get("Cache-Control"); cc != cacheRevalidate {
				t.Errorf("Cache-Control %q", cc)
			}
			if !strings.Contains(rec.Body.String(), `"manifests":[`) {
				t.Errorf("manifests is not a list: %s", rec.Body)
			}
			var idx referrersIndex
			if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
				t.Fatal(err)
			}
			if idx.SchemaVersion != 2 || idx.MediaType != layout.MediaTypeOCIIndex || len(idx.Manifests) != len(c.want) {
				t.Fatalf("index %+v, want %d manifests", idx, len(c.want))
			}
			for i, m := range idx.Manifests {
				want := descs[c.want[i]]
				if m.Digest != c.want[i] || m.MediaType != want.MediaType || m.Size != want.Size || m.ArtifactType != want.ArtifactType ||
					len(m.Annotations) != len(want.Annotations) || m.Annotations["org.opencontainers.image.created"] != want.Annotations["org.opencontainers.image.created"] {
					t.Errorf("manifests[%d] = %+v, want %+v", i, m, want)
				}
			}
		})
	}

	rec := httptest.NewRecorder()
	v.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/v2/app/referrers/"+d["subject"].String(), nil))
	get := httptest.NewRecorder()
	v.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/v2/app/referrers/"+d["subject"].String(), nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != get.Header().Get("Content-Length") ||
		rec.Header().Get("Content-Type") != layout.MediaTypeOCIIndex {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %q (GET %q), Content-Type %q", rec.Code, rec.Body.Len(),
			rec.Header().Get("Content-Length"), get.Header().Get("Content-Length"), rec.Header().Get("Content-Type"))
	}
}

// TestErrors: each malformed or unknown request gets the status and error code of the
// distribution spec's table; a path with no route is distribution's plain 404.
func TestErrors(t *testing.T) {
	v, d, _ := testView(t)
	sha512 := "sha512:" + strings.Repeat("ab", 64)
	for _, c := range []struct {
		method, path string
		status       int
		code         string // "" for a response that is not an error document
	}{
		{"GET", "/v2/app/manifests/sha256:baddigeststring", 400, codeDigestInvalid},
		{"HEAD", "/v2/app/manifests/sha256:baddigeststring", 400, ""},
		{"GET", "/v2/app/manifests/sha256:" + strings.Repeat("a", 63), 400, codeDigestInvalid},
		{"GET", "/v2/app/manifests/-bad", 400, codeManifestInvalid},
		{"GET", "/v2/app/manifests/" + strings.Repeat("t", 129), 400, codeManifestInvalid},
		{"GET", "/v2/app/blobs/sha256:baddigeststring", 400, codeDigestInvalid},
		{"GET", "/v2/app/blobs/latest", 400, codeDigestInvalid},
		{"GET", "/v2/app/referrers/sha256:baddigeststring", 400, codeDigestInvalid},
		{"GET", "/v2/app/referrers/latest", 400, codeDigestInvalid},
		{"GET", "/v2/App/manifests/v1", 400, codeNameInvalid},
		{"GET", "/v2/a//b/manifests/v1", 400, codeNameInvalid},
		{"GET", "/v2/app-/blobs/" + d["layer"].String(), 400, codeNameInvalid},
		{"GET", "/v2/UP/tags/list", 400, codeNameInvalid},
		{"GET", "/v2/UP/referrers/" + d["subject"].String(), 400, codeNameInvalid},
		{"GET", "/v2/no/such/manifests/v1", 404, codeNameUnknown},
		{"GET", "/v2/no/such/manifests/" + d["subject"].String(), 404, codeNameUnknown},
		{"GET", "/v2/no/such/blobs/" + d["layer"].String(), 404, codeNameUnknown},
		{"GET", "/v2/no/such/tags/list", 404, codeNameUnknown},
		{"GET", "/v2/app/manifests/v2", 404, codeManifestUnknown},
		{"GET", "/v2/app/manifests/" + digest.FromString("nothing").String(), 404, codeManifestUnknown},
		{"GET", "/v2/app/manifests/" + d["layer"].String(), 404, codeManifestUnknown}, // a blob, not a manifest
		{"GET", "/v2/other/manifests/" + d["subject"].String(), 404, codeManifestUnknown},
		{"GET", "/v2/app/manifests/" + sha512, 404, codeManifestUnknown}, // well formed, not stored
		{"GET", "/v2/app/blobs/" + digest.FromString("nothing").String(), 404, codeBlobUnknown},
		{"GET", "/v2/other/blobs/" + d["layer"].String(), 404, codeBlobUnknown},
		{"GET", "/v2/app/blobs/" + sha512, 404, codeBlobUnknown},
		{"GET", "/v2/app/blobs/uploads/0123", 404, codeBlobUploadUnknown},
		{"GET", "/v2/app/_oci/ext/discover", 404, ""},
		{"GET", "/v2/app/manifests/", 404, ""},
		{"POST", "/v2/app/blobs/uploads/", 405, codeUnsupported},
		{"DELETE", "/v2/app/manifests/" + d["subject"].String(), 405, codeUnsupported},
		{"PUT", "/v2/app/manifests/v1", 405, codeUnsupported},
	} {
		rec := httptest.NewRecorder()
		v.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, rec.Code, c.status, rec.Body)
			continue
		}
		if c.code == "" {
			if c.method == http.MethodGet && strings.Contains(rec.Body.String(), `"errors"`) {
				t.Errorf("%s %s: an error document, want plain text: %s", c.method, c.path, rec.Body)
			}
			continue
		}
		var doc struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Code != c.code {
			t.Errorf("%s %s: %v %s, want code %s", c.method, c.path, err, rec.Body, c.code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
	}
}
