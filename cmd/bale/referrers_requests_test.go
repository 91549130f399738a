package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// proxiedRequest is one request that went through a countingProxy.
type proxiedRequest struct {
	method, path string
	status       int
	start, end   int // order of arrival and of completion, over every request
}

// countingProxy is a reverse proxy on 127.0.0.1 (a free port) in front of a registry that
// records every request: docker-registry's access log is off in the configuration testenv
// writes (log level warn, accesslog disabled), so the requests are counted here.
type countingProxy struct {
	Addr string
	mu   sync.Mutex
	seq  int
	reqs []*proxiedRequest
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // URLs the registry builds point back at the proxy
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &proxiedRequest{method: r.Method, path: r.URL.Path}
		p.mu.Lock()
		p.seq++
		req.start = p.seq
		p.reqs = append(p.reqs, req)
		p.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.seq++
		req.status, req.end = sw.status, p.seq
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.Addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// take returns the requests recorded since the last take and forgets them.
func (p *countingProxy) take() []*proxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// requestCounts is what one bale run asked the registry about referrers and tags.
type requestCounts struct {
	total     int
	referrers map[string]int // GET /v2/<repo>/referrers/<digest>, by "<repo>@<digest>"
	tagLists  map[string]int // GET /v2/<repo>/tags/list, by repository
	// afterNotFound counts the referrers requests made after one was answered 404.
	afterNotFound int
	firstStatus   int // status of the first referrers request, 0 when none
}

func countRequests(reqs []*proxiedRequest) requestCounts {
	c := requestCounts{total: len(reqs), referrers: map[string]int{}, tagLists: map[string]int{}}
	notFoundEnd := 0 // completion order of the first referrers request answered 404
	for _, r := range reqs {
		rest, ok := strings.CutPrefix(r.path, "/v2/")
		if !ok {
			continue
		}
		if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok {
			c.tagLists[repo]++
			continue
		}
		if i := strings.LastIndex(rest, "/referrers/"); i > 0 {
			c.referrers[rest[:i]+"@"+rest[i+len("/referrers/"):]]++
			if c.firstStatus == 0 {
				c.firstStatus = r.status
			}
			if r.status == http.StatusNotFound && (notFoundEnd == 0 || r.end < notFoundEnd) {
				notFoundEnd = r.end
			}
		}
	}
	if notFoundEnd > 0 {
		for _, r := range reqs {
			if strings.Contains(r.path, "/referrers/") && r.start > notFoundEnd {
				c.afterNotFound++
			}
		}
	}
	return c
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestReferrerRequests counts what `bale pack` asks a live registry without the referrers API
// (docker-registry 2.8) to find referrers (issue #12): at most one referrers API request per
// manifest packed and none after the first 404, and at most one tag list per repository
// beyond what the same pack with --no-referrers asks. Every tag (the registry's _catalog) and
// an image list naming 2 images; a cosign signature and an SBOM attached with oras make
// discovery find something. The bounds come from the images pushed, never from bale's output.
func TestReferrerRequests(t *testing.T) {
	testenv.Need(t, "skopeo")
	testenv.Need(t, "docker-registry")
	testenv.NeedTool(t, "cosign")
	testenv.NeedTool(t, "oras")
	tmp := t.TempDir()
	reg := testenv.StartRegistry(t, filepath.Join(tmp, "src"))

	// A few images of the standard corpus: one digest under two tags, a single image (signed)
	// and a multi-arch index (with an SBOM attached), in three repositories.
	const (
		signedName   = "kubesphere/kube-apiserver:v1.20.6"
		attachedName = "multiarch/pause:3.2"
	)
	pick := map[string]bool{"busybox:1.36.1": true, "busybox:latest": true, signedName: true, attachedName: true}
	c := imagetest.Standard()
	var pushed []imagetest.Image
	var signed, attached imagetest.Image
	dir := filepath.Join(tmp, "dirs")
	for _, img := range c.Images {
		if !pick[img.Name()] {
			continue
		}
		p, err := c.WriteDir(dir, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
		pushed = append(pushed, img)
		switch img.Name() {
		case signedName:
			signed = img
		case attachedName:
			attached = img
		}
	}
	if len(pushed) != len(pick) || signed.Repo == "" || !attached.IsIndex() {
		t.Fatalf("the standard corpus lacks some of %v (found %d; %s must be an index)", pick, len(pushed), attachedName)
	}
	testenv.NewCosignKey(t).Sign(t, reg.Ref(signed.Repo, string(signed.Digest)))
	sbom := filepath.Join(tmp, "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","name":"pause"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.OrasAttach(t, reg.Ref(attached.Repo, attached.Tag), sbomType, sbom+":"+sbomType)

	// Manifests packed, from what was pushed: each image's own and its children's (once per
	// repository and digest), the signature (tag sha256-<hex>.sig), and for the SBOM its
	// manifest and the referrers-tag index (sha256-<hex>) oras keeps on a registry without the
	// referrers API.
	manifests := func(images []imagetest.Image) int {
		seen := map[string]bool{}
		for _, img := range images {
			for _, d := range append([]digest.Digest{img.Digest}, img.Children...) {
				seen[img.Repo+"@"+string(d)] = true
			}
		}
		n := len(seen)
		for _, img := range images {
			switch img.Name() {
			case signedName:
				n++ // the signature
			case attachedName:
				n += 2 // the SBOM and the referrers-tag index
			}
		}
		return n
	}
	repos := func(images []imagetest.Image) map[string]bool {
		out := map[string]bool{}
		for _, img := range images {
			out[img.Repo] = true
		}
		return out
	}
	listed := []imagetest.Image{signed, attached}
	list := filepath.Join(tmp, "images.list")
	if err := os.WriteFile(list, []byte(signedName+"\n"+attachedName+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	proxy := startCountingProxy(t, reg.Addr)
	src := "docker://" + proxy.Addr
	pack := func(name string, args ...string) requestCounts {
		t.Helper()
		proxy.take()
		out := filepath.Join(tmp, name+".tar.zst")
		mustBale(t, append(append([]string{"pack", "--src-tls-verify=false", "-q", "-o", out}, args...), src)...)
		return countRequests(proxy.take())
	}
	for _, tc := range []struct {
		name   string
		args   []string
		images []imagetest.Image
	}{
		{"every-tag", nil, pushed},
		{"images-list", []string{"--images", list}, listed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantManifests, wantRepos := manifests(tc.images), repos(tc.images)
			base := pack(tc.name+"-none", append([]string{"--no-referrers"}, tc.args...)...)
			disc := pack(tc.name, tc.args...)
			t.Logf("--no-referrers: %d requests, %d referrers API, tags/list %v", base.total, sumCounts(base.referrers), base.tagLists)
			t.Logf("discovery:      %d requests, %d referrers API %v (first answered %d), tags/list %v; %d manifests in %d repositories pushed",
				disc.total, sumCounts(disc.referrers), disc.referrers, disc.firstStatus, disc.tagLists, wantManifests, len(wantRepos))

			if n := sumCounts(base.referrers); n != 0 {
				t.Errorf("--no-referrers asked the referrers API %d times, want 0", n)
			}
			// Referrers API: at most one request per manifest, and none after a 404.
			if n := sumCounts(disc.referrers); n == 0 || n > wantManifests {
				t.Errorf("discovery asked the referrers API %d times, want 1 to %d (one per manifest at most)", n, wantManifests)
			}
			for k, n := range disc.referrers {
				if n > 1 {
					t.Errorf("discovery asked the referrers API about %s %d times, want once", k, n)
				}
			}
			if disc.firstStatus != http.StatusNotFound {
				t.Errorf("the first referrers API request was answered %d; docker-registry 2.8 has no referrers API (404)", disc.firstStatus)
			}
			if disc.afterNotFound != 0 {
				t.Errorf("discovery asked the referrers API %d more times after a 404, want none", disc.afterNotFound)
			}
			// Tag lists: at most one per repository for discovery beyond what the pack needs anyway.
			extra := 0
			for repo, n := range disc.tagLists {
				d := n - base.tagLists[repo]
				switch {
				case d > 1:
					t.Errorf("discovery listed the tags of %s %d times beyond --no-referrers (%d), want at most once", repo, d, base.tagLists[repo])
				case d > 0 && !wantRepos[repo]:
					t.Errorf("discovery listed the tags of %s, whose images were not packed", repo)
				}
				extra += max(d, 0)
			}
			if extra > len(wantRepos) {
				t.Errorf("discovery listed tags %d times beyond --no-referrers, want at most %d (one per repository)", extra, len(wantRepos))
			}
		})
	}

	// What discovery found with the list (a sanity check that it did its work; the counts
	// above do not depend on it): the signature under the signed image, the SBOM under the index.
	res := mustBale(t, "list", "--json", filepath.Join(tmp, "images-list.tar.zst"))
	var doc struct {
		Images []struct {
			Repo      string `json:"repo"`
			Tag       string `json:"tag"`
			Referrers []struct {
				Kind string `json:"kind"`
			} `json:"referrers"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("bale list --json: %v\n%s", err, res.stdout)
	}
	kinds := map[string][]string{}
	for _, im := range doc.Images {
		for _, r := range im.Referrers {
			kinds[im.Repo+":"+im.Tag] = append(kinds[im.Repo+":"+im.Tag], r.Kind)
		}
	}
	if !strings.Contains(strings.Join(kinds[signedName], ","), "sig") || !strings.Contains(strings.Join(kinds[attachedName], ","), sbomType) {
		t.Errorf("bale list --json of the list's bundle: referrers %v, want a sig under %s and %s under %s", kinds, signedName, sbomType, attachedName)
	}
}
