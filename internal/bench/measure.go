package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// run is one execution of a command.
type run struct {
	argv  []string
	dir   string // working directory, "" for the bench's own
	secs  float64
	rssKB int64   // peak resident set size of the process and the children it waited for
	cpu   float64 // user + system seconds of the process and the children it waited for
	first float64 // seconds from the start to the end of the first line on stdout; 0 for none
	err   error
	out   string // stdout and stderr
}

// gnuTime is GNU time if installed. Peak RSS is taken from it because the ru_maxrss that wait4
// returns for a child of this process is at least this process's own RSS: Go starts children
// with clone(CLONE_VM|CLONE_VFORK), and exec records the RSS of the shared address space in the
// child's high-water mark. GNU time fork()s from a small process, so its %M is the command's.
var gnuTime = func() string {
	const p = "/usr/bin/time"
	if exec.Command(p, "-f", "%M", "-o", os.DevNull, "true").Run() != nil {
		return ""
	}
	return p
}()

// rssSource says where the max RSS figures come from, for the report.
func rssSource() string {
	if gnuTime != "" {
		return "max RSS is " + gnuTime + " -f %M (for a script: its largest process)"
	}
	return "max RSS is wait4's ru_maxrss (no GNU time: it includes the bench's own RSS as a floor)"
}

// execute runs argv in dir once and measures its wall time around the exec, and its peak RSS.
func execute(ctx context.Context, dir string, argv ...string) *run {
	r := &run{argv: argv, dir: dir}
	full, rssFile := argv, ""
	if gnuTime != "" {
		f, err := os.CreateTemp("", "bale-bench-rss-")
		if err != nil {
			r.err = err
			return r
		}
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		full = append([]string{gnuTime, "-f", "%M", "-o", rssFile}, argv...)
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Dir = dir
	// The command runs in a process group of its own, and a cancel (SIGINT to the bench) kills
	// the group: killing GNU time alone left the command it runs (bale push, a server) behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// stdout and stderr go to one buffer from two copying goroutines (stdout's is timed), so
	// through one lock: bytes.Buffer.ReadFrom would lose the other's writes.
	var out lockedBuffer
	start := time.Now()
	cmd.Stdout, cmd.Stderr = &firstLineWriter{w: &out, start: &start, first: &r.first}, &out
	r.err = cmd.Run()
	r.secs = time.Since(start).Seconds()
	r.out = out.String()
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = (ps.UserTime() + ps.SystemTime()).Seconds() // GNU time's own share is negligible
	}
	if rssFile != "" {
		// The last line is %M; GNU time may write "Command exited with ..." before it.
		b, _ := os.ReadFile(rssFile)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		fmt.Sscan(lines[len(lines)-1], &r.rssKB)
	} else if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.rssKB = ru.Maxrss // KB on Linux
		}
	}
	return r
}

// firstLineWriter writes to w and records in first the seconds since start when the first
// newline goes through (bale list: how soon the first line of a table is out).
type firstLineWriter struct {
	w     io.Writer
	start *time.Time
	first *float64
}

func (f *firstLineWriter) Write(p []byte) (int, error) {
	if *f.first == 0 && bytes.IndexByte(p, '\n') >= 0 {
		*f.first = time.Since(*f.start).Seconds()
	}
	return f.w.Write(p)
}

// lockedBuffer is a bytes.Buffer written under a lock.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ok reports whether the command succeeded.
func (r *run) ok() bool { return r != nil && r.err == nil }

// tail returns the last lines of the command's output, for error notes.
func (r *run) tail() string {
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " / ")
}

// warm flushes dirty pages (so that write-back of a previous step does not land in the next
// timing) and reads every regular file under paths once, so the timed run sees a warm cache.
// Hard links are read once.
func warm(paths ...string) error {
	syscall.Sync()
	seen := map[[2]uint64]bool{}
	buf := make([]byte, 1<<20)
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				k := [2]uint64{st.Dev, st.Ino}
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyBuffer(io.Discard, f, buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("warming %s: %w", root, err)
		}
	}
	return nil
}

// usage is what a directory tree holds: distinct files and their disk blocks, hard links
// counted once.
type usage struct {
	files int
	bytes int64 // apparent size
	disk  int64 // allocated blocks
}

func diskUsage(root string) usage {
	var u usage
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		k := [2]uint64{st.Dev, st.Ino}
		if seen[k] {
			return nil
		}
		seen[k] = true
		if d.Type().IsRegular() {
			u.files++
			u.bytes += fi.Size()
		}
		u.disk += st.Blocks * 512
		return nil
	})
	return u
}

// mib formats a byte count in MiB (or GiB above 10 GiB).
func mib(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// firstLine returns the first line of a command's output, or "?" when it fails.
func firstLine(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// procField returns the value of the first "key: value" line of a /proc-style file.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// osName returns PRETTY_NAME of /etc/os-release.
func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "?"
}

// fsType names the file system holding path, from statfs's magic number.
func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "?"
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext2/3/4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// machine describes where the bench runs, for the report header.
func machine(bale, work string) []string {
	memKB := procField("/proc/meminfo", "MemTotal")
	mem := memKB
	var kb int64
	if _, err := fmt.Sscanf(memKB, "%d kB", &kb); err == nil {
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return []string{
		fmt.Sprintf("CPU: %d x %s", runtime.NumCPU(), procField("/proc/cpuinfo", "model name")),
		"memory: " + mem,
		fmt.Sprintf("OS: %s, kernel %s", osName(), strings.TrimSpace(string(kernel))),
		fmt.Sprintf("work dir: %s (%s)", work, fsType(work)),
		"Go: " + runtime.Version(),
		"bale: " + firstLine(bale, "--version"),
		"zstd: " + firstLine("zstd", "--version"),
		"tar: " + firstLine("tar", "--version"),
		"bash: " + firstLine("bash", "--version"),
	}
}
