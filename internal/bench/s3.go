package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bale-project/bale/internal/testenv"
	"github.com/bale-project/bale/layout/s3store"
)

// The s3 rows (issue #13): the pool's bundle unpacked straight into a bucket of a MinIO server
// on 127.0.0.1, against `bale push` of the same bundle through docker-registry with storage.s3
// on another bucket of the same server, and against uploading the same files (every object of
// the bundle's registry storage) with the AWS SDK alone, at bale's concurrency and part size.
// MinIO is looked up on PATH, then in $HOME/go/bin (the bench is not run in CI; build it with
// go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c).
const (
	s3PushTarget   = 1.0 / 3 // unpack into s3:// at least 3x faster than push through the registry
	s3UploadTarget = 1.5     // within 1.5x of the SDK alone uploading the same bytes
	s3RSSTargetKB  = 256 << 10
	s3Key          = "balebenchkey"
	s3Secret       = "balebenchsecret0123456789"
	s3Region       = "us-east-1"
)

// s3 runs the s3 rows on the bundle that the pack row made.
func (b *bench) s3() error {
	na := func(why string) {
		for _, n := range []string{"s3-vs-push", "s3-vs-sdk", "s3-rss", "s3-pack"} {
			b.rows = append(b.rows, row{name: n, bale: "n/a (" + why + ")", ref: "–", ratio: "–", target: "–", result: "n/a"})
		}
	}
	if !b.packRun.ok() {
		na("bale pack failed")
		return nil
	}
	minio := lookMinio()
	if minio == "" {
		na("no minio on PATH or in $HOME/go/bin")
		return nil
	}
	reg, err := exec.LookPath("docker-registry")
	if err != nil {
		na("no docker-registry on PATH")
		return nil
	}
	dir := filepath.Join(b.work, "S3")
	defer b.drop(dir)
	srv, err := startProcess(b.ctx, filepath.Join(dir, "minio.log"), append(s3FreeEnv(), "MINIO_ROOT_USER="+s3Key, "MINIO_ROOT_PASSWORD="+s3Secret, "MINIO_BROWSER=off"),
		func(addr string) []string {
			return []string{minio, "server", filepath.Join(dir, "data"), "--quiet", "--address", addr}
		}, "/minio/health/live")
	if err != nil {
		return fmt.Errorf("starting MinIO: %w", err)
	}
	defer srv.stop()
	endpoint := "http://" + srv.addr
	client := s3Client(endpoint, s3store.DefaultJobs)
	for _, bucket := range []string{"unpack", "push", "sdk"} {
		if _, err := client.CreateBucket(b.ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			return fmt.Errorf("creating bucket %s on MinIO: %w", bucket, err)
		}
	}
	cfgPath := filepath.Join(dir, "registry.yml")
	regSrv, err := startProcess(b.ctx, filepath.Join(dir, "registry.log"), s3FreeEnv(), func(addr string) []string {
		cfg := testenv.RegistryS3Config(s3Key, s3Secret, endpoint, "push", "/site", addr)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return nil
		}
		return []string{reg, "serve", cfgPath}
	}, "/v2/")
	if err != nil {
		return fmt.Errorf("starting docker-registry on MinIO: %w", err)
	}
	defer regSrv.stop()
	// bale reads its settings the AWS way; the bench's own environment may name others.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": s3Key, "AWS_SECRET_ACCESS_KEY": s3Secret, "AWS_REGION": s3Region,
		"AWS_ENDPOINT_URL_S3": endpoint, "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true"} {
		os.Setenv(k, v)
	}
	b.header = append(b.header, fmt.Sprintf("S3 (rows s3-*): MinIO (%s) single drive in WORK/S3 on %s, buckets unpack, push and sdk; "+
		"docker-registry with storage.s3 on bucket push (rootdirectory /site, redirect disabled).", minio, endpoint))

	// The SDK alone: every object of the bundle's registry storage, from the page cache.
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		return err
	}
	if x := execute(b.ctx, "", pipeline("zstd -dc %s | tar -x -C %s docker", b.bundle, files)...); !x.ok() {
		return fmt.Errorf("extracting the bundle: %v: %s", x.err, x.tail())
	}
	if err := warm(files); err != nil {
		return err
	}
	b.logf("uploading %s with the AWS SDK alone", files)
	cpu0 := srv.cpu()
	start := time.Now()
	objects, bytesUp, err := sdkUpload(b.ctx, client, "sdk", "site", files, s3store.DefaultJobs, s3store.DefaultPartSize)
	sdkSecs := time.Since(start).Seconds()
	sdkCPU := srv.cpu() - cpu0
	if err != nil {
		return fmt.Errorf("uploading with the SDK: %w", err)
	}
	b.drop(files)

	cpu0 = srv.cpu()
	un, err := b.timed([]string{b.bundle}, nil, "", b.bale, "unpack", "--to", "s3://unpack/site", b.bundle)
	if err != nil {
		return err
	}
	unCPU := srv.cpu() - cpu0
	cpu0, reg0 := srv.cpu(), regSrv.cpu()
	push, err := b.timed([]string{b.bundle}, nil, "", b.bale, "push", "--dest-tls-verify=false", b.bundle, "docker://"+regSrv.addr)
	if err != nil {
		return err
	}
	pushCPU, regCPU := srv.cpu()-cpu0, regSrv.cpu()-reg0
	var checks []error
	if un.ok() {
		checks = append(checks, b.verify("s3://unpack/site"), b.s3Count("s3://unpack/site"))
	}
	pushChecks := []error{}
	if push.ok() {
		pushChecks = append(pushChecks, b.s3Count("s3://push/site"))
	}
	if err := errors.Join(pushChecks...); err != nil {
		b.note("check FAILED (push): %v", err)
		b.failed = true
	}
	b.ratioRow("s3-vs-push", un, "", push, s3PushTarget, checks)
	sdk := &run{argv: []string{fmt.Sprintf("AWS SDK alone: %d objects, %s (%d at once, %d MiB parts)", objects, mib(bytesUp), s3store.DefaultJobs, s3store.DefaultPartSize>>20)}, secs: sdkSecs}
	b.ratioRow("s3-vs-sdk", un, "", sdk, s3UploadTarget, nil)
	b.rows[len(b.rows)-1].ref = fmt.Sprintf("%s: %.3f s (in the bench process)", sdk.argv[0], sdkSecs)
	r := row{name: "s3-rss", bale: "n/a", ref: "–", ratio: "–", target: fmt.Sprintf("< %d MiB", s3RSSTargetKB>>10), result: "n/a"}
	if un.ok() {
		r.bale = fmt.Sprintf("%.1f MiB", float64(un.rssKB)/1024)
		r.result = okMiss(un.rssKB < s3RSSTargetKB)
	}
	b.rows = append(b.rows, r)
	// pack s3:// streams the bucket into a bundle (no stage): against pack registry:POOL, whose
	// bundle it must equal byte for byte.
	if un.ok() {
		out := filepath.Join(dir, "S3.tar.zst")
		pk, err := b.timed(nil, []string{out}, "", b.bale, "pack", "-o", out, "s3://unpack/site")
		if err != nil {
			return err
		}
		var checks []error
		if pk.ok() {
			checks = append(checks, sameFile(out, b.bundle))
		}
		b.ratioRow("s3-pack", pk, "", b.packRun, 1, checks)
		// Issue #13 sets no target for it: the row shows the time and checks the bytes.
		r := &b.rows[len(b.rows)-1]
		r.target = "– (byte-identical)"
		if r.result == "ok" || r.result == "MISS" {
			r.result = "ok"
		}
		b.drop(out)
	}
	if un.ok() && sdkSecs > 0 {
		b.note("s3: bale unpack %.1f MiB/s, push %.1f MiB/s, SDK alone %.1f MiB/s (of %s); CPU seconds: bale unpack %.1f + MinIO %.1f; "+
			"bale push %.1f + docker-registry %.1f + MinIO %.1f; SDK alone: MinIO %.1f (the uploader's own not counted)",
			float64(bytesUp)/(1<<20)/un.secs, float64(bytesUp)/(1<<20)/push.secs, float64(bytesUp)/(1<<20)/sdkSecs, mib(bytesUp),
			un.cpu, unCPU, push.cpu, regCPU, pushCPU, sdkCPU)
	}
	return nil
}

