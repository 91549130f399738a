package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/s3store"
)

// TestS3Fleet: a release and its patch unpacked into s3:// are served by two docker-registry
// replicas running with storage.s3 on that bucket (skopeo pulls every tag with its digest);
// verify s3:// passes; pack s3:// is byte-identical to pack registry: of the same images;
// --registry-config writes where the registry's config.yml says; wrong credentials and a
// missing bucket say what to change and leave no tag.
func TestS3Fleet(t *testing.T) {
	rel := getReleases(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "fleet")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "b.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])
	mustBale(t, "pack", "--base", a, "-o", b, "registry:"+rel.root[1])

	mustBale(t, "unpack", "--to", "s3://fleet/site", a)
	out := mustBale(t, "unpack", "--to", "s3://fleet/site", b)
	t.Log(strings.TrimSpace(out.stderr))
	mustBale(t, "verify", "s3://fleet/site")

	// The same bundles unpacked on disk pack to the same bytes as the bucket does.
	disk := filepath.Join(dir, "disk")
	mustBale(t, "unpack", "--to", "registry:"+disk, a, b)
	fromDisk, fromS3 := filepath.Join(dir, "disk.tar.zst"), filepath.Join(dir, "s3.tar.zst")
	mustBale(t, "pack", "-o", fromDisk, "registry:"+disk)
	mustBale(t, "pack", "-o", fromS3, "s3://fleet/site")
	x, _ := os.ReadFile(fromDisk)
	y, _ := os.ReadFile(fromS3)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Fatalf("pack s3:// (%d bytes) is not byte-identical to pack registry: (%d bytes)", len(y), len(x))
	}

	// Two registry replicas on the bucket serve every tag.
	c, err := archive.ReadCatalog(fromS3)
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*testenv.Registry{testenv.StartRegistryS3(t, srv, "fleet", "/site"), testenv.StartRegistryS3(t, srv, "fleet", "/site")}
	for i, e := range c.Entries() {
		if e.Tag == "" {
			continue
		}
		replicas[i%2].CheckPull(t, e.Repo, e.Tag, e.Digest, nil)
	}

	// --registry-config: the registry's own config.yml says where (and with which keys).
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(srv.RegistryS3Config("fleet", "/other", "127.0.0.1:5000")), 0o644); err != nil {
		t.Fatal(err)
	}
	mustBale(t, "unpack", "--registry-config", cfg, a)
	mustBale(t, "verify", "s3://fleet/other")

	// Wrong credentials and a missing bucket: exit non-zero, name the setting, no tag.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	res := bale(t, "unpack", "--to", "s3://fleet/wrong", a)
	if res.code == 0 || !strings.Contains(res.stderr, "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("wrong secret: exit %d\n%s", res.code, res.stderr)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	res = bale(t, "unpack", "--to", "s3://nosuchbucket/site", a)
	if res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
		t.Fatalf("missing bucket: exit %d\n%s", res.code, res.stderr)
	}
	if refs, err := openStore(t, "s3://fleet/wrong").Refs(); err != nil || len(refs) != 0 {
		t.Fatalf("after refused credentials: %v %v", refs, err)
	}
}

// openStore opens an s3:// location with the environment's settings.
func openStore(t *testing.T, u string) *s3store.Store {
	t.Helper()
	cfg, err := s3store.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestS3Kill kills an unpack into s3:// (kill -9) at several points: no tag is left on
// missing content, and running it again completes it (the lock of the killed run is taken
// over, its multipart uploads aborted).
func TestS3Kill(t *testing.T) {
	rel := getReleases(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "fleet")
	dir := t.TempDir()
	a := filepath.Join(dir, "a.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])
	for i, delay := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 300 * time.Millisecond, 350 * time.Millisecond} {
		loc := "s3://fleet/kill" + string(rune('0'+i))
		cmd := exec.Command(baleBin, "unpack", "--jobs", "2", "--to", loc, a)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		st := openStore(t, loc)
		refs, err := st.Refs()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			d, err := st.Resolve(r)
			if err != nil {
				t.Fatalf("killed after %s: %s: %v", delay, r, err)
			}
			img, err := layout.LoadImage(st, r.Repo, d)
			if err != nil {
				t.Fatalf("killed after %s: tag %s on missing content: %v", delay, r, err)
			}
			for _, b := range img.Descriptors() {
				if !st.StatBlob(b) {
					t.Fatalf("killed after %s: tag %s lacks blob %s", delay, r, b.Digest)
				}
			}
		}
		t.Logf("killed after %s: %d tags", delay, len(refs))
		mustBale(t, "unpack", "--to", loc, a)
		mustBale(t, "verify", loc)
	}
}
