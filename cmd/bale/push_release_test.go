package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// signedRelease is a docker-registry 2.8 holding a release as real clients make it: three
// cosign-signed images (two single images and a multi-arch index, whose children are signed
// too), a cosign attestation, an SBOM attached with oras to the index, a provenance attached
// to one of its children and left untagged (only a revision), a Helm chart, an artifact, an
// index of depth 3, and an index made with regctl index create --digest whose one child is
// the signed index, which keeps its own tag.
type signedRelease struct {
	reg        *testenv.Registry
	key        *testenv.CosignKey
	signed     []imagetest.Image // the three signed images
	index      imagetest.Image   // the signed index (multiarch/pause:3.2)
	outerTag   string            // the tag of the index whose child is index, in index.Repo
	sbom, prov digest.Digest     // oras attach: of index (tagged), of index.Children[0] (untagged)
	tags       []string          // every repo:tag of the release
	want       map[string]digest.Digest
	manifests  map[string][]digest.Digest // per repository, every manifest below the tags
	list       string                     // an images list naming tags
}

func newSignedRelease(t *testing.T) *signedRelease {
	t.Helper()
	testenv.Need(t, "skopeo")
	for _, tool := range []string{"cosign", "oras", "regctl"} {
		testenv.NeedTool(t, tool)
	}
	root := filepath.Join(t.TempDir(), "src")
	s := &signedRelease{reg: testenv.StartRegistry(t, root), outerTag: "release", want: map[string]digest.Digest{}}
	dir := t.TempDir()
	std := imagetest.Standard()
	for _, img := range std.Images {
		switch img.Name() {
		case "busybox:1.36.1", "kubesphere/kube-apiserver:v1.20.6", "multiarch/pause:3.2":
			p, err := std.WriteDir(dir, img)
			if err != nil {
				t.Fatal(err)
			}
			s.reg.Push(t, "dir:"+p, img.Repo, img.Tag)
			s.signed = append(s.signed, img)
			if img.IsIndex() {
				s.index = img
			}
		}
	}
	if len(s.signed) != 3 || s.index.Repo == "" {
		t.Fatalf("the standard corpus lacks the release's images: %v", s.signed)
	}
	oci := imagetest.OCI11()
	layoutDir := filepath.Join(dir, "oci11")
	if err := oci.WriteOCILayout(layoutDir); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, img := range oci.Images {
		switch img.Name() {
		case "oci11/artifact:thing-1", "oci11/charts/mychart:0.1.0", "oci11/nested:multi-3":
			s.regctl(t, s.reg, "image", "copy", "ocidir://"+layoutDir+":"+img.Tag, s.reg.Addr+"/"+img.Name())
			others = append(others, img.Name())
		}
	}

	s.key = testenv.NewCosignKey(t)
	for _, img := range s.signed {
		s.key.Sign(t, s.reg.Ref(img.Repo, string(img.Digest)))
	}
	for _, c := range s.index.Children {
		s.key.Sign(t, s.reg.Ref(s.index.Repo, string(c)))
	}
	single := s.reg.Ref(s.signed[0].Repo, string(s.signed[0].Digest))
	s.key.Attest(t, single, writeFile(t, dir, "predicate.json", `{"builder":"bale-test"}`), "custom")
	s.sbom = testenv.OrasAttach(t, s.reg.Ref(s.index.Repo, string(s.index.Digest)), sbomType,
		writeFile(t, dir, "sbom.json", `{"spdxVersion":"SPDX-2.3"}`)+":"+sbomType)
	child := s.index.Children[0]
	s.prov = testenv.OrasAttach(t, s.reg.Ref(s.index.Repo, string(child)), provType,
		writeFile(t, dir, "prov.json", `{"predicate":"prov"}`)+":"+provType)
	tagDir := filepath.Join(root, "docker/registry/v2/repositories", s.index.Repo, "_manifests/tags", "sha256-"+child.Encoded())
	if _, err := os.Stat(tagDir); err != nil {
		t.Fatalf("oras attach left no referrers tag: %v", err)
	}
	if err := os.RemoveAll(tagDir); err != nil { // the provenance is left as a revision only
		t.Fatal(err)
	}

	// The index of indexes: its one child is the signed index, which keeps its tag.
	outer := s.reg.Addr + "/" + s.index.Repo + ":" + s.outerTag
	s.regctl(t, s.reg, "index", "create", outer, "--digest", string(s.index.Digest))
	if got := s.children(t, s.reg, s.index.Repo, s.outerTag); !slices.Equal(got, []digest.Digest{s.index.Digest}) {
		t.Fatalf("regctl index create --digest %s: the index lists %v", s.index.Digest, got)
	}

	for _, img := range s.signed {
		s.tags = append(s.tags, img.Name())
	}
	s.tags = append(append(s.tags, s.index.Repo+":"+s.outerTag), others...)
	s.manifests = map[string][]digest.Digest{}
	for _, name := range s.tags {
		repo, tag, _ := strings.Cut(name, ":")
		raw := s.regctl(t, s.reg, "manifest", "get", "--format", "raw-body", s.reg.Addr+"/"+name)
		s.want[name] = digest.FromBytes(raw)
		s.walk(t, repo, tag)
	}
	s.list = writeFile(t, dir, "images.list", strings.Join(s.tags, "\n")+"\n")
	return s
}