// sameFile checks that the files a and b hold the same bytes.
func sameFile(a, b string) error {
	x, err := os.ReadFile(a)
	if err != nil {
		return err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(x, y) {
		return fmt.Errorf("%s (%d bytes) is not byte-identical to %s (%d bytes)", a, len(x), b, len(y))
	}
	return nil
}

// s3Count checks that the s3:// location holds a tag for every image of the pool.
func (b *bench) s3Count(loc string) error {
	cfg, err := s3store.ParseURL(loc)
	if err != nil {
		return err
	}
	st, err := s3store.Open(b.ctx, cfg)
	if err != nil {
		return err
	}
	refs, err := st.Refs()
	if err != nil {
		return err
	}
	b.note("check: %s holds %d tags", loc, len(refs))
	if len(refs) != b.n {
		return fmt.Errorf("%s holds %d tags, not %d", loc, len(refs), b.n)
	}
	return nil
}

// lookMinio is the minio binary on PATH or in $HOME/go/bin, or "".
func lookMinio() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "minio"); exec.Command(p, "--version").Run() == nil {
			return p
		}
	}
	return ""
}

// s3FreeEnv is the bench's environment without AWS_ variables (docker-registry's s3 driver
// panics on AWS_CA_BUNDLE).
func s3FreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// s3Client is an S3 client of endpoint configured as bale's is: path style, jobs*4 idle
// connections, checksums only where required.
func s3Client(endpoint string, jobs int) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 4*jobs, 4*jobs
	})
	return s3.New(s3.Options{
		Region: s3Region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true, HTTPClient: hc,
		Credentials:                credentials.NewStaticCredentialsProvider(s3Key, s3Secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// sdkUpload uploads every regular file under dir to bucket at prefix/<relative path>: a file
// up to partSize in one PUT, a larger one as a multipart upload; at most jobs requests at once.
func sdkUpload(ctx context.Context, c *s3.Client, bucket, prefix, dir string, jobs int, partSize int64) (objects int, total int64, err error) {
	sem := make(chan struct{}, jobs)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(e error) { mu.Lock(); errs = append(errs, e); mu.Unlock() }
	werr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		key := prefix + "/" + filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objects++
		total += int64(len(data))
		if int64(len(data)) <= partSize {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}); err != nil {
					fail(fmt.Errorf("PUT %s: %w", key, err))
				}
			})
			return nil
		}
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return fmt.Errorf("multipart %s: %w", key, err)
		}
		n := int((int64(len(data)) + partSize - 1) / partSize)
		parts := make([]types.CompletedPart, n)
		var fw sync.WaitGroup
		for i := range n {
			part := data[int64(i)*partSize : min(int64(len(data)), int64(i+1)*partSize)]
			sem <- struct{}{}
			fw.Go(func() {
				defer func() { <-sem }()
				num := int32(i + 1)
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: &num,
					Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
				if err != nil {
					fail(fmt.Errorf("part %d of %s: %w", num, key, err))
					return
				}
				parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
			})
		}
		wg.Go(func() {
			fw.Wait()
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
				fail(fmt.Errorf("completing %s: %w", key, err))
			}
		})
		return nil
	})
	wg.Wait()
	return objects, total, errors.Join(append(errs, werr)...)
}

// process is a server the s3 rows started on a free 127.0.0.1 port, stopped by its PID.
type process struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess starts argv(addr) on a free 127.0.0.1 port with env, its output in logPath,
// and waits until GET http://addr+ready answers 200 (any answer when ready is "").
func startProcess(ctx context.Context, logPath string, env []string, argv func(addr string) []string, ready string) (*process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := argv(addr)
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	p := &process{addr: addr, cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, log, log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited: %s", args[0], b)
		default:
		}
		if resp, err := http.Get("http://" + addr + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || ready == "" {
				return p, nil
			}
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s did not answer on %s within 60 s", args[0], addr)
}

// cpu is the user and system CPU seconds the process has used so far (/proc/PID/stat).
func (p *process) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces, inside parentheses);
	// utime and stime are the 14th and 15th of the whole line, in clock ticks (100 Hz).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ut, st float64
	if len(f) > 12 {
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
	}
	return (ut + st) / 100
}

// stop kills the process by its PID and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
