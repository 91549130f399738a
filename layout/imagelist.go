package layout

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ParseImageList reads an image list: one "repo:tag" or "repo@sha256:<hex>" a line, '#' starts
// a comment, blank lines and duplicates are ignored, a leading registry host is stripped. name
// is used in error messages. Every bad line is reported, not only the first.
func ParseImageList(r io.Reader, name string) ([]Ref, error) {
	var (
		refs []Ref
		errs []error
		seen = map[string]bool{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ref, err := ParseRef(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		if k := ref.String(); !seen[k] {
			seen[k] = true
			refs = append(refs, ref)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading %s: %w", name, err))
	}
	return refs, errors.Join(errs...)
}

// ReadImageLists reads image list files; a directory stands for all its *.list and *.txt
// files (not recursive), in name order. Duplicates across files are dropped.
func ReadImageLists(paths []string) ([]Ref, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("image list dir: %w", err)
		}
		var found []string
		for _, e := range ents {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".list") || strings.HasSuffix(e.Name(), ".txt")) {
				found = append(found, filepath.Join(p, e.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("image list dir %s has no *.list or *.txt files: %w", p, ErrNotFound)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	var (
		all  []Ref
		errs []error
		seen = map[string]bool{}
	)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("image list: %w", err))
			continue
		}
		refs, err := ParseImageList(fh, f)
		fh.Close()
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range refs {
			if k := r.String(); !seen[k] {
				seen[k] = true
				all = append(all, r)
			}
		}
	}
	return all, errors.Join(errs...)
}
