package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	yaml "go.yaml.in/yaml/v3"
)

// Selection is what image lists name: images by tag or digest, and, from skopeo sync YAML
// files, every tag of a repository (an empty tag list) or the tags matching a regular
// expression (images-by-tag-regex). Expand turns it into refs of a source.
type Selection struct {
	Refs     []Ref
	AllTags  []string     // repositories whose every tag is selected
	Patterns []TagPattern // tags selected by a regular expression

	seen *selectionSeen // what add has indexed of Refs and AllTags
}

// selectionSeen indexes the refs and repositories of a Selection, so that add merges in time
// proportional to what it adds (a sync YAML file of 20,000 tags is 20,000 adds). refs and repos
// count the entries of Refs and AllTags indexed so far.
type selectionSeen struct {
	ref         map[string]bool
	repo        map[string]bool
	refs, repos int
}

// TagPattern selects the tags of Repo that Regexp matches (unanchored, as skopeo sync does).
type TagPattern struct {
	Repo   string
	Regexp *regexp.Regexp
}

// TagLister is a Source that lists one repository's tags without listing every repository
// (a live registry without /v2/_catalog).
type TagLister interface {
	Tags(repo string) ([]string, error)
}

// TagRefs returns a ref for every tag of each of repos, in that order, as tl lists them.
func TagRefs(tl TagLister, repos []string) ([]Ref, error) {
	var refs []Ref
	for _, repo := range repos {
		tags, err := tl.Tags(repo)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			refs = append(refs, Ref{Repo: repo, Tag: t})
		}
	}
	return refs, nil
}

// Expand returns the refs the selection names in src: Refs as they are, then the tags of
// AllTags and Patterns, sorted; duplicates dropped. src is asked only if needed.
func (s *Selection) Expand(src Source) ([]Ref, error) {
	refs := append([]Ref(nil), s.Refs...)
	seen := map[string]bool{}
	for _, r := range refs {
		seen[r.String()] = true
	}
	if len(s.AllTags) == 0 && len(s.Patterns) == 0 {
		return refs, nil
	}
	var all []Ref // src.Refs(), once, when src cannot list one repository
	tags := func(repo string) ([]string, error) {
		if tl, ok := src.(TagLister); ok {
			return tl.Tags(repo)
		}
		if all == nil {
			var err error
			if all, err = src.Refs(); err != nil {
				return nil, err
			}
		}
		var out []string
		for _, r := range all {
			if r.Repo == repo && r.Tag != "" {
				out = append(out, r.Tag)
			}
		}
		return out, nil
	}
	add := func(repo string, keep func(string) bool, what string) error {
		ts, err := tags(repo)
		if err != nil {
			return fmt.Errorf("listing the tags of %s: %w", repo, err)
		}
		sort.Strings(ts)
		n := 0
		for _, t := range ts {
			if !keep(t) {
				continue
			}
			n++
			if r := (Ref{Repo: repo, Tag: t}); !seen[r.String()] {
				seen[r.String()] = true
				refs = append(refs, r)
			}
		}
		if n == 0 {
			return fmt.Errorf("%s: no tag %s: %w", repo, what, ErrNotFound)
		}
		return nil
	}
	var errs []error
	for _, repo := range s.AllTags {
		errs = append(errs, add(repo, func(string) bool { return true }, "at all"))
	}
	for _, p := range s.Patterns {
		errs = append(errs, add(p.Repo, p.Regexp.MatchString, "matches "+p.Regexp.String()))
	}
	return refs, errors.Join(errs...)
}

// add merges o into s.
func (s *Selection) add(o *Selection) {
	if s.seen == nil {
		s.seen = &selectionSeen{ref: map[string]bool{}, repo: map[string]bool{}}
	}
	x := s.seen
	for ; x.refs < len(s.Refs); x.refs++ {
		x.ref[s.Refs[x.refs].String()] = true
	}
	for ; x.repos < len(s.AllTags); x.repos++ {
		x.repo[s.AllTags[x.repos]] = true
	}
	for _, r := range o.Refs {
		if k := r.String(); !x.ref[k] {
			x.ref[k] = true
			s.Refs = append(s.Refs, r)
			x.refs++
		}
	}
	for _, repo := range o.AllTags {
		if !x.repo[repo] {
			x.repo[repo] = true
			s.AllTags = append(s.AllTags, repo)
			x.repos++
		}
	}
	s.Patterns = append(s.Patterns, o.Patterns...)
}

// syncRegistry is one registry of a skopeo sync YAML file (the keys bale reads; credentials,
// tls-verify and cert-dir are the source's business: bale takes them from its flags).
type syncRegistry struct {
	Images         map[string][]string `yaml:"images"`
	ImagesByRegex  map[string]string   `yaml:"images-by-tag-regex"`
	ImagesBySemver map[string]string   `yaml:"images-by-semver"`
}

