package layout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// bom is the UTF-8 byte order mark some editors write at the head of a text file.
const bom = "\ufeff"

// trimBOM drops a UTF-8 byte order mark at the head of b.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte(bom)) }

// looksLikeYAML reports whether the text b is written as YAML rather than as an image list: a
// line (comments aside) that ends with ':' or holds ': ', or starts with "- " or "---". No
// image reference does either.
func looksLikeYAML(b []byte) bool {
	for line := range strings.Lines(string(b)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimRight(line, " \t\r\n")
		t := strings.TrimSpace(line)
		if strings.HasSuffix(t, ":") || strings.Contains(t, ": ") || strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "---") {
			return true
		}
	}
	return false
}

// syncYAMLError is why b, which is not a skopeo sync YAML file (IsSyncYAML is false), must
// not be read as a text image list either: it is written as YAML (looksLikeYAML) and either
// does not parse (the YAML error names the line) or has no registry with images; nil when b
// reads as a text list. explicit says the file was named, not found in a directory: there a
// YAML file without images is some other file, and only a YAML that does not parse but
// mentions images is reported.
func syncYAMLError(b []byte, name string, explicit bool) error {
	if !looksLikeYAML(b) {
		return nil
	}
	var doc map[string]map[string]any
	err := yaml.Unmarshal(b, &doc)
	switch {
	case err != nil && (explicit || bytes.Contains(b, []byte("images"))):
		return fmt.Errorf("%s: a skopeo sync YAML file that does not parse: %v: %w", name, err, ErrInvalid)
	case err == nil && explicit:
		return fmt.Errorf("%s: YAML without a registry that has images or images-by-tag-regex (skopeo sync: REGISTRY: images: REPO: [TAG...]): %w", name, ErrInvalid)
	}
	return nil
}

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
		if n == 1 {
			line = strings.TrimPrefix(line, bom) // Notepad's UTF-8 files start with one
		}
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
