package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/opencontainers/go-digest"
)

// TestStandardCorpusRoundTrip pushes every image of imagetest.Standard() from a
// dir: image into a real docker-registry with digests preserved, pulls each tag
// back with skopeo and checks the digests, tags, catalog and on-disk storage.
func TestStandardCorpusRoundTrip(t *testing.T) {
	Need(t, "skopeo")
	Need(t, "docker-registry")
	c := imagetest.Standard()
	root := t.TempDir()
	reg := StartRegistry(t, root)

	src := t.TempDir()
	wantTags := map[string][]string{}
	for _, img := range c.Images {
		dir, err := c.WriteDir(src, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+dir, img.Repo, img.Tag)
		wantTags[img.Repo] = append(wantTags[img.Repo], img.Tag)
	}
	for _, img := range c.Images {
		reg.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
	// Pulling by digest verifies the manifest bytes against the digest in the reference.
	for _, img := range c.Images {
		raw := Skopeo(t, "inspect", "--raw", "--tls-verify=false", "--no-creds", reg.Ref(img.Repo, img.Digest.String()))
		if !bytes.Equal(raw, c.Manifest(img.Digest)) {
			t.Errorf("%s@%s: served bytes differ from the corpus", img.Repo, img.Digest)
		}
	}

	var repos []string
	for repo, tags := range wantTags {
		repos = append(repos, repo)
		sort.Strings(tags)
		if got := reg.Tags(t, repo); !reflect.DeepEqual(got, tags) {
			t.Errorf("tags of %s: %v, want %v", repo, got, tags)
		}
	}
	sort.Strings(repos)
	if got := reg.Catalog(t); !reflect.DeepEqual(got, repos) {
		t.Errorf("catalog %v, want %v", got, repos)
	}

	checkAccept(t, reg, c)

	reg.Stop()
	reg.Stop() // idempotent
	checkStorage(t, c, root)
}

// checkAccept checks the 2.8 Accept negotiation of docs/formats.md §1.5: a schema2
// manifest asked for by tag without the schema2 type is converted to schema1 (which
// needs the config and its history), and an OCI manifest needs the OCI type.
func checkAccept(t *testing.T, reg *Registry, c *imagetest.Corpus) {
	t.Helper()
	get := func(img imagetest.Image, accept string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+reg.Addr+"/v2/"+img.Repo+"/manifests/"+img.Tag, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", accept)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	const schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	for _, img := range c.Images {
		switch img.MediaType {
		case imagetest.MediaTypeDockerManifest, imagetest.MediaTypeDockerManifestList:
			if code, ct := get(img, schema1); code != http.StatusOK || ct != schema1 {
				t.Errorf("%s as schema1: %d %s", img.Name(), code, ct)
			}
		case imagetest.MediaTypeOCIManifest, imagetest.MediaTypeOCIIndex:
			if code, _ := get(img, imagetest.MediaTypeDockerManifest); code != http.StatusNotFound {
				t.Errorf("%s without OCI Accept: %d, want 404", img.Name(), code)
			}
			if code, ct := get(img, img.MediaType); code != http.StatusOK || ct != img.MediaType {
				t.Errorf("%s with OCI Accept: %d %s", img.Name(), code, ct)
			}
		}
	}
}

// checkStorage checks the registry's on-disk layout against docs/formats.md §1.1–1.3.
func checkStorage(t *testing.T, c *imagetest.Corpus, root string) {
	t.Helper()
	v2 := filepath.Join(root, "docker", "registry", "v2")
	link := func(path string, want digest.Digest) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return
		}
		if string(data) != want.String() || len(data) != 71 {
			t.Errorf("%s: content %q, want exactly %q", path, data, want)
		}
	}
	for _, img := range c.Images {
		repo := filepath.Join(v2, "repositories", filepath.FromSlash(img.Repo))
		tagDir := filepath.Join(repo, "_manifests", "tags", img.Tag)
		link(filepath.Join(tagDir, "current", "link"), img.Digest)
		link(filepath.Join(tagDir, "index", "sha256", img.Digest.Encoded(), "link"), img.Digest)
		for _, m := range append([]digest.Digest{img.Digest}, img.Children...) {
			link(filepath.Join(repo, "_manifests", "revisions", "sha256", m.Encoded(), "link"), m)
			if _, err := os.Stat(filepath.Join(repo, "_layers", "sha256", m.Encoded())); err == nil {
				t.Errorf("%s: manifest %s has a _layers link", img.Name(), m)
			}
		}
		blobs, err := c.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			link(filepath.Join(repo, "_layers", "sha256", b.Encoded(), "link"), b)
		}
		if entries, err := os.ReadDir(filepath.Join(repo, "_uploads")); err != nil || len(entries) != 0 {
			t.Errorf("%s: _uploads should be an empty directory: %v %d entries", img.Name(), err, len(entries))
		}
	}
	n := 0
	err := filepath.Walk(filepath.Join(v2, "blobs"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(filepath.Join(v2, "blobs"), path)
		d := digest.Digest("sha256:" + filepath.Base(filepath.Dir(path)))
		if want := filepath.Join("sha256", d.Encoded()[:2], d.Encoded(), "data"); rel != want {
			t.Errorf("unexpected blob path %s", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, c.Blobs[d]) {
			t.Errorf("blob %s differs from the corpus", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(c.Blobs) {
		t.Errorf("registry stores %d blobs, corpus has %d", n, len(c.Blobs))
	}
}

// TestRef checks reference formatting for tags and digests.
func TestRef(t *testing.T) {
	r := &Registry{Addr: "127.0.0.1:5000"}
	d := digest.FromString("x")
	if got, want := r.Ref("a/b", "v1.0"), "docker://127.0.0.1:5000/a/b:v1.0"; got != want {
		t.Errorf("Ref tag: %s, want %s", got, want)
	}
	if got, want := r.Ref("a/b", d.String()), "docker://127.0.0.1:5000/a/b@"+d.String(); got != want {
		t.Errorf("Ref digest: %s, want %s", got, want)
	}
}

// TestTokenRegistry: a registry with token auth challenges with Bearer and its realm; skopeo
// pushes and pulls through the token server with basic credentials; wrong ones are refused;
// the tags and catalog helpers mint their own tokens.
func TestTokenRegistry(t *testing.T) {
	Need(t, "skopeo")
	c := imagetest.Standard()
	reg := StartTokenRegistry(t, t.TempDir(), "bale", "t0ken", "localhost")
	client, err := reg.Secure.client()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get("https://" + reg.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer realm=\""+reg.Secure.Token.Realm()+"\"") {
		t.Fatalf("GET /v2/ without a token: %s, challenge %q", resp.Status, ch)
	}
	img := c.Images[0]
	dir, err := c.WriteDir(t.TempDir(), img)
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "dir:"+dir, img.Repo, img.Tag)
	reg.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	if n := reg.Secure.Token.Issued(); n == 0 {
		t.Error("skopeo pushed and pulled without a token")
	}
	if got := reg.Tags(t, img.Repo); !reflect.DeepEqual(got, []string{img.Tag}) {
		t.Errorf("tags of %s: %v", img.Repo, got)
	}
	if got := reg.Catalog(t); !reflect.DeepEqual(got, []string{img.Repo}) {
		t.Errorf("catalog: %v", got)
	}
	refused := reg.Secure.Token.Refused()
	ctx, cancel := context.WithTimeout(context.Background(), SkopeoTimeout)
	defer cancel()
	if _, err := RunSkopeo(ctx, "inspect", "--raw", "--cert-dir", reg.Secure.CertDir, "--creds", "bale:wrong", reg.Ref(img.Repo, img.Tag)); err == nil {
		t.Error("skopeo inspect with a wrong password succeeded")
	}
	if reg.Secure.Token.Refused() == refused {
		t.Error("the token server refused nothing for a wrong password")
	}
}
