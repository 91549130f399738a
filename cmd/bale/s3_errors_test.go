package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bale-project/bale/internal/testenv"
)

// TestS3Refused: on MinIO, an unpack with credentials that may read the bucket but not write
// it, and one into a bucket whose quota it would exceed, each exit non-zero, say what to
// change and leave no tag; once the quota is lifted, the same unpack completes.
func TestS3Refused(t *testing.T) {
	rel := getReleases(t)
	srv := testenv.StartMinIO(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "readonly")
	srv.MakeBucket(t, "full")
	a := filepath.Join(t.TempDir(), "a.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])
	mustBale(t, "unpack", "--to", "s3://readonly/written", a)

	t.Run("read-only", func(t *testing.T) {
		key, secret, token := srv.ReadOnlyCredentials(t, "readonly")
		t.Setenv("AWS_ACCESS_KEY_ID", key)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		t.Setenv("AWS_SESSION_TOKEN", token)
		// The credentials are good: they read what the root wrote.
		checkList(t, "s3://readonly/written", rel.corpus[0].Images)
		res := bale(t, "unpack", "--to", "s3://readonly/site", a)
		if res.code == 0 || !strings.Contains(res.stderr, "access denied") || !strings.Contains(res.stderr, "s3:PutObject") || !strings.Contains(res.stderr, "s3:ListBucketMultipartUploads") {
			t.Fatalf("unpack without write permission: exit %d, want non-zero naming the permissions to grant\n%s", res.code, res.stderr)
		}
		t.Log(strings.TrimSpace(res.stderr))
	})
	// The lock object may be written, nothing else: the first blob is refused.
	t.Run("lock-only", func(t *testing.T) {
		key, secret, token := srv.ReadOnlyCredentials(t, "readonly", "locked/.bale.lock")
		t.Setenv("AWS_ACCESS_KEY_ID", key)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		t.Setenv("AWS_SESSION_TOKEN", token)
		res := bale(t, "unpack", "--to", "s3://readonly/locked", a)
		if res.code == 0 || !strings.Contains(res.stderr, "/blobs/sha256/") || !strings.Contains(res.stderr, "s3:PutObject") {
			t.Fatalf("unpack that may write its lock only: exit %d, want non-zero naming a blob and s3:PutObject\n%s", res.code, res.stderr)
		}
		if n := strings.Count(res.stderr, "grant them"); n != 1 {
			t.Errorf("access denied told %d times, want once (with the count of the other blobs)", n)
		}
		t.Log(strings.TrimSpace(res.stderr))
	})
	for _, loc := range []string{"s3://readonly/site", "s3://readonly/locked"} {
		if refs, err := openStore(t, loc).Refs(); err != nil || len(refs) != 0 {
			t.Fatalf("%s after access denied: tags %v (%v)", loc, refs, err)
		}
	}
	// The refused run released its lock: the root's unpack there completes at once.
	mustBale(t, "unpack", "--to", "s3://readonly/locked", a)

	// A hard quota below the largest blob of the release (1.5 MiB): MinIO refuses that PUT.
	srv.SetBucketQuota(t, "full", 1<<20)
	res := bale(t, "unpack", "--to", "s3://full/site", a)
	if res.code == 0 || !strings.Contains(res.stderr, "full") || !strings.Contains(res.stderr, "quota") {
		t.Fatalf("unpack over the quota: exit %d, want non-zero saying the store is full\n%s", res.code, res.stderr)
	}
	t.Log(strings.TrimSpace(res.stderr))
	if refs, err := openStore(t, "s3://full/site").Refs(); err != nil || len(refs) != 0 {
		t.Fatalf("after a full store: tags %v (%v)", refs, err)
	}
	srv.SetBucketQuota(t, "full", 0) // lifted
	mustBale(t, "unpack", "--to", "s3://full/site", a)
	mustBale(t, "verify", "s3://full/site")
	checkList(t, "s3://full/site", rel.corpus[0].Images)
}

// TestS3TLS: an S3 endpoint with a self-signed certificate is refused with a message naming
// --s3-ca-cert; with --s3-ca-cert (or AWS_CA_BUNDLE) the unpack completes, and
// --s3-tls-verify=false reads it too.
func TestS3TLS(t *testing.T) {
	rel := getReleases(t)
	cert, key, _ := testenv.NewCert(t)
	srv := testenv.StartS3TLS(t, cert, key)
	srv.SetEnv(t)
	if _, err := tlsClient(t, srv, cert).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("tls")}); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(t.TempDir(), "a.tar.zst")
	mustBale(t, "pack", "-o", a, "registry:"+rel.root[0])

	res := bale(t, "unpack", "--to", "s3://tls/site", a)
	if res.code == 0 || !strings.Contains(res.stderr, "--s3-ca-cert") || !strings.Contains(res.stderr, "not trusted") {
		t.Fatalf("untrusted certificate: exit %d, want non-zero naming --s3-ca-cert\n%s", res.code, res.stderr)
	}
	t.Log(strings.TrimSpace(res.stderr))
	mustBale(t, "unpack", "--s3-ca-cert", cert, "--to", "s3://tls/site", a)
	mustBale(t, "verify", "--s3-ca-cert", cert, "s3://tls/site")
	mustBale(t, "list", "--s3-tls-verify=false", "s3://tls/site")
	t.Setenv("AWS_CA_BUNDLE", cert)
	checkList(t, "s3://tls/site", rel.corpus[0].Images)
}

// tlsClient is an S3 client of srv (root credentials) that trusts the certificate in cert.
func tlsClient(t *testing.T, srv *testenv.S3Server, cert string) *s3.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, cert)) {
		t.Fatalf("%s: no certificate", cert)
	}
	return s3.New(s3.Options{
		Region: testenv.S3Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
}
