package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	aptPackages["containerd"] = "containerd"
	aptPackages["ctr"] = "containerd"
	aptPackages["podman"] = "podman"
}

// RuntimeTimeout bounds every ctr and podman invocation, and containerd's start.
const RuntimeTimeout = 2 * time.Minute

// containerdConfig is a containerd 1.6 configuration of its own: root, state and sockets in
// the test's directory (so it never meets a system containerd), no CRI, no plugins that need
// more than a file system, no TCP listener. %q are root, state, and the socket.
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""
`

// Containerd is a containerd process of one test, with its own root, state and socket under
// the test's temporary directory, stopped by its PID when the test ends.
type Containerd struct {
	// Socket is the gRPC socket, for ctr -a.
	Socket string

	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	stop    sync.Once
}

// StartContainerd starts containerd (as root: it needs to) and waits until ctr reaches it.
// Without containerd or ctr the test is skipped (failed under CI); not being root skips it too.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	bin := Need(t, "containerd")
	Need(t, "ctr")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("containerd needs root, and CI runs the tests as another user")
		}
		t.Skip("containerd needs root")
	}
	dir := t.TempDir()
	c := &Containerd{Socket: filepath.Join(dir, "run", "containerd.sock"), done: make(chan struct{}), logPath: filepath.Join(dir, "containerd.log")}
	if len(c.Socket) > 100 {
		t.Fatalf("socket path %s is too long for a unix socket", c.Socket)
	}
	cfg := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc")
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	c.cmd = exec.Command(bin, "--config", cfg, "--log-level", "warn")
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("%s --config %s: %v", bin, cfg, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("containerd log (%s):\n%s", c.logPath, c.log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.done:
			t.Fatalf("containerd exited at start: %v\n%s", c.cmd.ProcessState, c.log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.run(ctx, "version")
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not ready after 30s: %v\n%s", err, c.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills containerd by its PID and waits for it; it is idempotent.
func (c *Containerd) Stop() {
	c.stop.Do(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

func (c *Containerd) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// run runs ctr -a SOCKET args... and returns its output.
func (c *Containerd) run(ctx context.Context, args ...string) ([]byte, error) {
	return runCommand(ctx, "ctr", append([]string{"-a", c.Socket}, args...)...)
}

// Ctr runs ctr -a SOCKET args... and returns its stdout; it fails the test on an error.
func (c *Containerd) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RuntimeTimeout)
	defer cancel()
	out, err := c.run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// CtrImage is one line of `ctr images ls` or `ctr images check`.
type CtrImage struct {
	Name, Digest string
	// Status is check's ("complete (4/4)"), empty for ls.
	Status string
}

// CtrImages lists the images of namespace ns: their names and digests from `ctr images ls`,
// and their status from `ctr images check`.
func (c *Containerd) CtrImages(t testing.TB, ns string) map[string]CtrImage {
	t.Helper()
	out := map[string]CtrImage{}
	for _, line := range strings.Split(c.Ctr(t, "-n", ns, "images", "ls"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 {
			out[f[0]] = CtrImage{Name: f[0], Digest: f[2]}
		}
	}
	// REF TYPE DIGEST STATUS SIZE UNPACKED: STATUS is "complete (4/4)", two fields.
	for _, line := range strings.Split(c.Ctr(t, "-n", ns, "images", "check"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 5 {
			img := out[f[0]]
			img.Status = f[3] + " " + f[4]
			out[f[0]] = img
		}
	}
	return out
}

// Podman runs Debian's podman with storage of its own: --root, --runroot and --tmpdir in the
// test's temporary directory, the vfs driver (no mounts, no fuse).
type Podman struct {
	args []string
}

// NewPodman prepares podman for one test; without podman the test is skipped (failed under
// CI).
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	Need(t, "podman")
	dir := t.TempDir()
	return &Podman{args: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "file"}}
}

// Run runs podman with the test's storage and args... and returns its stdout; it fails the
// test on an error.
func (p *Podman) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RuntimeTimeout)
	defer cancel()
	out, err := runCommand(ctx, "podman", append(append([]string{}, p.args...), args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// runCommand runs bin args... and returns its stdout; the error names the command and carries
// both outputs.
func runCommand(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", bin, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}
