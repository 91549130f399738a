package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
	"github.com/bale-project/bale/layout/s3store"
)

var _ archive.Target = (*s3store.Store)(nil)

// sample is the genuine registry storage of testdata.
const sample = "../../testdata/sample-registry"

// newStore starts an S3 server, makes bucket and opens s3://bucket/root on it.
func newStore(t *testing.T, root string, mod func(*s3store.Config)) (*testenv.S3Server, *s3store.Store) {
	t.Helper()
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "site")
	cfg, err := s3store.ParseURL("s3://site/" + root)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := s3store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// TestUnpackPack unpacks a bundle of the sample registry into a bucket, verifies it there,
// packs it back (byte-identical to the bundle of the registry storage on disk), copies it
// out to disk and runs the unpack again (nothing uploaded).
func TestUnpackPack(t *testing.T) {
	srv, st := newStore(t, "reg/root", nil)
	dir := t.TempDir()
	ctx := context.Background()
	src, err := registry.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "disk.tar.zst")
	if _, err := archive.Pack(ctx, want, src, nil, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := archive.UnpackFiles(ctx, []string{want}, st, archive.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsWritten == 0 || res.BlobsReused != 0 {
		t.Fatalf("first unpack: %+v", res)
	}
	c, problems := catalog.VerifySource(st)
	if len(problems) > 0 {
		t.Fatalf("verify s3: %v", problems)
	}
	for _, e := range c.Entries() {
		img, err := layout.LoadImage(st, e.Repo, e.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if errs := registry.CheckLinks(st, e.Repo, e.Tag, img); len(errs) > 0 {
			t.Fatalf("links of %s: %v", e.Ref(), errs)
		}
	}
	got := filepath.Join(dir, "s3.tar.zst")
	if _, err := archive.Pack(ctx, got, st, nil, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(want)
	b, _ := os.ReadFile(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("pack s3:// (%d bytes) differs from pack registry: (%d bytes)", len(b), len(a))
	}
	// Out again to disk, by the Sink of registry storage reading the bucket.
	out := registry.New(filepath.Join(dir, "out"))
	refs, err := st.Refs()
	if err != nil || len(refs) == 0 {
		t.Fatalf("refs: %v %v", refs, err)
	}
	if _, err := layout.CopyWith(ctx, st, out, nil, layout.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, problems := catalog.VerifySource(out); len(problems) > 0 {
		t.Fatal(problems)
	}
	res, err = archive.UnpackFiles(ctx, []string{want}, st, archive.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsWritten != 0 {
		t.Fatalf("re-run uploaded %d blobs", res.BlobsWritten)
	}
	// A blob object cut short behind bale's back (the blobs are listed once, with their
	// sizes, when the unpack starts): the next run, in a new Store, uploads it again, only it.
	d := c.Entries()[0].Digest
	key := "reg/root/docker/registry/v2/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("site"), Key: aws.String(key), Body: bytes.NewReader([]byte("cut"))}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := s3store.ParseURL("s3://site/reg/root")
	again, err := s3store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err = archive.UnpackFiles(ctx, []string{want}, again, archive.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsWritten != 1 {
		t.Fatalf("after a blob was cut short, the re-run uploaded %d blobs, want 1 (%+v)", res.BlobsWritten, res)
	}
	if _, problems := catalog.VerifySource(again); len(problems) > 0 {
		t.Fatalf("verify s3 after the re-run: %v", problems)
	}
}

// TestCopyInto copies registry storage into a bucket through the Sink (copy registry: s3://).
func TestCopyInto(t *testing.T) {
	_, st := newStore(t, "", nil)
	src, err := registry.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	n, err := layout.CopyWith(context.Background(), src, st, nil, layout.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.Refs()
	got, err := st.Refs()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || len(got) != len(want) {
		t.Fatalf("copied %d; refs %v, want %v", n, got, want)
	}
	if _, problems := catalog.VerifySource(st); len(problems) > 0 {
		t.Fatal(problems)
	}
}

// TestMultipart uploads a blob of several parts, then one whose bytes do not match its
// digest: that one never appears and leaves no multipart upload behind.
func TestMultipart(t *testing.T) {
	srv, st := newStore(t, "r", func(c *s3store.Config) { c.PartSize = 5 << 20; c.Jobs = 3 })
	blob := make([]byte, 17<<20+123)
	rand.Read(blob)
	d := layout.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := st.WriteBlob(d, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := st.VerifyBlob(d); err != nil || !st.HasBlob(d) {
		t.Fatalf("verify: %v", err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	d2 := layout.Descriptor{Digest: digest.FromBytes(append(bytes.Clone(blob), 'x')), Size: int64(len(blob))}
	if err := st.WriteBlob(d2, bytes.NewReader(bad)); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Fatalf("bad blob: %v, want a digest mismatch", err)
	}
	if st.StatBlob(d2) {
		t.Fatal("a blob that failed its digest is in the bucket")
	}
	ups, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("site")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left", len(ups.Uploads))
	}
	// An upload a killed run left is aborted by the next one's Sweep.
	key := "r/docker/registry/v2/blobs/sha256/" + d2.Digest.Encoded()[:2] + "/" + d2.Digest.Encoded() + "/data"
	if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String("site"), Key: &key}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
}

// TestLock: a second unpack finds the lock held; a lock whose bale is gone is taken over.
func TestLock(t *testing.T) {
	srv, st := newStore(t, "", nil)
	unlock, err := st.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(); !errors.Is(err, s3store.ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	unlock, err = st.Lock()
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock()
	// A lock of a process of this host that is gone.
	host, _ := os.Hostname()
	body := `{"host":"` + host + `","pid":2147483000,"started":"2026-01-01T00:00:00Z","heartbeat":"2099-01-01T00:00:00Z"}`
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("site"), Key: aws.String(s3store.LockName), Body: bytes.NewReader([]byte(body))}); err != nil {
		t.Fatal(err)
	}
	unlock, err = st.Lock()
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	unlock()
}

// TestErrors: wrong credentials, a missing bucket and an endpoint that does not answer each
// name their condition and the setting to change.
func TestErrors(t *testing.T) {
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "site")
	ctx := context.Background()
	open := func(u string, mod func(*s3store.Config)) error {
		cfg, err := s3store.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(&cfg)
		}
		_, err = s3store.Open(ctx, cfg)
		return err
	}
	if err := open("s3://nosuchbucket", nil); !errors.Is(err, s3store.ErrNoBucket) {
		t.Errorf("missing bucket: %v", err)
	} else {
		t.Log(err)
	}
	if err := open("s3://site", func(c *s3store.Config) { c.AccessKey, c.SecretKey = srv.AccessKey, "wrong-secret" }); !errors.Is(err, s3store.ErrCredentials) {
		t.Errorf("wrong secret: %v", err)
	} else {
		t.Log(err)
	}
	if err := open("s3://site", func(c *s3store.Config) { c.AccessKey, c.SecretKey = "nobody", "x" }); !errors.Is(err, s3store.ErrCredentials) {
		t.Errorf("unknown key: %v", err)
	}
	if err := open("s3://site", func(c *s3store.Config) { c.Endpoint = "http://127.0.0.1:9" }); !errors.Is(err, s3store.ErrEndpoint) {
		t.Errorf("dead endpoint: %v", err)
	} else {
		t.Log(err)
	}
}
