package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// mountTmpfs mounts a new tmpfs at dir with the mount options opts ("size=1m", "ro,size=1m"),
// unmounted when the test ends; the error says why it could not (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, dir, opts string) error {
	t.Helper()
	var flags uintptr
	if len(opts) >= 3 && opts[:3] == "ro," {
		flags, opts = syscall.MS_RDONLY, opts[3:]
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("mount -t tmpfs -o %s %s: %w", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return nil
}

// needTmpfs is mountTmpfs that skips the test where mounting is not permitted, and fails it
// under CI=true, where it must run.
func needTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if err := mountTmpfs(t, dir, opts); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: this test must run)", err)
		}
		t.Skip(err)
	}
}

// remountTmpfs changes the size of the tmpfs mounted at dir.
func remountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount -o remount,size=%d %s: %v", size, dir, err)
	}
}
