package layout

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// ReadImageLists reads image lists that name images by tag or digest only (see
// ReadImageSelection); a skopeo sync YAML file that selects every tag of a repository or
// tags by a regular expression needs a source to expand it, and is refused here.
func ReadImageLists(paths []string) ([]Ref, error) {
	s, err := ReadImageSelection(paths)
	if s == nil {
		return nil, err
	}
	if len(s.AllTags) > 0 || len(s.Patterns) > 0 {
		err = errors.Join(err, fmt.Errorf("the image lists select tags by pattern or every tag of a repository: expand them against a source (Selection.Expand): %w", ErrUnsupported))
	}
	return s.Refs, err
}
