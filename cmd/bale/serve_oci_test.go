package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Media types of the OCI 1.1 artifacts the tests write.
const (
	ociEmptyType    = "application/vnd.oci.empty.v1+json"
	ociSPDXType     = "application/spdx+json"
	ociBundleType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	ociCycloneType  = "application/vnd.cyclonedx+json"
	ociExampleType  = "application/vnd.example.config.v1+json" // a config type, no artifactType
	ociEmptyDigest  = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	ociCreatedKey   = "org.opencontainers.image.created"
	ociCreatedValue = "2000-01-01T00:00:00Z"
)

// sha256Of is the digest of b, computed here: expected digests never come from bale.
func sha256Of(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// ociDesc is a descriptor as the tests write and read it.
type ociDesc struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// ociArtifact is an OCI 1.1 image manifest the test wrote: its bytes and what a referrers
// index must say of it.
type ociArtifact struct {
	raw  []byte
	desc ociDesc // as the referrers API lists it
}

// blobSource is a layout.Source of blobs in memory, to write registry storage with
// registry.Store.PutImage.
type blobSource map[digest.Digest][]byte

func (s blobSource) Refs() ([]layout.Ref, error)               { return nil, nil }
func (s blobSource) Resolve(layout.Ref) (digest.Digest, error) { return "", layout.ErrNotFound }
func (s blobSource) ReadManifest(_ string, d digest.Digest) (*layout.Manifest, error) {
	b, ok := s[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", d, layout.ErrNotFound)
	}
	return layout.ParseManifest(b)
}
func (s blobSource) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	b, ok := s[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// ociStorage is registry storage holding the standard corpus and OCI 1.1 referrers, each an
// untagged revision in its subject's repository, as a registry with the referrers API keeps
// them.
type ociStorage struct {
	root   string
	store  *registry.Store
	src    blobSource
	corpus *imagetest.Corpus
	proxy  imagetest.Image // an OCI image manifest: the subject of sbom and sig
	box    imagetest.Image // busybox, a Docker manifest also tagged in library/busybox: the subject of typed
	sbom   ociArtifact     // artifactType application/spdx+json, annotated
	sig    ociArtifact     // artifactType of a sigstore bundle
	typed  ociArtifact     // no artifactType: the referrers API lists its config's media type
}

// newOCIStorage writes the storage under a new temporary directory.
func newOCIStorage(t *testing.T) *ociStorage {
	t.Helper()
	s := &ociStorage{root: filepath.Join(t.TempDir(), "registry"), src: blobSource{}, corpus: imagetest.Standard()}
	var err error
	if s.store, err = registry.Create(s.root); err != nil {
		t.Fatal(err)
	}
	for d, b := range s.corpus.Blobs {
		s.src[d] = b
	}
	for _, img := range s.corpus.Images {
		s.put(t, layout.Ref{Repo: img.Repo, Tag: img.Tag}, img.Digest)
		switch {
		case img.Repo == "kubesphere/kube-proxy":
			s.proxy = img
		case img.Repo == "busybox" && img.Tag == "1.36.1":
			s.box = img
		}
	}
	if s.proxy.MediaType != imagetest.MediaTypeOCIManifest || s.box.Digest == "" {
		t.Fatalf("the standard corpus changed: kube-proxy is %s, busybox %q", s.proxy.MediaType, s.box.Digest)
	}
	s.sbom = s.attach(t, s.proxy, ociSPDXType, "", []byte(`{"spdxVersion":"SPDX-2.3","name":"kube-proxy"}`),
		map[string]string{ociCreatedKey: ociCreatedValue, "org.example.note": "sbom"})
	s.sig = s.attach(t, s.proxy, ociBundleType, "", []byte(`{"mediaType":"`+ociBundleType+`"}`), nil)
	s.typed = s.attach(t, s.box, "", ociExampleType, []byte("typed layer\n"), nil)
	return s
}

// put stores manifest d (and what it names) in ref's repository, tagged when ref has a tag.
func (s *ociStorage) put(t *testing.T, ref layout.Ref, d digest.Digest) {
	t.Helper()
	img, err := layout.LoadImage(s.src, ref.Repo, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutImage(ref, img, s.src); err != nil {
		t.Fatal(err)
	}
}

// attach writes an OCI 1.1 artifact whose subject is subject's manifest: artifactType
// (none when ""), the empty config (or a small config of configType when set), one layer of
// content, and annotations; it is stored untagged in subject's repository.
func (s *ociStorage) attach(t *testing.T, subject imagetest.Image, artifactType, configType string, content []byte, annotations map[string]string) ociArtifact {
	t.Helper()
	config, configMT := []byte("{}"), ociEmptyType
	if configType != "" {
		config, configMT = []byte(`{"example":true}`), configType
	}
	if configType == "" && sha256Of(config) != ociEmptyDigest {
		t.Fatalf("the empty config hashes to %s", sha256Of(config))
	}
	layerMT := artifactType
	if layerMT == "" {
		layerMT = "application/octet-stream"
	}
	m := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType,omitempty"`
		Config        ociDesc           `json:"config"`
		Layers        []ociDesc         `json:"layers"`
		Subject       ociDesc           `json:"subject"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{
		SchemaVersion: 2, MediaType: imagetest.MediaTypeOCIManifest, ArtifactType: artifactType,
		Config:      ociDesc{MediaType: configMT, Digest: sha256Of(config), Size: int64(len(config))},
		Layers:      []ociDesc{{MediaType: layerMT, Digest: sha256Of(content), Size: int64(len(content))}},
		Subject:     ociDesc{MediaType: subject.MediaType, Digest: subject.Digest, Size: int64(len(s.corpus.Blobs[subject.Digest]))},
		Annotations: annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256Of(raw)
	s.src[sha256Of(config)], s.src[sha256Of(content)], s.src[d] = config, content, raw
	s.put(t, layout.Ref{Repo: subject.Repo, Digest: d}, d)
	at := artifactType
	if at == "" {
		at = configMT // the spec's rule for an image manifest without artifactType
	}
	return ociArtifact{raw: raw, desc: ociDesc{MediaType: imagetest.MediaTypeOCIManifest, Digest: d, Size: int64(len(raw)), ArtifactType: at, Annotations: annotations}}
}

// ociGet sends method to url with the request headers (key, value pairs) and returns the
// response with its body read.
func ociGet(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// ociReferrers is a referrers API response.
type ociReferrers struct {
	SchemaVersion int       `json:"schemaVersion"`
	MediaType     string    `json:"mediaType"`
	Manifests     []ociDesc `json:"manifests"`
}

// checkReferrers asks srv for the referrers of subject in repo (of artifactType unless "")
// and checks that the answer is an OCI index listing want, sorted by digest, with the
// fields the test wrote.
func checkReferrers(t *testing.T, srv *testenv.Registry, repo string, subject digest.Digest, artifactType string, want ...ociArtifact) {
	t.Helper()
	url := "http://" + srv.Addr + "/v2/" + repo + "/referrers/" + subject.String()
	if artifactType != "" {
		url += "?artifactType=" + strings.ReplaceAll(artifactType, "+", "%2B")
	}
	resp, body := ociGet(t, http.MethodGet, url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != imagetest.MediaTypeOCIIndex {
		t.Fatalf("GET %s: %s, Content-Type %q: %s", url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if got := resp.Header.Get("OCI-Filters-Applied"); (artifactType != "") != (got == "artifactType") {
		t.Errorf("GET %s: OCI-Filters-Applied %q", url, got)
	}
	var idx ociReferrers
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != imagetest.MediaTypeOCIIndex || idx.Manifests == nil {
		t.Errorf("GET %s: not an OCI index with a manifests list: %s", url, body)
	}
	slices.SortFunc(want, func(a, b ociArtifact) int { return strings.Compare(string(a.desc.Digest), string(b.desc.Digest)) })
	if len(idx.Manifests) != len(want) {
		t.Fatalf("GET %s: %d referrers, want %d: %s", url, len(idx.Manifests), len(want), body)
	}
	for i, w := range want {
		got := idx.Manifests[i]
		if got.Digest != w.desc.Digest || got.MediaType != w.desc.MediaType || got.Size != w.desc.Size ||
			got.ArtifactType != w.desc.ArtifactType || !mapsEqual(got.Annotations, w.desc.Annotations) {
			t.Errorf("GET %s: manifests[%d] = %+v, want %+v", url, i, got, w.desc)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestServeReferrers: bale serve answers the OCI 1.1 referrers API from the catalog of the
// bundle (artifacts packed from registry storage, where they are untagged revisions found by
// their subject), with the artifactType filter; a patch served with its base adds its own.
// Errors follow the spec's codes, a manifest fetched by tag is revalidated, one fetched by
// digest cached, and oras discover lists the referrers.
func TestServeReferrers(t *testing.T) {
	s := newOCIStorage(t)
	work := t.TempDir()
	base := filepath.Join(work, "base.tar.zst")
	mustBale(t, "pack", "-o", base, "registry:"+s.root)
	srv := startServe(t, base)
	addr := "http://" + srv.Addr

	t.Run("referrers", func(t *testing.T) {
		checkReferrers(t, srv, s.proxy.Repo, s.proxy.Digest, "", s.sbom, s.sig)
		checkReferrers(t, srv, s.proxy.Repo, s.proxy.Digest, ociSPDXType, s.sbom)
		checkReferrers(t, srv, s.proxy.Repo, s.proxy.Digest, ociBundleType, s.sig)
		checkReferrers(t, srv, s.proxy.Repo, s.proxy.Digest, "text/plain")
		checkReferrers(t, srv, s.box.Repo, s.box.Digest, "", s.typed)
		checkReferrers(t, srv, s.box.Repo, s.box.Digest, ociExampleType, s.typed)
		checkReferrers(t, srv, "library/busybox", s.box.Digest, "")                 // the same manifest, another repository
		checkReferrers(t, srv, s.proxy.Repo, s.sbom.desc.Digest, "")                // a referrer without referrers
		checkReferrers(t, srv, s.proxy.Repo, sha256Of([]byte("no such thing")), "") // unknown digest
		checkReferrers(t, srv, "no/such/repo", s.proxy.Digest, "")

		resp, body := ociGet(t, http.MethodHead, addr+"/v2/"+s.proxy.Repo+"/referrers/"+s.proxy.Digest.String())
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != imagetest.MediaTypeOCIIndex {
			t.Errorf("HEAD referrers: %s, %d body bytes, Content-Type %q", resp.Status, len(body), resp.Header.Get("Content-Type"))
		}
		// Each referrer is served by digest, byte for byte, and so are its blobs.
		for _, a := range []ociArtifact{s.sbom, s.sig} {
			resp, body := ociGet(t, http.MethodGet, addr+"/v2/"+s.proxy.Repo+"/manifests/"+a.desc.Digest.String())
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, a.raw) || resp.Header.Get("Content-Type") != imagetest.MediaTypeOCIManifest {
				t.Errorf("GET the referrer %s: %s, Content-Type %q, same bytes %v", a.desc.Digest, resp.Status, resp.Header.Get("Content-Type"), bytes.Equal(body, a.raw))
			}
		}
		if resp, body := ociGet(t, http.MethodGet, addr+"/v2/"+s.proxy.Repo+"/blobs/"+ociEmptyDigest); resp.StatusCode != http.StatusOK || string(body) != "{}" {
			t.Errorf("GET the empty config: %s %q", resp.Status, body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v2/" + s.proxy.Repo + "/manifests/sha256:baddigeststring", 400, "DIGEST_INVALID"},
			{"/v2/" + s.proxy.Repo + "/blobs/sha256:baddigeststring", 400, "DIGEST_INVALID"},
			{"/v2/" + s.proxy.Repo + "/referrers/sha256:baddigeststring", 400, "DIGEST_INVALID"},
			{"/v2/" + s.proxy.Repo + "/referrers/" + s.proxy.Tag, 400, "DIGEST_INVALID"},
			{"/v2/" + s.proxy.Repo + "/manifests/.bad-tag", 400, "MANIFEST_INVALID"},
			{"/v2/Kubesphere/kube-proxy/manifests/" + s.proxy.Tag, 400, "NAME_INVALID"},
			{"/v2/kubesphere/kube-proxy-/tags/list", 400, "NAME_INVALID"},
			{"/v2/no/such/manifests/" + s.proxy.Tag, 404, "NAME_UNKNOWN"},
			{"/v2/" + s.proxy.Repo + "/manifests/no-such-tag", 404, "MANIFEST_UNKNOWN"},
			{"/v2/" + s.proxy.Repo + "/manifests/" + s.box.Digest.String(), 404, "MANIFEST_UNKNOWN"},
			{"/v2/" + s.proxy.Repo + "/blobs/" + sha256Of([]byte("no such blob")).String(), 404, "BLOB_UNKNOWN"},
		} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, body := ociGet(t, method, addr+c.path)
				if resp.StatusCode != c.status {
					t.Errorf("%s %s: %s, want %d", method, c.path, resp.Status, c.status)
				}
				if method == http.MethodGet && !strings.Contains(string(body), `"code":"`+c.code+`"`) {
					t.Errorf("GET %s: %s, want code %s", c.path, body, c.code)
				}
			}
		}
		// A route serve does not have is a plain 404, as distribution's.
		if resp, body := ociGet(t, http.MethodGet, addr+"/v2/"+s.proxy.Repo+"/_oci/ext/discover"); resp.StatusCode != 404 || strings.Contains(string(body), "errors") {
			t.Errorf("an unknown route: %s %s", resp.Status, body)
		}
	})

	t.Run("cache", func(t *testing.T) {
		byTag := addr + "/v2/" + s.proxy.Repo + "/manifests/" + s.proxy.Tag
		byDigest := addr + "/v2/" + s.proxy.Repo + "/manifests/" + s.proxy.Digest.String()
		layer := addr + "/v2/" + s.proxy.Repo + "/blobs/" + s.sbom.desc.Digest.String()
		raw := s.corpus.Blobs[s.proxy.Digest]
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, c := range []struct {
				url, cache string
				immutable  bool
			}{{byTag, "no-cache", false}, {byDigest, "max-age=31536000", true}, {layer, "max-age=31536000", true}} {
				resp, body := ociGet(t, method, c.url)
				cc := resp.Header.Get("Cache-Control")
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(cc, c.cache) || strings.Contains(cc, "immutable") != c.immutable {
					t.Errorf("%s %s: %s, Cache-Control %q, want %q", method, c.url, resp.Status, cc, c.cache)
				}
				if c.url != layer {
					if dcd := resp.Header.Get("Docker-Content-Digest"); dcd != s.proxy.Digest.String() {
						t.Errorf("%s %s: Docker-Content-Digest %q, want %s", method, c.url, dcd, s.proxy.Digest)
					}
					if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(raw)) {
						t.Errorf("%s %s: Content-Length %q, want %d", method, c.url, cl, len(raw))
					}
					if method == http.MethodGet && !bytes.Equal(body, raw) {
						t.Errorf("GET %s: not the manifest's bytes", c.url)
					}
				}
				if c.url == byTag && resp.Header.Get("Last-Modified") != "" {
					t.Errorf("%s %s: Last-Modified %q on a manifest named by a tag", method, c.url, resp.Header.Get("Last-Modified"))
				}
			}
		}
		// Revalidating a tag: the ETag is the digest.
		if resp, _ := ociGet(t, http.MethodGet, byTag, "If-None-Match", `"`+s.proxy.Digest.String()+`"`); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET by tag with If-None-Match of its digest: %s, want 304", resp.Status)
		}
		if resp, _ := ociGet(t, http.MethodGet, byTag, "If-None-Match", `"`+s.box.Digest.String()+`"`); resp.StatusCode != http.StatusOK {
			t.Errorf("GET by tag with If-None-Match of another digest: %s, want 200", resp.Status)
		}
	})

	t.Run("patch", func(t *testing.T) {
		// Release 1.1 adds a CycloneDX SBOM of kube-proxy, carried by the patch alone.
		cdx := s.attach(t, s.proxy, ociCycloneType, "", []byte(`{"bomFormat":"CycloneDX"}`), map[string]string{ociCreatedKey: ociCreatedValue})
		patch := filepath.Join(work, "patch.tar.zst")
		mustBale(t, "pack", "--base", base, "-o", patch, "registry:"+s.root)
		both := startServe(t, base, patch)
		checkReferrers(t, both, s.proxy.Repo, s.proxy.Digest, "", s.sbom, s.sig, cdx)
		checkReferrers(t, both, s.proxy.Repo, s.proxy.Digest, ociCycloneType, cdx)
		checkReferrers(t, both, s.box.Repo, s.box.Digest, "", s.typed)
		checkReferrers(t, srv, s.proxy.Repo, s.proxy.Digest, "", s.sbom, s.sig) // the base alone
		if resp, body := ociGet(t, http.MethodGet, "http://"+both.Addr+"/v2/"+s.proxy.Repo+"/manifests/"+cdx.desc.Digest.String()); resp.StatusCode != 200 || !bytes.Equal(body, cdx.raw) {
			t.Errorf("GET the patch's referrer: %s, same bytes %v", resp.Status, bytes.Equal(body, cdx.raw))
		}
	})

	t.Run("oras discover", func(t *testing.T) {
		testenv.NeedTool(t, "oras")
		var want []digest.Digest
		for _, a := range []ociArtifact{s.sbom, s.sig} {
			want = append(want, a.desc.Digest)
		}
		slices.Sort(want)
		got := func(ds []testenv.Descriptor) []digest.Digest {
			var out []digest.Digest
			for _, d := range ds {
				out = append(out, d.Digest)
			}
			slices.Sort(out)
			return out
		}
		ref := srv.Addr + "/" + s.proxy.Repo + ":" + s.proxy.Tag
		if ds := got(testenv.OrasDiscover(t, ref, "")); !slices.Equal(ds, want) {
			t.Errorf("oras discover %s = %v, want %v", ref, ds, want)
		}
		if ds := got(testenv.OrasDiscover(t, ref, ociSPDXType)); !slices.Equal(ds, []digest.Digest{s.sbom.desc.Digest}) {
			t.Errorf("oras discover --artifact-type %s %s = %v, want %s", ociSPDXType, ref, ds, s.sbom.desc.Digest)
		}
	})
}

// conformanceSuites is the junit.xml the conformance suite writes.
type conformanceSuites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Suites   []struct {
		Cases []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// conformanceSummary holds what the suite's summary table says.
type conformanceSummary struct {
	counts map[string]int    // "Pass", "FAIL", "Error", "Skip", "Disabled", "Total"
	apis   map[string]string // API name -> Pass, FAIL, Skip, Disabled, Unknown
}

var (
	conformanceCountRE = regexp.MustCompile(`(?m)^  (Pass|FAIL|Error|Skip|Disabled|Total)\.+: +(\d+)$`)
	conformanceAPIRE   = regexp.MustCompile(`(?m)^  ([A-Z][A-Za-z ]+?)\.+: +(Pass|FAIL|Error|Skip|Disabled|Unknown)$`)
)

// parseConformance reads the summary the suite prints on stdout.
func parseConformance(out string) conformanceSummary {
	s := conformanceSummary{counts: map[string]int{}, apis: map[string]string{}}
	for _, m := range conformanceCountRE.FindAllStringSubmatch(out, -1) {
		s.counts[m[1]], _ = strconv.Atoi(m[2])
	}
	if i := strings.Index(out, "API conformance:"); i >= 0 {
		for _, m := range conformanceAPIRE.FindAllStringSubmatch(out[i:], -1) {
			if _, ok := s.apis[m[1]]; !ok {
				s.apis[m[1]] = m[2]
			}
		}
	}
	return s
}

// TestConformance runs the OCI distribution-spec conformance suite (the pinned `conformance`
// binary) against bale serve in its read-only mode: pull, tag listing and the referrers API
// over a tag, manifests, blobs and a subject of the test bundle; push and delete disabled.
// It must report no failure and have run the referrers test. The suite may panic after
// printing its summary (ReportResultsYAML): a non-zero exit is accepted only when the summary
// is complete and says 0 failures.
func TestConformance(t *testing.T) {
	bin := testenv.NeedTool(t, "conformance")
	s := newOCIStorage(t)
	bundle := filepath.Join(t.TempDir(), "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+s.root)
	srv := startServe(t, bundle)

	manifests := []string{s.proxy.Digest.String(), s.sbom.desc.Digest.String(), s.sig.desc.Digest.String()}
	var blobs []string
	for _, raw := range [][]byte{s.corpus.Blobs[s.proxy.Digest], s.sbom.raw, s.sig.raw} {
		m, err := layout.ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.Blobs() {
			if !slices.Contains(blobs, b.Digest.String()) {
				blobs = append(blobs, b.Digest.String())
			}
		}
	}
	results := filepath.Join(t.TempDir(), "results")
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"OCI_REGISTRY=" + srv.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=" + s.proxy.Repo,
		"OCI_REPO2=" + s.box.Repo,
		"OCI_API_PULL=true",
		"OCI_API_PUSH=false",
		"OCI_API_BLOBS_DELETE=false",
		"OCI_API_MANIFESTS_DELETE=false",
		"OCI_API_TAGS_DELETE=false",
		"OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		// Blobs must carry Docker-Content-Digest. The manifest check cannot be asked for in
		// read-only mode: the suite reads the header only from responses to manifests it
		// pushed, so it would fail every one (TestServeReferrers checks the header instead).
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_RO_DATA_TAGS=" + s.proxy.Tag,
		"OCI_RO_DATA_MANIFESTS=" + strings.Join(manifests, " "),
		"OCI_RO_DATA_BLOBS=" + strings.Join(blobs, " "),
		"OCI_RO_DATA_REFERRERS=" + s.proxy.Digest.String(),
		"OCI_RESULTS_DIR=" + results,
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.ToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir, cmd.Env = home, env // no oci-conformance.yaml of ours is read, no OCI_* of the developer's
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out := stdout.String()
	sum := parseConformance(out)
	t.Logf("conformance against bale serve: %d passed, %d failed, %d errors, %d skipped, %d disabled, of %d; Referrers API: %s",
		sum.counts["Pass"], sum.counts["FAIL"], sum.counts["Error"], sum.counts["Skip"], sum.counts["Disabled"], sum.counts["Total"], sum.apis["Referrers"])
	if i := strings.Index(out, "OCI Conformance Result:"); i >= 0 {
		t.Logf("summary:\n%s", out[i:])
	}
	if _, ok := sum.counts["Total"]; !ok || len(sum.apis) == 0 {
		t.Fatalf("conformance printed no complete summary (%v)\nstdout:\n%s\nstderr:\n%s", runErr, out, stderr.String())
	}
	failed := sum.counts["FAIL"] + sum.counts["Error"]
	if failed != 0 {
		t.Errorf("conformance: %d failed, %d errors\nstdout:\n%s\nstderr:\n%s", sum.counts["FAIL"], sum.counts["Error"], out, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("conformance timed out after %s", testenv.ToolTimeout)
	}
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("running conformance: %v", runErr)
	}
	if runErr != nil && failed == 0 {
		t.Logf("conformance exited %v after its summary (0 failures): tolerated\nstderr:\n%s", runErr, lastLines(stderr.String(), 10))
	}
	for _, api := range []string{"Referrers", "Manifest get by tag", "Manifest get by digest", "Manifest head by tag",
		"Manifest head by digest", "Blob get", "Blob head", "Tag listing", "Ping"} {
		if got := sum.apis[api]; got != "Pass" {
			t.Errorf("conformance: API %q is %q, want Pass", api, got)
		}
	}
	if sum.counts["Pass"] == 0 {
		t.Error("conformance passed no test")
	}

	// junit.xml, when the suite got that far, must agree.
	data, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("no junit.xml (the suite stopped after its summary)")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var ju conformanceSuites
	if err := xml.Unmarshal(data, &ju); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	referrers := 0
	for _, suite := range ju.Suites {
		for _, c := range suite.Cases {
			if strings.HasSuffix(c.Name, "/referrers") && strings.Contains(c.Name, "read-only") {
				referrers++
				if c.Status != "passed" {
					t.Errorf("junit.xml: %s is %q", c.Name, c.Status)
				}
			}
		}
	}
	if ju.Failures != 0 || ju.Errors != 0 || referrers == 0 {
		t.Errorf("junit.xml: %d tests, %d failures, %d errors, %d read-only referrers tests", ju.Tests, ju.Failures, ju.Errors, referrers)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
