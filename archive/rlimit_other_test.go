//go:build !linux

package archive_test

func limitMemory() {}
