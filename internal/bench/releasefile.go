package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bale-project/bale/layout/registry"
)

// releaseFileSize is the size of the file of the release-file row: 1 GiB.
const releaseFileSize = 1 << 30

// releaseFile: a 1 GiB file of random bytes (ChaCha8: incompressible) named by a release file
// (files:) is packed (pack -f, from an empty SOURCE) and unpacked into registry storage, each
// rate in MB/s next to the rate of the pool's pack and unpack in the same run (POOL bytes /
// time, almost all of it layers); then copied to files: from the unpacked storage, which must
// be a hard link to the blob (same inode) that adds no bytes to the disk.
func (b *bench) releaseFile() error {
	dir := filepath.Join(b.work, "REL")
	big := filepath.Join(dir, "big.bin")
	empty, out, x, files := filepath.Join(b.work, "EMPTY"), filepath.Join(b.work, "RF.tar.zst"), filepath.Join(b.work, "RFX"), filepath.Join(b.work, "RFF")
	defer b.drop(dir, empty, out, x, files)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeRandomFile(big, releaseFileSize); err != nil {
		return fmt.Errorf("release-file: %w", err)
	}
	rel := filepath.Join(dir, "release.yaml")
	if err := os.WriteFile(rel, []byte("files:\n  - path: big.bin\n    name: bench/big\n    tag: v1\n"), 0o644); err != nil {
		return err
	}
	if _, err := registry.Create(empty); err != nil {
		return err
	}
	b.header = append(b.header, fmt.Sprintf("Release file (release-file rows): REL/release.yaml names one file, REL/big.bin, %s of ChaCha8 random bytes (incompressible), "+
		"stored as one uncompressed layer (oras's application/vnd.oci.image.layer.v1.tar); SOURCE is an empty registry storage EMPTY. "+
		"MB/s = 10^6 bytes of the file (of POOL for the pool) per second.", mib(releaseFileSize)))
	rate := func(r *run, n int64) string {
		if !r.ok() || r.secs <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f MB/s", float64(n)/1e6/r.secs)
	}
	pack, err := b.timed([]string{big}, []string{out}, "", b.bale, "pack", "-f", rel, "-o", out, "registry:"+empty)
	if err != nil {
		return err
	}
	b.rateRow("release-file-pack", pack, rate(pack, releaseFileSize), b.packRun, rate(b.packRun, b.poolBytes))
	if !pack.ok() {
		return nil
	}
	unpack, err := b.timed([]string{out}, []string{x}, "", b.bale, "unpack", "--to", "registry:"+x, out)
	if err != nil {
		return err
	}
	b.rateRow("release-file-unpack", unpack, rate(unpack, releaseFileSize), b.unpackRun, rate(b.unpackRun, b.poolBytes))
	if !unpack.ok() {
		return nil
	}

	// files: from the unpacked storage: a hard link, no bytes written.
	syscall.Sync()
	before := diskUsage(b.work)
	cp, err := b.timed(nil, []string{files}, "", b.bale, "copy", "registry:"+x, "files:"+files)
	if err != nil {
		return err
	}
	syscall.Sync()
	after := diskUsage(b.work)
	r := row{name: "release-file-files", bale: b.cell(cp, ""), ref: "–", ratio: "–", target: "hard link, 0 bytes written", result: "FAIL"}
	if cp.ok() {
		got := filepath.Join(files, "bench", "big", "big.bin")
		same, err := sameInode(got, x)
		grown := after.disk - before.disk
		r.bale += fmt.Sprintf("; disk use of WORK %s -> %s (%+d bytes: directories and the record)", thousands(before.disk), thousands(after.disk), grown)
		switch {
		case err != nil:
			b.note("check FAILED: release-file-files: %v", err)
		case !same:
			b.note("check FAILED: release-file-files: %s is not a hard link to the blob in RFX", got)
		case grown >= releaseFileSize/1024:
			b.note("check FAILED: release-file-files: the disk use grew by %d bytes", grown)
		default:
			r.result = "ok"
			b.note("check: RFF/bench/big/big.bin is the inode of its blob in RFX (hard link); WORK grew by %d bytes", grown)
		}
	}
	if r.result != "ok" {
		b.failed = true
	}
	b.rows = append(b.rows, r)
	return nil
}

// rateRow adds a row of a bale run with its rate next to the pool's run and rate.
func (b *bench) rateRow(name string, br *run, brate string, pool *run, prate string) {
	r := row{name: name, bale: b.cell(br, ""), ref: "pool: " + b.cell(pool, "n/a (not run)"), ratio: brate + " vs " + prate, target: "≈ the pool's rate", result: "n/a"}
	if br.ok() {
		r.result = "ok"
		if pool.ok() {
			r.ratio = fmt.Sprintf("%s vs %s (%.2f)", brate, prate, (float64(releaseFileSize)/br.secs)/(float64(b.poolBytes)/pool.secs))
		}
	} else {
		r.result, b.failed = "FAIL", true
	}
	b.rows = append(b.rows, r)
}

// sameInode reports whether p is a hard link to a blob data file below the storage root.
func sameInode(p, root string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	found := false
	err = filepath.Walk(filepath.Join(root, "docker/registry/v2/blobs"), func(q string, qi os.FileInfo, err error) error {
		if err == nil && qi.Mode().IsRegular() && os.SameFile(fi, qi) {
			found = true
		}
		return err
	})
	return found, err
}

// writeRandomFile writes n ChaCha8 random bytes to p.
func writeRandomFile(p string, n int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	src := rand.NewChaCha8([32]byte{'b', 'a', 'l', 'e'})
	buf := make([]byte, 4<<20)
	for left := n; left > 0; left -= int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), left)]
		src.Read(chunk)
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
