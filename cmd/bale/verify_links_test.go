package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// linkDamage is one way registry storage loses what Distribution needs to serve a tag: the
// storage path (registry.PathFor) it removes or rewrites, what bale verify must say, and
// the request the real registry then fails (a GET path, answered 404, or with other bytes
// than its digest). An empty get means the registry still serves GET (see formats.md §1.4:
// the index link is read by DELETE and garbage collection, not by GET).
type linkDamage struct {
	name    string
	spec    registry.PathSpec
	content string // "" removes the link; else it is written with this content
	want    string // in verify's output
	get     string
}

// linkDamages lists one damage per link kind, on the fixture's images.
func linkDamages(t *testing.T, c *imagetest.Corpus) []linkDamage {
	t.Helper()
	var idx, one imagetest.Image
	for _, img := range c.Images {
		if img.IsIndex() && idx.Repo == "" && len(img.Children) > 1 {
			idx = img
		}
		if !img.IsIndex() && one.Repo == "" {
			one = img
		}
	}
	if idx.Repo == "" || one.Repo == "" {
		t.Fatal("the corpus has no index or no single image")
	}
	blobs, err := c.BlobDigests(one)
	if err != nil {
		t.Fatal(err)
	}
	layers := blobs // config and layers of one
	if len(layers) < 2 {
		t.Fatalf("image %s has %d blobs", one.Name(), len(layers))
	}
	layer, other := layers[len(layers)-1], layers[0]
	manifests := func(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }
	return []linkDamage{
		{name: "current", spec: registry.TagCurrent{Repo: idx.Repo, Tag: idx.Tag},
			want: "no current link", get: manifests(idx.Repo, idx.Tag)},
		{name: "tagdir", spec: registry.TagDir{Repo: one.Repo, Tag: "ghost"}, content: "dir",
			want: one.Repo + ":ghost", get: manifests(one.Repo, "ghost")},
		{name: "index", spec: registry.TagIndex{Repo: idx.Repo, Tag: idx.Tag, Digest: idx.Digest},
			want: "no index link of tag " + idx.Tag},
		{name: "revision", spec: registry.RevisionLink{Repo: one.Repo, Digest: one.Digest},
			want: "is not linked in repository " + one.Repo, get: manifests(one.Repo, one.Tag)},
		{name: "child-revision", spec: registry.RevisionLink{Repo: idx.Repo, Digest: idx.Children[0]},
			want: "no revision link for manifest " + idx.Children[0].String(), get: manifests(idx.Repo, idx.Children[0].String())},
		{name: "layers", spec: registry.LayerLink{Repo: one.Repo, Digest: layer},
			want: "no _layers link for blob " + layer.String(), get: "/v2/" + one.Repo + "/blobs/" + layer.String()},
		{name: "wrong-content", spec: registry.LayerLink{Repo: one.Repo, Digest: layer}, content: other.String(),
			want: "holds " + other.String(), get: "/v2/" + one.Repo + "/blobs/" + layer.String()},
	}
}

// TestVerifyLinks: bale verify registry:PATH fails, naming the link, on storage that misses
// each kind of link Distribution reads (or holds a wrong digest in one), and the real
// docker-registry indeed fails to serve each such storage; the storage unharmed passes.
func TestVerifyLinks(t *testing.T) {
	f := getFixture(t)
	mustBale(t, "verify", "registry:"+f.registry)
	for _, dm := range linkDamages(t, f.corpus) {
		t.Run(dm.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "registry")
			if out, err := exec.Command("cp", "-a", f.registry, root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			p, err := registry.New(root).Path(dm.spec)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case dm.content == "dir":
				err = os.MkdirAll(p, 0o755) // an empty tag directory: 2.8 lists it
			case dm.content != "":
				err = os.WriteFile(p, []byte(dm.content), 0o644)
			default:
				err = os.Remove(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkVerifyFails(t, "registry:"+root, dm)
			checkNotServed(t, testenv.StartRegistry(t, root), dm)
		})
	}
}

// TestVerifyLinksS3: the same damages to storage in a bucket (versitygw or MinIO), served by
// docker-registry with storage.s3 on it.
func TestVerifyLinksS3(t *testing.T) {
	f := getFixture(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	for i, dm := range linkDamages(t, f.corpus) {
		t.Run(dm.name, func(t *testing.T) {
			bucket := fmt.Sprintf("links%d", i)
			srv.MakeBucket(t, bucket)
			loc := "s3://" + bucket + "/site"
			mustBale(t, "copy", "registry:"+f.registry, loc)
			mustBale(t, "verify", loc)
			p, err := registry.PathFor(dm.spec)
			if err != nil {
				t.Fatal(err)
			}
			key, body := "site/"+p, dm.content
			if body == "dir" { // a bucket has no directories: a tag with only an index link
				key, body = "site/"+p+"/index/sha256/"+strings.Repeat("0", 64)+"/link", "sha256:"+strings.Repeat("0", 64)
			}
			ctx := context.Background()
			if body == "" {
				_, err = srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
			} else {
				_, err = srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)})
			}
			if err != nil {
				t.Fatal(err)
			}
			checkVerifyFails(t, loc, dm)
			checkNotServed(t, testenv.StartRegistryS3(t, srv, bucket, "/site"), dm)
		})
	}
}

// checkVerifyFails runs bale verify on loc and wants exit 3 or 4 and dm.want in its output.
func checkVerifyFails(t *testing.T, loc string, dm linkDamage) {
	t.Helper()
	res := bale(t, "verify", loc)
	if res.code != 3 && res.code != 4 {
		t.Fatalf("verify %s after removing %T exits %d, want 3 or 4:\n%s%s", loc, dm.spec, res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, dm.want) {
		t.Fatalf("verify %s does not say %q:\n%s", loc, dm.want, res.stderr)
	}
	t.Logf("verify: %s", firstLine(res.stderr))
}

// localClient talks to the local registry, never through a proxy.
var localClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// checkNotServed asks reg for dm.get and wants 404 or content that does not hash to the
// digest it was asked for; with no dm.get, it checks that the tag is still served.
func checkNotServed(t *testing.T, reg *testenv.Registry, dm linkDamage) {
	t.Helper()
	if tag, ok := dm.spec.(registry.TagDir); ok {
		if tags := reg.Tags(t, tag.Repo); !slices.Contains(tags, tag.Tag) {
			t.Fatalf("the registry does not list %s: %v", tag.Tag, tags)
		}
	}
	if dm.get == "" {
		return
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+reg.Addr+dm.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{layout.MediaTypeOCIIndex, layout.MediaTypeDockerManifestList,
		layout.MediaTypeOCIManifest, layout.MediaTypeDockerManifest}, ", "))
	resp, err := localClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	want := dm.get[strings.LastIndex(dm.get, "/")+1:]
	switch {
	case resp.StatusCode == http.StatusNotFound:
		t.Logf("registry: GET %s: %s", dm.get, resp.Status)
	case resp.StatusCode == http.StatusOK && strings.HasPrefix(want, "sha256:") && "sha256:"+hex.EncodeToString(sum[:]) != want:
		t.Logf("registry: GET %s: 200 with other content (sha256:%x)", dm.get, sum)
	default:
		t.Fatalf("registry serves GET %s: %s (the damage does not break it, so verify should not fail on it)", dm.get, resp.Status)
	}
}
