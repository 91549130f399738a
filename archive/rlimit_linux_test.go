//go:build linux

package archive_test

import "syscall"

// limitMemory caps the address space of a crasher child process, so that a reader that
// allocates without bound fails fast instead of exhausting the machine.
func limitMemory() {
	const limit = 4 << 30
	_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
}
