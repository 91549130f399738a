package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// StartMinIO starts MinIO (the pinned GoTools entry, one drive in a new directory) on a free
// 127.0.0.1 port and waits until it is live. It is skipped (failed under CI) when MinIO is not
// installed. The tests that need what only MinIO has (bucket quotas, STS session policies)
// use it; the others run on versitygw (StartS3).
func StartMinIO(t testing.TB) *S3Server {
	t.Helper()
	bin := NeedTool(t, "minio")
	client := &http.Client{Timeout: time.Second}
	return startS3Server(t, s3Launch{
		name:   "minio",
		scheme: "http",
		args: func(s *S3Server) []string {
			return []string{"server", s.Dir, "--quiet", "--address", s.Addr, "--certs-dir", filepath.Join(filepath.Dir(s.Dir), "certs")}
		},
		env: func(s *S3Server) []string {
			return []string{"MINIO_ROOT_USER=" + s.AccessKey, "MINIO_ROOT_PASSWORD=" + s.SecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off"}
		},
		ready: func(s *S3Server) bool {
			resp, err := client.Get(s.Endpoint + "/minio/health/live")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		},
		timeout: 30 * time.Second,
	}, bin)
}

// SetBucketQuota gives bucket a hard quota of size bytes through MinIO's admin API (what
// `mc quota set` does), the request signed by the AWS SDK's SigV4 signer. MinIO then refuses
// with XMinioAdminBucketQuotaExceeded every write of an object (or part) that would reach it.
func (s *S3Server) SetBucketQuota(t testing.TB, bucket string, size int64) {
	t.Helper()
	body := fmt.Appendf(nil, `{"quota":%d,"size":%d,"quotatype":"hard"}`, size, size)
	u := s.Endpoint + "/minio/admin/v3/set-bucket-quota?bucket=" + url.QueryEscape(bucket)
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", S3Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("set-bucket-quota %s: %v", bucket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("set-bucket-quota %s: %s: %s", bucket, resp.Status, b)
	}
}

// ReadOnlyCredentials returns temporary credentials (access key, secret key, session token)
// that may list and read bucket and write nothing but the keys given: MinIO's STS
// AssumeRole, called with the root credentials and a session policy granting s3:ListBucket,
// s3:ListBucketMultipartUploads and s3:GetObject, and s3:PutObject and s3:DeleteObject on
// writable only.
func (s *S3Server) ReadOnlyCredentials(t testing.TB, bucket string, writable ...string) (string, string, string) {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Action":["s3:ListBucket","s3:ListBucketMultipartUploads","s3:GetBucketLocation","s3:GetObject"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}`, bucket, bucket)
	for _, key := range writable {
		policy += fmt.Sprintf(`,{"Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::%s/%s"]}`, bucket, key)
	}
	policy += "]}"
	c := sts.New(sts.Options{Region: S3Region, BaseEndpoint: aws.String(s.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")})
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:minio:iam:::role/bale-read-only"), RoleSessionName: aws.String("bale-test"),
		Policy: aws.String(policy), DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatalf("STS AssumeRole (read-only %s): %v", bucket, err)
	}
	cr := out.Credentials
	return aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)
}
