package fsutil

import (
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
	p := filepath.Join(dir, LockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, FileMode)
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
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
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
