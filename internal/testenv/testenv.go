// Package testenv runs the real peers of bale (docker-registry 2.8 and skopeo)
// for tests: no mocks, every server bound to 127.0.0.1 on a free port and
// stopped by its own PID.
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// aptPackages names the Debian package that provides each binary used here.
var aptPackages = map[string]string{
	"skopeo":          "skopeo",
	"docker-registry": "docker-registry",
}

// Need returns the absolute path of bin on PATH, or skips the test naming the apt package to install.
func Need(t testing.TB, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err == nil {
		p, err = filepath.Abs(p)
	}
	if err != nil {
		pkg := aptPackages[bin]
		if pkg == "" {
			pkg = bin
		}
		if os.Getenv("CI") != "" {
			// CI installs the real peers (.ci/run): a missing one there is a failure, not a skip.
			t.Fatalf("%s not found on PATH under CI (%v); .ci/run must apt-get install %s", bin, err, pkg)
		}
		t.Skipf("%s not found on PATH (%v); install it with: apt-get install %s", bin, err, pkg)
	}
	return p
}

// SkopeoTimeout bounds every skopeo invocation made through Skopeo.
const SkopeoTimeout = 2 * time.Minute

// RunSkopeo runs skopeo --insecure-policy args... and returns its stdout; the error
// names the full command and carries stdout and stderr. It is safe to call from any goroutine.
func RunSkopeo(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		return nil, fmt.Errorf("skopeo not found (apt-get install skopeo): %w", err)
	}
	full := append([]string{"--insecure-policy"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s",
			bin, strings.Join(full, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// Skopeo runs skopeo --insecure-policy args... with a 2-minute timeout and returns its
// stdout; it calls t.Fatal with the command, stdout and stderr on failure.
func Skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	Need(t, "skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), SkopeoTimeout)
	defer cancel()
	out, err := RunSkopeo(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Registry is a docker-registry 2.8 process serving one storage root on 127.0.0.1.
type Registry struct {
	Addr string // "127.0.0.1:PORT"
	Root string // storage.filesystem.rootdirectory
	// Secure is set for a registry of StartSecureRegistry (https, basic auth).
	Secure *Secure

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	logPath  string
	stopOnce *sync.Once
	// for Restart
	bin, dir string
	attempt  int
}

// registryConfig is the docker-registry configuration; %s are the root and the listen address.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
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

// startAttempts bounds retries when the free port is taken between probing and listening.
const startAttempts = 3

// StartRegistry starts /usr/bin/docker-registry serving root on a free 127.0.0.1 port,
// waits until /v2/ answers 200 and registers a cleanup that stops it by PID.
func StartRegistry(t testing.TB, root string) *Registry {
	t.Helper()
	return startWith(t, root, nil)
}

// StartDistribution3 is StartRegistry with Distribution v3 (the binary `registry`, built by
// .ci/run) instead of Debian's docker-registry 2.8: the same storage, the same config.
func StartDistribution3(t testing.TB, root string) *Registry {
	t.Helper()
	return startBin(t, NeedTool(t, "registry"), root, nil)
}

// startWith starts docker-registry, with TLS and auth when s is set.
func startWith(t testing.TB, root string, s *Secure) *Registry {
	t.Helper()
	return startBin(t, Need(t, "docker-registry"), root, s)
}

// startBin starts the registry binary bin, with TLS and auth when s is set.
func startBin(t testing.TB, bin, root string, s *Secure) *Registry {
	t.Helper()
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatalf("registry root: %v", err)
	}
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		r, err := startRegistry(bin, root, dir, addr, attempt, s)
		if err == nil {
			t.Cleanup(func() {
				r.Stop()
				if t.Failed() {
					t.Logf("%s log (%s):\n%s", filepath.Base(bin), r.logPath, r.Log())
				}
			})
			r.bin, r.dir, r.attempt = bin, dir, attempt
			return r
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			t.Fatalf("start %s: %v", bin, err)
		}
	}
}

// Restart stops the registry (by PID) and starts it again on the same address and root.
func (r *Registry) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	r.attempt++
	n, err := startRegistry(r.bin, r.Root, r.dir, r.Addr, r.attempt, r.Secure)
	if err != nil {
		t.Fatalf("restart docker-registry: %v", err)
	}
	n.bin, n.dir, n.attempt = r.bin, r.dir, r.attempt
	*r = *n
	t.Cleanup(r.Stop)
}

// errAddrInUse reports that the probed free port was taken before the registry bound it.
var errAddrInUse = errors.New("address already in use")

// startRegistry makes one attempt at starting the registry.
func startRegistry(bin, root, dir, addr string, attempt int, sec *Secure) (*Registry, error) {
	cfgPath := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	cfg := fmt.Appendf(nil, registryConfig, root, addr)
	switch {
	case sec != nil && sec.Token != nil:
		cfg = fmt.Appendf(cfg, tlsConfig+tokenConfig, sec.certFile, sec.keyFile, sec.Token.Realm(), tokenService, tokenIssuerName, sec.Token.certFile)
	case sec != nil:
		cfg = fmt.Appendf(cfg, tlsConfig+htpasswdConfig, sec.certFile, sec.keyFile, sec.htpasswd)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	r := &Registry{Addr: addr, Root: root, Secure: sec, stopOnce: new(sync.Once), done: make(chan struct{}), logPath: filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s serve %s: %w", bin, cfgPath, err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(10 * time.Second); err != nil {
		r.Stop()
		log := r.Log()
		if strings.Contains(log, "address already in use") {
			err = fmt.Errorf("%w: %s", errAddrInUse, addr)
		}
		return nil, fmt.Errorf("%w\nregistry log:\n%s", err, log)
	}
	return r, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	return addr, nil
}

// httpClient talks to the local registry only, never through a proxy.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   10 * time.Second,
}

// waitReady polls GET /v2/ until it answers 200, the process exits or timeout passes.
func (r *Registry) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client, url, ready := httpClient, "http://"+r.Addr+"/v2/", http.StatusOK
	if r.Secure != nil {
		var err error
		if client, err = r.Secure.client(); err != nil {
			return err
		}
		url, ready = "https://"+r.Addr+"/v2/", http.StatusUnauthorized
	}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited early: %v", r.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == ready {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("docker-registry on %s not ready after %s: %w", r.Addr, timeout, last)
}

// Stop kills the registry process by PID and waits for it to exit; it is idempotent.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() { kill(r.cmd, r.done) })
}

