package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout/remote"
	"github.com/bale-project/bale/layout/s3store"
)

// input is a file or directory a command reads, named as the command line names it.
type input struct {
	what string // "--base", "SOURCE", "BUNDLE", ...
	path string
}

// inputFiles are the files behind in: the path itself, and when it names a bundle split into
// volumes (in.path.001, ... or in.path ending in .001), every volume of the set.
func inputFiles(in input) []string {
	out := []string{in.path}
	return append(out, volumeFiles(in.path)...)
}

// volumeFiles are the volumes of the set path names that exist: path.001, path.002, ... (or,
// for path ending in .001, its siblings).
func volumeFiles(path string) []string {
	base := strings.TrimSuffix(path, ".001")
	var out []string
	for i := 1; i <= archive.MaxVolumes; i++ {
		p := archive.VolumeName(base, i)
		if _, err := os.Lstat(p); err != nil {
			break
		}
		out = append(out, p)
	}
	return out
}

// checkOutputFile checks, before any work, that the file a command is to write (flag names
// it: "-o", "--to oci-archive:") can be written where it is named, and that writing it
// (volumes: the volumes OUT.001, OUT.002, ... and the removal of an earlier set's extra
// ones) would replace none of the inputs, however the paths are spelled: files are compared
// by device and inode (os.SameFile), so symbolic links, "./", ".." and hard links are seen
// through. With mkdirs, the writer creates the missing directories above out, and the
// nearest existing one must be a directory that can be written. Each problem is a usage
// error that names both paths.
func checkOutputFile(flag, out string, volumes, mkdirs bool, inputs []input) error {
	name := flag + " " + out // -o FILE, --to oci-archive:FILE
	if strings.HasSuffix(flag, ":") {
		name = flag + out
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		example := "images.tar"
		if flag == "-o" {
			example = "release.tar.zst"
		}
		return usagef("%s is a directory: name the file to write in it, e.g. %s", name, filepath.Join(out, example))
	}
	dir := filepath.Dir(out)
	if mkdirs { // the writer creates the missing directories: the nearest one there counts
		for _, err := os.Stat(dir); (errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR)) && filepath.Dir(dir) != dir; _, err = os.Stat(dir) {
			dir = filepath.Dir(dir)
		}
	}
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, unix.ENOTDIR):
		return usagef("%s: a part of %s is not a directory", name, dir)
	case errors.Is(err, os.ErrNotExist):
		return usagef("%s: the directory %s does not exist (create it first)", name, dir)
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	case !fi.IsDir():
		return usagef("%s: %s is not a directory", name, dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("%s: cannot write in %s: %w", name, dir, err)
	}
	written := []string{out}
	if volumes {
		written = append(written, volumeFiles(out)...)
	}
	for _, w := range written {
		wi, err := os.Stat(w)
		if err != nil {
			continue // not there yet: it cannot be an input
		}
		for _, in := range inputs {
			for _, p := range inputFiles(in) {
				if fi, err := os.Stat(p); err == nil && os.SameFile(wi, fi) {
					same := ""
					if p != w {
						same = fmt.Sprintf(" (%s is the same file as %s)", w, p)
					}
					return usagef("%s would replace %s %s, which this command reads%s: write to another file", name, in.what, in.path, same)
				}
			}
		}
	}
	return nil
}

// localPath is the local file or directory a location argument names ("" for a bucket or a
// live registry).
func localPath(s string) string {
	if remote.Is(s) || strings.HasPrefix(s, s3store.Scheme) {
		return ""
	}
	for _, k := range append([]string{kindRegistry, kindDir, kindOCI, kindOCIArchive, kindDockerArchive}, artifactKinds...) {
		if p, ok := strings.CutPrefix(s, k+":"); ok {
			return p
		}
	}
	return s
}

// packInputs are what bale pack reads: SOURCE, each --base, each --images list and --stage.
func packInputs(source string, bases, lists []string, stage string) []input {
	var in []input
	if p := localPath(source); p != "" {
		in = append(in, input{"SOURCE", p})
	}
	for _, b := range bases {
		if p := localPath(b); p != "" {
			in = append(in, input{"--base", p})
		}
	}
	for _, l := range lists {
		in = append(in, input{"--images", l})
	}
	if stage != "" {
		in = append(in, input{"--stage", stage})
	}
	return in
}

// checkArchiveOutputs checks the oci-archive: and docker-archive: files among the --to
// locations of unpack or copy before any work (see checkOutputFile): each can be written, and
// none replaces an input (bundles: the BUNDLE arguments) or another of them.
func checkArchiveOutputs(tos []string, inputs []input) error {
	var outs []location
	for _, t := range tos {
		loc, err := parseTarget(t)
		if err != nil || (loc.Kind != kindOCIArchive && loc.Kind != kindDockerArchive) {
			continue // reported where it is opened
		}
		if err := checkOutputFile("--to "+loc.Kind+":", loc.Path, false, true, inputs); err != nil {
			return err
		}
		for _, o := range outs {
			if sameName(o.Path, loc.Path) {
				return usagef("--to %s and --to %s name the same file", o, loc)
			}
		}
		outs = append(outs, loc)
	}
	return nil
}

// sameName reports whether a and b name the same file that may not exist yet: the same name
// in the same directory, the directories compared as files.
func sameName(a, b string) bool {
	if filepath.Base(a) != filepath.Base(b) {
		return false
	}
	da, err1 := os.Stat(filepath.Dir(a))
	db, err2 := os.Stat(filepath.Dir(b))
	return err1 == nil && err2 == nil && os.SameFile(da, db)
}
