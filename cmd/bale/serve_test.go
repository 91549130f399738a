package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/testenv"
)

// startServe runs bale serve on a free 127.0.0.1 port and returns a testenv.Registry naming
// it (for CheckPull); the process is killed by PID when the test ends.
func startServe(t *testing.T, bundles ...string) *testenv.Registry {
	t.Helper()
	return startServeArgs(t, "http", append([]string{"serve", "--addr", "127.0.0.1:0"}, bundles...)...)
}

func startServeArgs(t *testing.T, scheme string, args ...string) *testenv.Registry {
	t.Helper()
	reg, _ := startServeLogged(t, scheme, args...)
	return reg
}

// startServeLogged starts bale serve with args, waits for the line that says where it listens
// (serving ... on ...; lines before it, such as who signed, are skipped), and returns the
// server and a function that gives the lines it has written to stderr since.
func startServeLogged(t *testing.T, scheme string, args ...string) (*testenv.Registry, func() []string) {
	t.Helper()
	cmd := exec.Command(baleBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	first := make(chan string, 1)
	var mu sync.Mutex
	var later []string
	go func() {
		sc := bufio.NewScanner(stderr)
		found, before := false, ""
		defer func() {
			if !found { // it stopped before it listened: what it said
				first <- before
			}
		}()
		for sc.Scan() {
			if !found { // what it says before (who signed the bundles) is not kept
				if found = strings.HasPrefix(sc.Text(), "serving "); found {
					first <- sc.Text()
				}
				before += sc.Text() + "\n"
				continue
			}
			mu.Lock()
			later = append(later, sc.Text())
			mu.Unlock()
		}
	}()
	logged := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(later)
	}
	select {
	case l := <-first:
		m := regexp.MustCompile(`on ` + scheme + `://(127\.0\.0\.1:\d+)`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bale serve said %q", l)
		}
		return &testenv.Registry{Addr: m[1]}, logged
	case <-time.After(20 * time.Second):
		t.Fatal("bale serve did not start")
	}
	return nil, nil
}

// TestServe: every tag of the corpus pulls with skopeo copy --all from bale serve of its
// bundle with its digests; a Range request gets the bytes of the blob file; a split bundle
// and a bundle of one zstd frame without a seek table (as bale 0.1 wrote) serve too.
func TestServe(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+f.registry)
	srv := startServe(t, bundle)
	for _, img := range f.corpus.Images {
		srv.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
	if got, want := srv.Catalog(t), testenv.StartRegistry(t, f.registry).Catalog(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("_catalog: %v, docker-registry says %v", got, want)
	}

	// Range: the bytes of the largest blob file, 10 to 99.
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(f.registry, "docker/registry/v2/blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	data, _ := os.ReadFile(biggest)
	d := "sha256:" + filepath.Base(filepath.Dir(biggest))
	repo := ""
	for _, im := range f.corpus.Images { // a repository that links the blob
		if _, err := os.Stat(filepath.Join(f.registry, "docker/registry/v2/repositories", im.Repo, "_layers/sha256", filepath.Base(filepath.Dir(biggest)))); err == nil {
			repo = im.Repo
		}
	}
	if repo == "" {
		t.Fatal("no repository links the largest blob")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+"/v2/"+repo+"/blobs/"+d, nil)
	req.Header.Set("Range", "bytes=10-99")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:100]) {
		t.Errorf("Range 10-99 of %s: %s, %d bytes, equal %v", d, resp.Status, len(body), bytes.Equal(body, data[10:100]))
	}
	if resp, err := http.Head("http://" + srv.Addr + "/v2/no/such/blobs/" + d); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a blob from a repository that does not have it: %v %v", resp.Status, err)
	}
	if resp, err := http.Post("http://"+srv.Addr+"/v2/"+repo+"/blobs/uploads/", "", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a push: %v %v", resp.Status, err)
	}

	// A split bundle, by its first volume.
	split := filepath.Join(work, "split.tar.zst")
	mustBale(t, "pack", "--volume-size", "64K", "-o", split, "registry:"+f.registry)
	vs := startServe(t, split+".001")
	for _, img := range f.corpus.Images {
		vs.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}

	// A single-frame bundle without a seek table, streamed.
	raw, _ := os.ReadFile(bundle)
	dec, _ := zstd.NewReader(bytes.NewReader(raw))
	tarStream, err := io.ReadAll(dec)
	dec.Close()
	if err != nil {
		t.Fatal(err)
	}
	var one bytes.Buffer
	enc, _ := zstd.NewWriter(&one, zstd.WithEncoderConcurrency(1))
	enc.Write(tarStream)
	enc.Close()
	old := filepath.Join(work, "old.tar.zst")
	os.WriteFile(old, one.Bytes(), 0o644)
	streamed := startServe(t, old)
	for _, img := range f.corpus.Images[:3] {
		streamed.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
}

// TestServeTLS: bale serve --tls-cert/--tls-key serves https; skopeo pulls with the CA.
func TestServeTLS(t *testing.T) {
	f := getFixture(t)
	bundle := filepath.Join(t.TempDir(), "b.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+f.registry)
	cert, key, dir := testenv.NewCert(t)
	srv := startServeArgs(t, "https", "serve", "--addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, bundle)
	img := f.corpus.Images[0]
	raw := testenv.Skopeo(t, "inspect", "--raw", "--cert-dir", dir, "--no-creds", "docker://"+srv.Addr+"/"+img.Repo+":"+img.Tag)
	if got := digest.FromBytes(raw); got != img.Digest {
		t.Errorf("https: %s:%s is %s, want %s", img.Repo, img.Tag, got, img.Digest)
	}
	if res := bale(t, "serve", "--tls-cert", cert, bundle); res.code != 2 {
		t.Errorf("--tls-cert without --tls-key: exit %d", res.code)
	}
}

// TestServePatched: a base and its patch served together are the patched release: every tag
// of release B pulls with its digest, as from the unpacked storage.
func TestServePatched(t *testing.T) {
	r := getReleases(t)
	work := t.TempDir()
	a, pb := filepath.Join(work, "a.tar.zst"), filepath.Join(work, "patch-b.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+r.root[0])
	mustBale(t, "pack", "--base", a, "-o", pb, "registry:"+r.root[1])
	if res := bale(t, "serve", "--addr", "127.0.0.1:0", pb); res.code != 3 || !strings.Contains(res.stderr, "give its base first") {
		t.Errorf("serving a patch alone: exit %d\n%s", res.code, res.stderr)
	}
	srv := startServe(t, a, pb)
	for _, img := range r.corpus[1].Images {
		srv.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
}
