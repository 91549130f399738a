package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestContainerdStartStop starts a containerd of the test's own, reaches it with ctr, and
// stops it by PID: the process is gone, and its socket was under the test's directory.
func TestContainerdStartStop(t *testing.T) {
	c := StartContainerd(t)
	if !strings.HasPrefix(c.Socket, os.TempDir()) {
		t.Errorf("socket %s is not under the temporary directory", c.Socket)
	}
	if out := c.Ctr(t, "version"); !strings.Contains(out, "Server:") {
		t.Errorf("ctr version:\n%s", out)
	}
	pid := c.cmd.Process.Pid
	c.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("containerd (pid %d) still runs after Stop", pid)
	}
}

// TestPodmanOwnStorage runs podman with storage of its own.
func TestPodmanOwnStorage(t *testing.T) {
	p := NewPodman(t)
	if out := p.Run(t, "images", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("a new storage lists images: %s", out)
	}
}

// TestAptPackagesInCIRun checks that .ci/run installs the Debian package of every binary the
// tests look for with Need, and checks for each such binary before deciding to install.
func TestAptPackagesInCIRun(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var install, check string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "apt-get install") {
			install = line
		}
		if strings.HasPrefix(strings.TrimSpace(line), "for bin in") {
			check = line
		}
	}
	for bin, pkg := range aptPackages {
		if !strings.Contains(install+" ", " "+pkg+" ") {
			t.Errorf(".ci/run does not apt-get install %s (for %s)", pkg, bin)
		}
		if !strings.Contains(check+" ", " "+bin+" ") && !strings.Contains(check+";", " "+bin+";") {
			t.Errorf(".ci/run does not look for %s before installing", bin)
		}
	}
}
