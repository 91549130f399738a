package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// LockName is the lock file bale keeps in a target while it writes there.
const LockName = ".bale.lock"

// ErrLocked reports a target another bale process is writing to.
var ErrLocked = errors.New("locked by another bale")

// Lock takes the exclusive lock of dir (which must exist) without waiting: an flock on
// dir/.bale.lock, released by the returned function or when the process ends, even by kill -9.
func Lock(dir string) (func(), error) {
	f, err := lockFile(dir)
	if err != nil {
		return nil, err
	}
	return func() { unlockFile(f) }, nil
}

// lockFile opens dir/.bale.lock and takes its exclusive flock without waiting.
func lockFile(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: another bale is writing there; wait for it to finish and run this again: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}

// unlockFile releases the flock lockFile took and closes the file.
func unlockFile(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// Lock file contents: a writer that holds the lock marks it dirty, and clean when it lets go.
var (
	markDirty = []byte("dirty\n")
	markClean = []byte("clean\n")
)

// LockSwept takes dir's lock (Lock) and removes what an interrupted bale left below it
// (Sweep), walking the tree only when the lock file does not say that the last bale to hold
// it let go normally: a patch onto a 20,000-tag registry storage no longer walks all of it
// first. A killed bale (kill -9, SIGINT, a crash, a power loss before the mark reached the
// disk) leaves the mark dirty; so does every bale before this one (the file is empty) and
// every other writer (no file): those are swept as before. The lock is marked dirty, durably,
// before the caller writes anything, and clean by the returned function, which a caller
// calls after a success and after an error alike: every writer removes its own temporary
// files on an error, so only a process that did not return leaves any.
func LockSwept(dir string) (func(), error) {
	f, err := lockFile(dir)
	if err != nil {
		return nil, err
	}
	unlock := func() { unlockFile(f) }
	mark := make([]byte, len(markClean)+1)
	n, _ := f.ReadAt(mark, 0)
	if !bytes.Equal(mark[:n], markClean) {
		if err := Sweep(dir); err != nil {
			unlock()
			return nil, err
		}
	}
	if err := setMark(f, markDirty); err != nil {
		unlock()
		return nil, fmt.Errorf("marking %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil { // the dirty mark must be on the disk before any write
		unlock()
		return nil, fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	return func() {
		setMark(f, markClean) // not synced: if it is lost, the next bale sweeps
		unlock()
	}, nil
}

// setMark replaces the lock file's content with m.
func setMark(f *os.File, m []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(m, 0)
	return err
}

// Sweep removes what an interrupted bale left below root: temporary files and directories
// (.bale-tmp-*, .bale-old-*). Call it only while holding root's lock.
func Sweep(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if name := d.Name(); p != root && (strings.HasPrefix(name, ".bale-tmp-") || strings.HasPrefix(name, ".bale-old-")) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
}

// IsNoSpace reports whether err is a full file system (or quota).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// SyncFS flushes everything written to the file system that holds dir (syncfs(2)): one call
// per batch instead of an fsync per file.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncing the file system of %s: %w", dir, err)
	}
	return nil
}