// regctl runs regctl against reg over plain HTTP.
func (s *signedRelease) regctl(t *testing.T, reg *testenv.Registry, args ...string) []byte {
	t.Helper()
	return testenv.Regctl(t, "", append([]string{"--host", "reg=" + reg.Addr + ",tls=disabled"}, args...)...)
}

// children returns the manifests the index repo:ref of the source lists, parsed from its bytes.
func (s *signedRelease) children(t *testing.T, reg *testenv.Registry, repo, ref string) []digest.Digest {
	t.Helper()
	sep := ":"
	if strings.HasPrefix(ref, "sha256:") {
		sep = "@"
	}
	raw := s.regctl(t, reg, "manifest", "get", "--format", "raw-body", reg.Addr+"/"+repo+sep+ref)
	var m struct {
		Manifests []struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s%s%s: %v", repo, sep, ref, err)
	}
	var out []digest.Digest
	for _, c := range m.Manifests {
		out = append(out, c.Digest)
	}
	return out
}

// walk records every manifest below repo:ref in the source, each once.
func (s *signedRelease) walk(t *testing.T, repo, ref string) {
	t.Helper()
	for _, c := range s.children(t, s.reg, repo, ref) {
		if !slices.Contains(s.manifests[repo], c) {
			s.manifests[repo] = append(s.manifests[repo], c)
			s.walk(t, repo, string(c))
		}
	}
}

// check reads the release back from dst with the real clients: each tag and every manifest
// below it byte for byte (regctl), every blob of the index of indexes (regctl image copy
// verifies each digest), every cosign signature and the attestation, and the referrers.
func (s *signedRelease) check(t *testing.T, where string, dst *testenv.Registry) {
	t.Helper()
	for _, name := range s.tags {
		raw := s.regctl(t, dst, "manifest", "get", "--format", "raw-body", dst.Addr+"/"+name)
		if got := digest.FromBytes(raw); got != s.want[name] {
			t.Errorf("%s: %s is %s, the source's is %s", where, name, got, s.want[name])
		}
	}
	n := 0
	for repo, ds := range s.manifests {
		for _, d := range ds {
			raw := s.regctl(t, dst, "manifest", "get", "--format", "raw-body", dst.Addr+"/"+repo+"@"+string(d))
			if got := digest.FromBytes(raw); got != d {
				t.Errorf("%s: %s@%s hashes to %s", where, repo, d, got)
			}
			n++
		}
	}
	if n < 7 { // the outer index's tree alone: the signed index, its 2 children; nested: 2 indexes, 2 images
		t.Errorf("%s: only %d manifests below the tags", where, n)
	}
	s.regctl(t, dst, "image", "copy", dst.Addr+"/"+s.index.Repo+":"+s.outerTag, "ocidir://"+filepath.Join(t.TempDir(), "pulled")+":"+s.outerTag)
	for _, img := range s.signed {
		if err := s.key.Verify(t, dst.Ref(img.Repo, img.Tag)); err != nil {
			t.Errorf("%s: cosign verify %s: %v", where, img.Name(), err)
		}
	}
	if err := s.key.Verify(t, dst.Ref(s.index.Repo, string(s.index.Children[1]))); err != nil {
		t.Errorf("%s: cosign verify of the index's child %s: %v", where, s.index.Children[1], err)
	}
	if err := s.key.VerifyAttestation(t, dst.Ref(s.signed[0].Repo, s.signed[0].Tag), "custom"); err != nil {
		t.Errorf("%s: cosign verify-attestation %s: %v", where, s.signed[0].Name(), err)
	}
	for _, r := range []struct {
		subject, want digest.Digest
	}{{s.index.Digest, s.sbom}, {s.index.Children[0], s.prov}} {
		got := referrerDigests(testenv.OrasDiscover(t, dst.Ref(s.index.Repo, string(r.subject)), ""))
		if !slices.Equal(got, []digest.Digest{r.want}) {
			t.Errorf("%s: oras discover %s = %v, want %s", where, r.subject, got, r.want)
		}
	}
}

