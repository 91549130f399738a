package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout/s3store"
)

// TestS3Locations: s3:// everywhere a location goes besides unpack (TestS3Fleet): list, diff,
// catalog, pack without a stage, and pack --base with an s3:// base; copy registry: to s3:// and s3:// to dir:; push
// s3:// docker://; verify of a bucket with a corrupted blob. Every image is checked against the
// corpus's own digests with skopeo (pulled from docker-registry, read from the dir tree).
func TestS3Locations(t *testing.T) {
	rel := getReleases(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "fleet")
	dir := t.TempDir()
	a := filepath.Join(dir, "a.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])
	mustBale(t, "unpack", "--to", "s3://fleet/base", a)
	checkList(t, "s3://fleet/base", rel.corpus[0].Images)

	t.Run("diff", func(t *testing.T) {
		var diff struct {
			Added, Removed, Changed []struct{ Repo, Tag, Old, New string }
		}
		if err := json.Unmarshal([]byte(mustBale(t, "diff", "--json", "s3://fleet/base", "registry:"+rel.root[1]).stdout), &diff); err != nil {
			t.Fatal(err)
		}
		added, removed, changed := corpusDiff(rel.corpus[0], rel.corpus[1])
		for _, c := range []struct {
			what string
			got  []struct{ Repo, Tag, Old, New string }
			want []string
		}{{"added", diff.Added, added}, {"removed", diff.Removed, removed}, {"changed", diff.Changed, changed}} {
			var got []string
			for _, x := range c.got {
				got = append(got, x.Repo+":"+x.Tag+" "+x.New)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("diff s3:// registry: %s %v, want %v", c.what, got, c.want)
			}
		}
		// The catalog of the bucket is that of the registry: storage it was packed from.
		cat := filepath.Join(dir, "site.db")
		mustBale(t, "catalog", "-o", cat, "s3://fleet/base")
		res := mustBale(t, "diff", "--json", cat, "registry:"+rel.root[0])
		var same struct {
			Added, Removed, Changed []any
			PatchBytes              int64
		}
		if err := json.Unmarshal([]byte(res.stdout), &same); err != nil {
			t.Fatal(err)
		}
		if len(same.Added)+len(same.Removed)+len(same.Changed) != 0 || same.PatchBytes != 0 {
			t.Errorf("diff of bale catalog s3:// and the registry: it came from:\n%s", res.stdout)
		}
	})

	// pack s3:// reads the bucket straight into the bundle, with no stage (one under a regular
	// file could not be made), byte for byte the bundle of the registry: storage it came from.
	t.Run("pack-direct", func(t *testing.T) {
		blocker := filepath.Join(dir, "not-a-dir")
		if err := os.WriteFile(blocker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		p1, p2 := filepath.Join(dir, "s3.tar.zst"), filepath.Join(dir, "reg.tar.zst")
		mustBale(t, "pack", "--stage", filepath.Join(blocker, "stage"), "-o", p1, "s3://fleet/base")
		mustBale(t, "pack", "-o", p2, "registry:"+rel.root[0])
		if x, y := readFile(t, p1), readFile(t, p2); !bytes.Equal(x, y) {
			t.Fatalf("pack s3:// (%d bytes) is not byte-identical to pack registry: (%d bytes)", len(x), len(y))
		}
	})

	// pack --base s3://: the patch carries exactly the blobs of B that A lacks, and has the
	// catalog of the patch against the registry: base the bucket came from (but for the base's
	// name); it applies on top of the bucket, and push s3:// serves B through docker-registry.
	t.Run("pack-base-push", func(t *testing.T) {
		p1, p2 := filepath.Join(dir, "p-s3.tar.zst"), filepath.Join(dir, "p-reg.tar.zst")
		mustBale(t, "pack", "--base", "s3://fleet/base", "-o", p1, "registry:"+rel.root[1])
		mustBale(t, "pack", "--base", "registry:"+rel.root[0], "-o", p2, "registry:"+rel.root[1])
		var want []string
		for d := range rel.corpus[1].Blobs {
			if _, ok := rel.corpus[0].Blobs[d]; !ok {
				want = append(want, string(d))
			}
		}
		sort.Strings(want)
		if got := carriedBlobs(t, p1); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("pack --base s3:// carries %d blobs, want the %d of B that A lacks", len(got), len(want))
		}
		x, y := bundleInfoOf(t, p1), bundleInfoOf(t, p2)
		if len(x.Bases) != 1 || x.Bases[0].Name != "s3://fleet/base" {
			t.Errorf("patch bases %+v, want s3://fleet/base", x.Bases)
		}
		x.Bases, y.Bases, x.ID, y.ID = nil, nil, "", ""
		if a, b := fmt.Sprintf("%+v", x), fmt.Sprintf("%+v", y); a != b {
			t.Errorf("pack --base s3://:\n%s\npack --base registry:\n%s", a, b)
		}
		// A format-4 patch lists what it adds to or moves in its base.
		checkListedImages(t, x.Images, []imagetest.Image{imageNamed(rel.corpus[1], "rel/app-4:v1"), imageNamed(rel.corpus[1], "rel/app-5:v1"), imageNamed(rel.corpus[1], "rel/new:v1")})
		mustBale(t, "unpack", "--to", "s3://fleet/base", p1)
		mustBale(t, "verify", "s3://fleet/base")
		reg := testenv.StartRegistry(t, t.TempDir())
		mustBale(t, "push", "--dest-tls-verify=false", "s3://fleet/base", "docker://"+reg.Addr+"/site")
		for _, img := range rel.corpus[1].Images {
			reg.CheckPull(t, "site/"+img.Repo, img.Tag, img.Digest, img.Children)
		}
		// The patch left alone release A's tags that B does not have (no --remove-absent-tags).
		inB := map[string]bool{}
		for _, img := range rel.corpus[1].Images {
			inB[img.Name()] = true
		}
		kept := 0
		for _, img := range rel.corpus[0].Images {
			if !inB[img.Name()] {
				reg.CheckPull(t, "site/"+img.Repo, img.Tag, img.Digest, img.Children)
				kept++
			}
		}
		if kept == 0 {
			t.Error("release B removes no tag of A: the releases no longer test this")
		}
	})

	// copy registry: s3:// then s3:// dir:, read back by skopeo from the dir tree.
	t.Run("copy", func(t *testing.T) {
		mustBale(t, "copy", "registry:"+rel.root[2], "s3://fleet/copied")
		mustBale(t, "verify", "s3://fleet/copied")
		replica := testenv.StartRegistryS3(t, srv, "fleet", "/copied")
		out := filepath.Join(t.TempDir(), "tree")
		mustBale(t, "copy", "s3://fleet/copied", "dir:"+out)
		for _, img := range rel.corpus[2].Images {
			replica.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
			checkSkopeoRead(t, "dir:"+filepath.Join(out, img.Repo+":"+img.Tag), img)
		}
	})

	// verify reads every blob: one flipped byte in the bucket (versitygw keeps each object as
	// a file at its key) is found and named.
	t.Run("verify-corrupt", func(t *testing.T) {
		mustBale(t, "copy", "registry:"+rel.root[0], "s3://fleet/corrupt")
		var victim string
		for d, b := range rel.corpus[0].Blobs {
			if len(b) > 1024 && (victim == "" || string(d) < victim) {
				victim = string(d)
			}
		}
		hex := strings.TrimPrefix(victim, "sha256:")
		p := filepath.Join(srv.Dir, "fleet", "corrupt", "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
		b := readFile(t, p)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res := bale(t, "verify", "s3://fleet/corrupt")
		if res.code == 0 || !strings.Contains(res.stdout+res.stderr, hex) {
			t.Fatalf("verify of a corrupted bucket: exit %d, want non-zero naming %s\nstdout:\n%s\nstderr:\n%s", res.code, victim, res.stdout, res.stderr)
		}
	})
}

// A bucket is packed without a stage.
var _ archive.Streamer = (*s3store.Store)(nil)

// corpusDiff is what diff OLD NEW should report, from the corpora themselves: the tags added,
// removed and changed, each as "repo:tag digest" (the new digest; removed: the old), sorted.
func corpusDiff(old, new *imagetest.Corpus) (added, removed, changed []string) {
	was := map[string]imagetest.Image{}
	for _, img := range old.Images {
		was[img.Name()] = img
	}
	is := map[string]bool{}
	for _, img := range new.Images {
		is[img.Name()] = true
		switch o, ok := was[img.Name()]; {
		case !ok:
			added = append(added, img.Name()+" "+string(img.Digest))
		case o.Digest != img.Digest:
			changed = append(changed, img.Name()+" "+string(img.Digest))
		}
	}
	for _, img := range old.Images {
		if !is[img.Name()] {
			removed = append(removed, img.Name()+" ")
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

// TestS3Settings: the AWS ways of naming the endpoint, region and credentials reach bale in
// a subprocess with nothing else set: AWS_PROFILE with ~/.aws/credentials and ~/.aws/config
// (its endpoint_url and region) under a temporary HOME; AWS_ENDPOINT_URL; --s3-endpoint and
// --s3-region over a wrong environment; a profile with a wrong secret, or a dead endpoint_url,
// and a dead AWS_ENDPOINT_URL_S3 name the setting to fix.
func TestS3Settings(t *testing.T) {
	rel := getReleases(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "fleet")
	mustBale(t, "copy", "registry:"+rel.root[0], "s3://fleet/site")

	home := t.TempDir()
	aws := filepath.Join(home, ".aws")
	if err := os.MkdirAll(aws, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"credentials": "[site]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n" +
			"[wrong]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = not-the-secret\n" +
			"[dead]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n",
		"config": "[profile site]\nregion = us-east-1\nendpoint_url = " + srv.Endpoint + "\n" +
			"[profile wrong]\nregion = us-east-1\nendpoint_url = " + srv.Endpoint + "\n" +
			"[profile dead]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(aws, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"HOME=" + home, "AWS_EC2_METADATA_DISABLED=true"}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		fail string // "": must succeed; else texts of the message, separated by "|"
	}{
		{"profile", []string{"AWS_PROFILE=site"}, nil, ""},
		{"profile-wrong-secret", []string{"AWS_PROFILE=wrong"}, nil, "refused the credentials|profile \"wrong\" (AWS_PROFILE)"},
		{"endpoint-url", []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_ENDPOINT_URL=" + srv.Endpoint}, nil, ""},
		{"flags-over-env", []string{"AWS_PROFILE=site", "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9", "AWS_REGION=eu-west-3"},
			[]string{"--s3-endpoint", srv.Endpoint, "--s3-region", testenv.S3Region}, ""},
		{"profile-dead-endpoint", []string{"AWS_PROFILE=dead"}, nil, "does not answer|endpoint_url of profile \"dead\""},
		{"dead-endpoint", []string{"AWS_PROFILE=site", "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9"}, nil, "does not answer|AWS_ENDPOINT_URL_S3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"list", "--json"}, c.args...), "s3://fleet/site")
			res := baleEnv(t, append(base, c.env...), args...)
			if c.fail != "" {
				for _, want := range strings.Split(c.fail, "|") {
					if res.code == 0 || !strings.Contains(res.stderr, want) {
						t.Fatalf("bale %s: exit %d, want non-zero saying %q\n%s", strings.Join(args, " "), res.code, want, res.stderr)
					}
				}
				t.Log(strings.TrimSpace(res.stderr))
				return
			}
			if res.code != 0 {
				t.Fatalf("bale %s: exit %d\n%s", strings.Join(args, " "), res.code, res.stderr)
			}
			var out struct{ Images []listed }
			if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
				t.Fatal(err)
			}
			checkListedImages(t, out.Images, rel.corpus[0].Images)
		})
	}
}

// TestRegistryConfigFilesystem: --registry-config of a registry whose config.yml says
// storage.filesystem makes unpack (no --to) write into its rootdirectory, which that
// docker-registry then serves.
func TestRegistryConfigFilesystem(t *testing.T) {
	rel := getReleases(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	cfg := filepath.Join(dir, "config.yml")
	text := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + root + "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:5000\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])
	mustBale(t, "unpack", "--registry-config", cfg, a)
	checkServed(t, root, "", rel.corpus[0].Images)
}

// baleEnv runs bale with the environment of this process less every AWS_ variable and HOME,
// plus env.
func baleEnv(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(baleBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running bale %v: %v", args, err)
	}
	return res
}
