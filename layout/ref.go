package layout

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Name grammar of distribution/reference (../shared/docs/formats.md §1.7).
var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// MaxRepoNameLength is the registry's limit on a repository name.
const MaxRepoNameLength = 255

// Ref names an image in a layout: a repository plus a tag, a digest, or both.
type Ref struct {
	Repo   string
	Tag    string
	Digest digest.Digest
}

// String formats r as repo:tag, repo@digest or repo:tag@digest.
func (r Ref) String() string {
	s := r.Repo
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// ValidateRepo checks a repository name against the registry's grammar.
func ValidateRepo(name string) error {
	if name == "" || len(name) > MaxRepoNameLength {
		return fmt.Errorf("repository name %q: empty or longer than %d: %w", name, MaxRepoNameLength, ErrInvalid)
	}
	for _, c := range strings.Split(name, "/") {
		if !componentRE.MatchString(c) {
			return fmt.Errorf("repository name %q: component %q must be lower-case letters and digits separated by '.', '_', '__' or '-': %w", name, c, ErrInvalid)
		}
	}
	return nil
}

// ValidateTag checks a tag against the registry's grammar.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: %w", tag, ErrInvalid)
	}
	return nil
}

// ParseRef parses "[host/]repo[:tag][@sha256:hex]" as image lists write it. A leading
// registry host (a first component with a '.' or ':', or "localhost", as docker decides) is
// stripped, since bale's sources are local; a reference with neither tag nor digest means tag
// "latest". The result's String() parses back to it with ParseLocalRef, not always with
// ParseRef: "quay.io/foo.bar/app" is repository foo.bar/app, while "foo.bar/app" names
// repository app on host foo.bar.
func ParseRef(s string) (Ref, error) {
	name, _, _ := strings.Cut(s, "@")
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			r, err := ParseLocalRef(s[i+1:])
			if err != nil {
				return Ref{}, fmt.Errorf("image %q: %w", s, err)
			}
			return r, nil
		}
	}
	return ParseLocalRef(s)
}

// ParseLocalRef parses "repo[:tag][@sha256:hex]" as a name inside a local layout (a skopeo dir
// tree's folder path, a String() of a Ref): nothing is stripped but a first component holding
// a ':' (a host:port folder, as `skopeo sync --scoped` writes), which no repository name can
// hold. A reference with neither tag nor digest means tag "latest".
func ParseLocalRef(s string) (Ref, error) {
	in := s
	var r Ref
	if i := strings.IndexByte(s, '@'); i >= 0 {
		r.Digest = digest.Digest(s[i+1:])
		if err := ValidateDigest(r.Digest); err != nil {
			return Ref{}, fmt.Errorf("image %q: %w", in, err)
		}
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		r.Tag = s[i+1:]
		s = s[:i]
		if err := ValidateTag(r.Tag); err != nil {
			return Ref{}, fmt.Errorf("image %q: %w", in, err)
		}
	}
	if i := strings.IndexByte(s, '/'); i >= 0 && strings.Contains(s[:i], ":") {
		s = s[i+1:]
	}
	r.Repo = s
	if err := ValidateRepo(r.Repo); err != nil {
		return Ref{}, fmt.Errorf("image %q: %w", in, err)
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}