// TestPushSignedRelease: a signed release with an index of indexes, packed, is pushed whole
// into docker-registry 2.8 and Distribution v3 by bale push with 1, 8 and 16 jobs, and by
// bale copy; each time every index is put only once each manifest it names is complete (a
// registry that checks an index's children refused it, DIGEST_INVALID; MANIFEST_BLOB_UNKNOWN,
// when another image sharing a child wrote the child's link meanwhile, now and then). A proxy
// in front of the registry records every manifest PUT to check that rule on each run, and
// that a manifest several images share is sent once; then regctl, cosign and oras read the
// release back.
func TestPushSignedRelease(t *testing.T) {
	start := time.Now()
	s := newSignedRelease(t)
	bundle := filepath.Join(t.TempDir(), "release.tar.zst")
	mustBale(t, "pack", "--images", s.list, "-o", bundle, "registry:"+s.reg.Root)
	t.Logf("source made and packed in %.1fs", time.Since(start).Seconds())
	kinds := []struct {
		name  string
		start func(testing.TB, string) *testenv.Registry
	}{{"docker-registry 2.8", testenv.StartRegistry}, {"Distribution v3", testenv.StartDistribution3}}
	for _, k := range kinds {
		for _, jobs := range []int{1, 8, 16} {
			t.Run(fmt.Sprintf("push %s jobs %d", k.name, jobs), func(t *testing.T) {
				dst := k.start(t, filepath.Join(t.TempDir(), "dst"))
				w := watchManifests(t, dst)
				mustBale(t, "push", "-q", "--jobs", fmt.Sprint(jobs), "--dest-tls-verify=false", bundle, "docker://"+w.addr)
				where := fmt.Sprintf("pushed into %s, --jobs %d", k.name, jobs)
				w.check(t, where)
				s.check(t, where, dst)
			})
		}
	}
	t.Run("copy docker-registry 2.8", func(t *testing.T) {
		dst := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "dst"))
		w := watchManifests(t, dst)
		mustBale(t, "copy", "-q", "--jobs", "16", "--dest-tls-verify=false", bundle, "docker://"+w.addr)
		w.check(t, "copied into docker-registry 2.8")
		s.check(t, "copied into docker-registry 2.8", dst)
	})
	t.Logf("%.1fs in all", time.Since(start).Seconds())
}

// manifestPut is one PUT /v2/<repo>/manifests/<ref> that reached the registry.
type manifestPut struct {
	repo, ref  string
	body       digest.Digest   // what the registry stores: the request body's digest
	children   []digest.Digest // the manifests the body lists (an index), parsed from it
	start, end time.Time
	status     int
}

// manifestWatch is a reverse proxy on 127.0.0.1 in front of a registry that records every
// manifest PUT passing through it, to check the order in which a push sends manifests: the
// registry itself only shows the outcome, and an index PUT that reads a child's link while
// another request rewrites it fails only now and then.
type manifestWatch struct {
	addr string
	mu   sync.Mutex
	puts []manifestPut
}

func watchManifests(t *testing.T, reg *testenv.Registry) *manifestWatch {
	t.Helper()
	target, err := url.Parse("http://" + reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target) // the Host header stays the proxy's
	w := &manifestWatch{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		repo, ref, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
		if r.Method != http.MethodPut || !ok {
			proxy.ServeHTTP(rw, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p := manifestPut{repo: repo, ref: ref, body: digest.FromBytes(body), start: time.Now()}
		var m struct {
			Manifests []struct{ Digest digest.Digest }
		}
		if json.Unmarshal(body, &m) == nil {
			for _, c := range m.Manifests {
				p.children = append(p.children, c.Digest)
			}
		}
		sw := &statusWriter{ResponseWriter: rw}
		proxy.ServeHTTP(sw, r)
		p.end, p.status = time.Now(), sw.status
		w.mu.Lock()
		w.puts = append(w.puts, p)
		w.mu.Unlock()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return w
}

// check applies the rule to what went through: each manifest an index names is complete in
// the index's repository before the index is put (a PUT of it answered before the index's
// began), and no request writes it there (a PUT by digest or by tag) while the index is put;
// a manifest that several images share is sent by digest once per repository, the other
// images waiting for that one instead of sending it again.
func (w *manifestWatch) check(t *testing.T, where string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	byDigest := map[string]int{}
	indexes := 0
	for _, p := range w.puts {
		if p.status != http.StatusCreated {
			t.Errorf("%s: PUT %s manifest %s answered %d", where, p.repo, p.ref, p.status)
		}
		if strings.HasPrefix(p.ref, "sha256:") && p.status == http.StatusCreated {
			byDigest[p.repo+"@"+p.ref]++
		}
		if len(p.children) == 0 {
			continue
		}
		indexes++
		for _, c := range p.children {
			before := false
			for _, q := range w.puts {
				if q.repo != p.repo || q.body != c {
					continue
				}
				before = before || (q.status == http.StatusCreated && q.end.Before(p.start))
				if q.start.Before(p.end) && q.end.After(p.start) {
					t.Errorf("%s: %s manifest %s was put (as %s) while the index %s naming it was put (as %s)", where, p.repo, c, q.ref, p.body, p.ref)
				}
			}
			if !before {
				t.Errorf("%s: the index %s was put (as %s) into %s before its child %s was there", where, p.body, p.ref, p.repo, c)
			}
		}
	}
	for ref, n := range byDigest {
		if n > 1 {
			t.Errorf("%s: manifest %s was put by digest %d times", where, ref, n)
		}
	}
	if indexes < 4 { // the signed index, the index of indexes, the nested ones, the referrers indexes
		t.Errorf("%s: only %d index PUTs went through the proxy", where, indexes)
	}
}
