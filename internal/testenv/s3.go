package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a real S3 server (versitygw, the pinned GoTools entry, over a posix
// directory) on 127.0.0.1, stopped by its PID at the end of the test.
type S3Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	Addr      string // "127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Dir       string // the posix backend: each bucket a directory, each object a file at its key

	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
	stopOnce sync.Once
}

// S3Region is the region the test servers are reached with.
const S3Region = "us-east-1"

// StartS3 starts versitygw on a free 127.0.0.1 port over a new directory and waits until it
// answers. It is skipped (failed under CI) when versitygw is not installed.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	return startS3(t, "", "")
}

// StartS3TLS is StartS3 serving HTTPS with certFile and keyFile (see NewCert); Endpoint is
// "https://127.0.0.1:PORT".
func StartS3TLS(t testing.TB, certFile, keyFile string) *S3Server {
	t.Helper()
	return startS3(t, certFile, keyFile)
}

func startS3(t testing.TB, certFile, keyFile string) *S3Server {
	t.Helper()
	bin := NeedTool(t, "versitygw")
	scheme, tlsArgs := "http", []string(nil)
	if certFile != "" {
		scheme, tlsArgs = "https", []string{"--cert", certFile, "--key", keyFile}
	}
	return startS3Server(t, s3Launch{
		name:   "versitygw",
		scheme: scheme,
		args: func(s *S3Server) []string {
			return append(append([]string{"--port", s.Addr}, tlsArgs...), "posix", s.Dir)
		},
		env: func(s *S3Server) []string {
			return []string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey}
		},
		ready: func(s *S3Server) bool {
			c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		},
		timeout: 15 * time.Second,
	}, bin)
}

// s3Launch says how to run one kind of S3 server for startS3Server.
type s3Launch struct {
	name    string // the server, in messages and log names
	scheme  string // of Endpoint: "http" or "https"
	args    func(*S3Server) []string
	env     func(*S3Server) []string // besides cleanEnv and HOME
	ready   func(*S3Server) bool     // whether the server answers yet
	timeout time.Duration
}

// startS3Server starts bin as l says on a free 127.0.0.1 port (another port if that one was
// taken meanwhile), with its own data directory, log and HOME, waits until it answers, and
// registers a cleanup that stops it by PID (and shows its log if the test failed).
func startS3Server(t testing.TB, l s3Launch, bin string) *S3Server {
	t.Helper()
	dir := t.TempDir()
	s := &S3Server{AccessKey: "baletestkey", SecretKey: "baletestsecret0123456789", Dir: filepath.Join(dir, "data")}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr, s.Endpoint = addr, l.scheme+"://"+addr
		s.logPath = filepath.Join(dir, fmt.Sprintf("%s-%d.log", l.name, attempt))
		s.done, s.stopOnce = make(chan struct{}), sync.Once{}
		if err = s.start(l, bin); err == nil {
			break
		}
		if attempt == startAttempts {
			t.Fatalf("start %s: %v", l.name, err)
		}
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			t.Logf("%s log (%s):\n%s", l.name, s.logPath, b)
		}
	})
	return s
}

// start runs the server once on s.Addr and waits until it answers, exits, or l.timeout ends.
func (s *S3Server) start(l s3Launch, bin string) error {
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, l.args(s)...)
	s.cmd.Env = append(append(cleanEnv(), l.env(s)...), "HOME="+filepath.Dir(s.Dir))
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(l.timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("%s exited early: %v\n%s", l.name, s.cmd.ProcessState, b)
		default:
		}
		if l.ready(s) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("%s did not answer within %s", l.name, l.timeout)
}

// Stop kills the server by PID and waits for it; it is idempotent.
func (s *S3Server) Stop() {
	s.stopOnce.Do(func() { kill(s.cmd, s.done) })
}

// cleanEnv is the environment without any AWS_ variable (a CA bundle, a profile, keys).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// Client returns an S3 client of the server with its root credentials.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       S3Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// MakeBucket creates bucket on the server.
func (s *S3Server) MakeBucket(t testing.TB, bucket string) {
	t.Helper()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// Env is the environment that points the AWS SDK (bale) at the server with its root
// credentials, reading no ~/.aws file and no instance metadata.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + S3Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this process for the rest of the test (t.Setenv) and unsets every
// other AWS_ variable.
func (s *S3Server) SetEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// RegistryS3Config is the config.yml of a docker-registry serving root in bucket of the S3
// endpoint (path-style, plain HTTP, no redirects) on addr; make bench uses it too.
func RegistryS3Config(accessKey, secretKey, endpoint, bucket, root, addr string) string {
	return fmt.Sprintf(registryS3Config, accessKey, secretKey, endpoint, bucket, root, addr)
}

// registryS3Config is RegistryS3Config's text: %q are the access key, secret key, endpoint,
// bucket, root directory and listen address.
const registryS3Config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: %q
    secretkey: %q
    region: us-east-1
    regionendpoint: %q
    bucket: %q
    rootdirectory: %q
    secure: false
    forcepathstyle: true
  redirect:
    disable: true
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
health:
  storagedriver:
    enabled: false
http:
  addr: %q
`

// RegistryS3Config returns the docker-registry config.yml text serving bucket/root of s on addr.
func (s *S3Server) RegistryS3Config(bucket, root, addr string) string {
	return RegistryS3Config(s.AccessKey, s.SecretKey, s.Endpoint, bucket, root, addr)
}

// StartRegistryS3 starts docker-registry with storage.s3 on bucket (rootdirectory root) of
// s, on a free 127.0.0.1 port, without AWS_CA_BUNDLE (its s3 driver panics on it) or any
// other AWS_ variable in its environment.
func StartRegistryS3(t testing.TB, s *S3Server, bucket, root string) *Registry {
	t.Helper()
	bin := Need(t, "docker-registry")
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
		if err := os.WriteFile(cfgPath, []byte(s.RegistryS3Config(bucket, root, addr)), 0o644); err != nil {
			t.Fatal(err)
		}
		r := &Registry{Addr: addr, stopOnce: new(sync.Once), done: make(chan struct{}), logPath: filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))}
		logFile, err := os.Create(r.logPath)
		if err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "serve", cfgPath)
		r.cmd.Env = cleanEnv()
		r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
		err = r.cmd.Start()
		logFile.Close()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = r.cmd.Wait()
			close(r.done)
		}()
		if err := r.waitReady(15 * time.Second); err != nil {
			r.Stop()
			if attempt < startAttempts && strings.Contains(r.Log(), "address already in use") {
				continue
			}
			t.Fatalf("start docker-registry on s3: %v\n%s", err, r.Log())
		}
		t.Cleanup(func() {
			r.Stop()
			if t.Failed() {
				t.Logf("docker-registry log (%s):\n%s", r.logPath, r.Log())
			}
		})
		return r
	}
}