// kill kills the process cmd started, by its PID, unless it has exited already (done is
// closed when its Wait returns), and waits for it.
func kill(cmd *exec.Cmd, done <-chan struct{}) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Kill()
		<-done
	}
}

// Log returns the registry's log output so far.
func (r *Registry) Log() string {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(data)
}

// Ref returns "docker://ADDR/repo:tag", or "docker://ADDR/repo@digest" when given a digest.
func (r *Registry) Ref(repo, tagOrDigest string) string {
	if _, err := digest.Parse(tagOrDigest); err == nil {
		return "docker://" + r.Addr + "/" + repo + "@" + tagOrDigest
	}
	return "docker://" + r.Addr + "/" + repo + ":" + tagOrDigest
}

// SkopeoFlags are skopeo's flags to reach r, for side "src-", "dest-" or "" (inspect): no TLS
// and no credentials, or r's certificate and user.
func (r *Registry) SkopeoFlags(side string) []string {
	if r.Secure == nil {
		return []string{"--" + side + "tls-verify=false", "--" + side + "no-creds"}
	}
	return []string{"--" + side + "cert-dir", r.Secure.CertDir, "--" + side + "creds", r.Secure.User + ":" + r.Secure.Password}
}

// Push copies srcRef (all instances, digests preserved) to repo:tag in the registry.
func (r *Registry) Push(t testing.TB, srcRef, repo, tag string) {
	t.Helper()
	Skopeo(t, append(append([]string{"copy", "--all", "--preserve-digests"}, r.SkopeoFlags("dest-")...), srcRef, r.Ref(repo, tag))...)
}

// CheckPull pulls repo:tag with skopeo into a dir: image and checks that the top-level
// manifest hashes to want and every child manifest to its digest; it also checks
// `skopeo inspect --raw`. skopeo verifies every blob digest while pulling.
func (r *Registry) CheckPull(t testing.TB, repo, tag string, want digest.Digest, children []digest.Digest) {
	t.Helper()
	ref := r.Ref(repo, tag)
	dir := filepath.Join(t.TempDir(), "pull")
	Skopeo(t, append(append([]string{"copy", "--all"}, r.SkopeoFlags("src-")...), ref, "dir:"+dir)...)
	checkFile := func(name string, want digest.Digest) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if got := digest.FromBytes(data); got != want {
			t.Fatalf("pull %s: %s hashes to %s, want %s", ref, name, got, want)
		}
	}
	checkFile("manifest.json", want)
	for _, ch := range children {
		checkFile(ch.Encoded()+".manifest.json", ch)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	for _, e := range entries {
		name := e.Name()
		if hexName(strings.TrimSuffix(name, ".manifest.json")) {
			checkFile(name, digest.NewDigestFromEncoded(digest.SHA256, strings.TrimSuffix(name, ".manifest.json")))
		}
	}
	raw := Skopeo(t, append(append([]string{"inspect", "--raw"}, r.SkopeoFlags("")...), ref)...)
	if got := digest.FromBytes(raw); got != want {
		t.Fatalf("skopeo inspect --raw %s: bytes hash to %s, want %s", ref, got, want)
	}
}

// hexName reports whether name is a 64-character lower-case hex string (a sha256 encoding).
func hexName(name string) bool {
	if len(name) != sha256.Size*2 || strings.ToLower(name) != name {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// getJSON fetches http://ADDR/path and decodes a 200 JSON answer into v.
func (r *Registry) getJSON(path string, v any) error {
	client, url := httpClient, "http://"+r.Addr+path
	if r.Secure != nil {
		var err error
		if client, err = r.Secure.client(); err != nil {
			return err
		}
		url = "https://" + r.Addr + path
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	switch {
	case r.Secure != nil && r.Secure.Token != nil:
		b, err := r.Secure.Token.bearer(path)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", b)
	case r.Secure != nil:
		req.SetBasicAuth(r.Secure.User, r.Secure.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Tags returns the sorted tags of repo from GET /v2/<repo>/tags/list (2.8 answers unsorted).
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := r.getJSON("/v2/"+repo+"/tags/list", &list); err != nil {
		t.Fatal(err)
	}
	sort.Strings(list.Tags)
	return list.Tags
}

// Catalog returns the sorted repository names from GET /v2/_catalog (first 1000).
func (r *Registry) Catalog(t testing.TB) []string {
	t.Helper()
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	if err := r.getJSON("/v2/_catalog?n=1000", &cat); err != nil {
		t.Fatal(err)
	}
	sort.Strings(cat.Repositories)
	return cat.Repositories
}