// IsSyncYAML reports whether b is a skopeo sync YAML file: a mapping of registries, at least
// one with images or images-by-tag-regex.
func IsSyncYAML(b []byte) bool {
	var doc map[string]map[string]any
	if yaml.Unmarshal(b, &doc) != nil {
		return false
	}
	for _, reg := range doc {
		for _, k := range []string{"images", "images-by-tag-regex", "images-by-semver"} {
			if _, ok := reg[k]; ok {
				return true
			}
		}
	}
	return false
}

// ParseSyncYAML reads a skopeo sync YAML file (skopeo sync --src yaml): registry -> images ->
// tags or digests (an empty list: every tag), images-by-tag-regex. The registry hosts are
// dropped, as in text lists. Every bad entry is reported.
func ParseSyncYAML(b []byte, name string) (*Selection, error) {
	var doc map[string]syncRegistry
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: skopeo sync YAML: %v: %w", name, err, ErrInvalid)
	}
	s := &Selection{}
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %w", name, fmt.Sprintf(format, a...), ErrInvalid))
	}
	for _, host := range slices.Sorted(maps.Keys(doc)) {
		reg := doc[host]
		if len(reg.ImagesBySemver) > 0 {
			bad("%s: images-by-semver is not supported (name the tags, or use images-by-tag-regex)", host)
		}
		for _, repo := range slices.Sorted(maps.Keys(reg.Images)) {
			if err := ValidateRepo(repo); err != nil {
				bad("%s: %v", host, err)
				continue
			}
			tags := reg.Images[repo]
			if len(tags) == 0 {
				s.add(&Selection{AllTags: []string{repo}})
				continue
			}
			for _, t := range tags {
				r := Ref{Repo: repo}
				if strings.HasPrefix(t, "sha256:") {
					r.Digest = digest.Digest(t)
					if err := ValidateDigest(r.Digest); err != nil {
						bad("%s/%s: %v", host, repo, err)
						continue
					}
				} else if err := ValidateTag(t); err != nil {
					bad("%s/%s: %v", host, repo, err)
					continue
				} else {
					r.Tag = t
				}
				s.add(&Selection{Refs: []Ref{r}})
			}
		}
		for _, repo := range slices.Sorted(maps.Keys(reg.ImagesByRegex)) {
			if err := ValidateRepo(repo); err != nil {
				bad("%s: %v", host, err)
				continue
			}
			re, err := regexp.Compile(reg.ImagesByRegex[repo])
			if err != nil {
				bad("%s/%s: images-by-tag-regex: %v", host, repo, err)
				continue
			}
			s.Patterns = append(s.Patterns, TagPattern{Repo: repo, Regexp: re})
		}
	}
	return s, errors.Join(errs...)
}

// ReadImageSelection reads image lists: text lists (one repo:tag or repo@digest a line) or
// skopeo sync YAML files, told apart by content; a directory stands for its *.list, *.txt,
// *.yaml and *.yml files (not recursive), in name order.
func ReadImageSelection(paths []string) (*Selection, error) {
	files, err := listFiles(paths)
	if err != nil {
		return nil, err
	}
	s := &Selection{}
	var errs []error
	for _, f := range files {
		b, err := readSmall(f.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("image list: %w", err))
			continue
		}
		b = trimBOM(b)
		isYAML := IsSyncYAML(b)
		if !isYAML {
			if err := syncYAMLError(b, f.path, !f.yamlOnly); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if f.yamlOnly && !isYAML {
			continue // a directory's other YAML files are not image lists
		}
		if isYAML {
			y, err := ParseSyncYAML(b, f.path)
			if err != nil {
				errs = append(errs, err)
			}
			if y != nil {
				s.add(y)
			}
			continue
		}
		refs, err := ParseImageList(bytes.NewReader(b), f.path)
		if err != nil {
			errs = append(errs, err)
		}
		s.add(&Selection{Refs: refs})
	}
	return s, errors.Join(errs...)
}

// maxListSize bounds an image list file.
const maxListSize = 16 << 20

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxListSize+1))
	if err == nil && len(b) > maxListSize {
		err = fmt.Errorf("%s is larger than %d bytes: %w", p, maxListSize, ErrInvalid)
	}
	return b, err
}

// listFile is one file of image lists; yamlOnly: a *.yaml or *.yml found in a directory, read
// only if it is a skopeo sync file.
type listFile struct {
	path     string
	yamlOnly bool
}

// listFiles expands directories of image lists.
func listFiles(paths []string) ([]listFile, error) {
	var files []listFile
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, listFile{path: p})
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("image list dir: %w", err)
		}
		var found []listFile
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			switch filepath.Ext(e.Name()) {
			case ".list", ".txt":
				found = append(found, listFile{path: filepath.Join(p, e.Name())})
			case ".yaml", ".yml":
				found = append(found, listFile{path: filepath.Join(p, e.Name()), yamlOnly: true})
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("image list dir %s has no *.list, *.txt, *.yaml or *.yml files: %w", p, ErrNotFound)
		}
		sort.Slice(found, func(i, j int) bool { return found[i].path < found[j].path })
		files = append(files, found...)
	}
	return files, nil
}
