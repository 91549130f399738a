package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bale-project/bale/layout/s3store"
)

// scaleS3Bucket is the bucket of the unpack-s3 scale row.
const scaleS3Bucket = "scale"

// lookVersitygw is the versitygw binary on PATH or in $HOME/go/bin, or "".
func lookVersitygw() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "versitygw"); exec.Command(p, "--version").Run() == nil {
			return p
		}
	}
	return ""
}

// scaleS3Target starts an S3 server over an empty directory S3 of the set on a free 127.0.0.1
// port, makes the bucket, and points bale's AWS settings at it; what it returns stops the
// server by its PID, retires S3 and restores the environment. Only bale's CPU is measured: the
// server's is its own process. MinIO is preferred: it keeps connections alive as AWS does,
// where versitygw (v1.8.0, the fallback) closes each one, so that bale would pay a TCP dial
// for every object (16,439 connects for the 11,963 objects of 1,000 tags).
func (b *bench) scaleS3Target(s *scaleSet) (func(), error) {
	dir := s.at("S3")
	os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	var srv *process
	var err error
	if minio := lookMinio(); minio != "" {
		srv, err = startProcess(b.ctx, filepath.Join(dir, "minio.log"),
			append(s3FreeEnv(), "MINIO_ROOT_USER="+s3Key, "MINIO_ROOT_PASSWORD="+s3Secret, "MINIO_BROWSER=off", "HOME="+dir),
			func(addr string) []string { return []string{minio, "server", data, "--quiet", "--address", addr} }, "/minio/health/live")
	} else if gw := lookVersitygw(); gw != "" {
		srv, err = startProcess(b.ctx, filepath.Join(dir, "versitygw.log"),
			append(s3FreeEnv(), "ROOT_ACCESS_KEY="+s3Key, "ROOT_SECRET_KEY="+s3Secret, "HOME="+dir),
			func(addr string) []string { return []string{gw, "--port", addr, "posix", data} }, "")
	} else {
		err = fmt.Errorf("no minio or versitygw on PATH or in $HOME/go/bin")
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the S3 server: %w", err)
	}
	endpoint := "http://" + srv.addr
	client := s3Client(endpoint, s3store.DefaultJobs)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) { // MinIO answers 503 until it has initialised
		if _, err = client.CreateBucket(b.ctx, &s3.CreateBucketInput{Bucket: aws.String(scaleS3Bucket)}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		srv.stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating bucket %s on %s: %w", scaleS3Bucket, endpoint, err)
	}
	saved := map[string]*string{}
	set := map[string]string{"AWS_ACCESS_KEY_ID": s3Key, "AWS_SECRET_ACCESS_KEY": s3Secret, "AWS_REGION": s3Region,
		"AWS_ENDPOINT_URL_S3": endpoint, "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true"}
	for _, kv := range os.Environ() { // bale reads its settings the AWS way; the bench's own may name others
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			saved[k] = &v
			os.Unsetenv(k)
		}
	}
	for k, v := range set {
		if _, ok := saved[k]; !ok {
			saved[k] = nil
		}
		os.Setenv(k, v)
	}
	return func() {
		srv.stop()
		b.retire(dir)
		for k, v := range saved {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}, nil
}
