// Package release reads a release file: the image lists, Helm charts and files one offline
// release carries (bale pack --release FILE). Paths in it are relative to the file.
//
//	images: [images-list.txt]
//	charts:
//	  - repo: https://charts.example.com/stable
//	    name: demo
//	    version: ">=0.1.0 <0.2.0"
//	    images: true
//	    values: [site-values.yaml]
//	  - oci: registry.example.com/charts/redis
//	    version: 19.0.1
//	  - path: charts/ks-core
//	files:
//	  - path: bin/kubeadm
//	    name: tools/kubeadm
//	    tag: v1.28.2
//	  - url: https://dl.example.com/helm-v3.21.4-linux-amd64.tar.gz
//	    sha256: <hex>
//
// Parsing is strict: an unknown key, a missing or contradictory field is an error that names
// the line.
package release

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"

	"github.com/bale-project/bale/layout"
)

// Release is a parsed release file.
type Release struct {
	// File is the release file's absolute path; Dir its directory, which relative paths are
	// relative to.
	File, Dir string
	// Images are the image lists (absolute paths), as --images takes them.
	Images []string
	// Charts are the Helm charts, in the order of the file.
	Charts []Chart
	// Files are the files, in the order of the file.
	Files []File
}

// Chart is one entry of charts: exactly one of Repo (with Name), OCI or Path is set.
type Chart struct {
	// Repo is a classic Helm repository's URL (the one that holds index.yaml); Name the chart
	// in it.
	Repo, Name string
	// OCI is a chart in a registry: HOST[:PORT]/REPO, without oci:// (which is accepted and
	// dropped) and without tag.
	OCI string
	// Path is a chart directory or a .tgz (absolute).
	Path string
	// Version is an exact version or a semver range ("" means the newest); for Path it must
	// match the chart's version when given.
	Version string
	// Images asks for the images the chart uses (rendered with Values) to be carried too.
	Images bool
	// Values are values files (absolute paths) used to find the images.
	Values []string
	// Line is the line of the entry in the release file.
	Line int
}

// File is one entry of files: exactly one of Path or URL is set.
type File struct {
	// Path is a file or directory (absolute).
	Path string
	// URL is where to download the file; SHA256 (lower-case hex) is then required.
	URL, SHA256 string
	// Name is the repository under files/ (default: the base name of Path or of URL's path);
	// Tag its tag (default "latest").
	Name, Tag string
	// Line is the line of the entry in the release file.
	Line int
}

// ErrInvalid reports a release file that does not parse or breaks a rule; it wraps
// layout.ErrInvalid.
var ErrInvalid = fmt.Errorf("release file: %w", layout.ErrInvalid)

// Load reads and parses the release file at p.
func Load(p string) (*Release, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("release file: %w", err)
	}
	r, err := Parse(b, abs)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Parse parses the release file b, read from the absolute path file (relative paths in it are
// made absolute against file's directory; file names the errors). Every error found is
// returned, each naming its line.
func Parse(b []byte, file string) (*Release, error) {
	r := &Release{File: file, Dir: filepath.Dir(file)}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", file, err, ErrInvalid)
	}
	p := parser{file: file, dir: r.Dir}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: a release file names images, charts or files: %w", file, ErrInvalid)
	}
	top := doc.Content[0]
	p.mapping(top, "the release file", map[string]func(*yaml.Node){
		"images": func(v *yaml.Node) { r.Images = p.paths(v, "images") },
		"charts": func(v *yaml.Node) {
			for _, e := range p.seq(v, "charts") {
				if c, ok := p.chart(e); ok {
					r.Charts = append(r.Charts, c)
				}
			}
		},
		"files": func(v *yaml.Node) {
			for _, e := range p.seq(v, "files") {
				if f, ok := p.fileEntry(e); ok {
					r.Files = append(r.Files, f)
				}
			}
		},
	})
	if len(p.errs) == 0 && len(r.Images)+len(r.Charts)+len(r.Files) == 0 {
		p.errf(top, "names no images, charts or files")
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return r, nil
}

// parser collects the errors of one file.
type parser struct {
	file, dir string
	errs      []error
}

// errf records an error at n's line.
func (p *parser) errf(n *yaml.Node, format string, a ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s: %w", p.file, n.Line, fmt.Sprintf(format, a...), ErrInvalid))
}

// mapping calls the function of each key of the mapping n and reports keys it has none for
// and keys given twice; what names n in errors.
func (p *parser) mapping(n *yaml.Node, what string, keys map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: want a mapping (key: value)", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := keys[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode || !ok:
			p.errf(k, "%s: unknown key %q (want one of %s)", what, k.Value, keyList(keys))
		case seen[k.Value]:
			p.errf(k, "%s: key %q given twice", what, k.Value)
		default:
			seen[k.Value] = true
			f(v)
		}
	}
}

// keyList is the keys of m, sorted, as "a, b, c".
func keyList(m map[string]func(*yaml.Node)) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// seq is the items of the sequence n (a null value is none).
func (p *parser) seq(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list", what)
		return nil
	}
	return n.Content
}

// str is the string scalar n.
func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		p.errf(n, "%s: want a non-empty string", what)
		return ""
	}
	return n.Value
}

// path is the path scalar n made absolute against the release file's directory.
func (p *parser) path(n *yaml.Node, what string) string {
	s := p.str(n, what)
	if s == "" {
		return ""
	}
	if strings.ContainsRune(s, 0) {
		p.errf(n, "%s: a path with a NUL byte", what)
		return ""
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(p.dir, s)
}

// paths is the list of paths n.
func (p *parser) paths(n *yaml.Node, what string) []string {
	var out []string
	for _, e := range p.seq(n, what) {
		if s := p.path(e, what); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// boolean is the boolean scalar n.
func (p *parser) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errf(n, "%s: want true or false", what)
	}
	return b
}

// chart parses one entry of charts.
func (p *parser) chart(n *yaml.Node) (Chart, bool) {
	c := Chart{Line: n.Line}
	before := len(p.errs)
	p.mapping(n, "chart", map[string]func(*yaml.Node){
		"repo":    func(v *yaml.Node) { c.Repo = p.str(v, "repo") },
		"name":    func(v *yaml.Node) { c.Name = p.str(v, "name") },
		"oci":     func(v *yaml.Node) { c.OCI = strings.TrimPrefix(p.str(v, "oci"), "oci://") },
		"path":    func(v *yaml.Node) { c.Path = p.path(v, "path") },
		"version": func(v *yaml.Node) { c.Version = p.version(v) },
		"images":  func(v *yaml.Node) { c.Images = p.boolean(v, "images") },
		"values":  func(v *yaml.Node) { c.Values = p.paths(v, "values") },
	})
	if len(p.errs) > before {
		return c, false
	}
	at := &yaml.Node{Line: c.Line}
	switch k := btoi(c.Repo != "") + btoi(c.OCI != "") + btoi(c.Path != ""); {
	case k != 1:
		p.errf(at, "chart: want exactly one of repo (with name), oci or path, not %d", k)
	case c.Repo != "" && c.Name == "":
		p.errf(at, "chart: repo %s needs name: the chart in it", c.Repo)
	case c.Repo == "" && c.Name != "":
		p.errf(at, "chart: name is the chart of a repo; an oci or path chart is named by its Chart.yaml")
	case c.Repo != "" && !isHTTP(c.Repo):
		p.errf(at, "chart: repo %q: want an http:// or https:// URL", c.Repo)
	case c.OCI != "" && !validOCI(c.OCI):
		p.errf(at, "chart: oci %q: want HOST[:PORT]/REPO without tag or digest (version: says which)", c.OCI)
	}
	if c.Values != nil && !c.Images {
		p.errf(at, "chart: values are used to find the images; they need images: true")
	}
	return c, len(p.errs) == before
}

// version parses version: an exact version or a semver range.
func (p *parser) version(n *yaml.Node) string {
	s := p.str(n, "version")
	if s == "" {
		return ""
	}
	if _, err := semver.NewConstraint(s); err != nil {
		p.errf(n, "version %q: neither a version nor a semver range: %v", s, err)
		return ""
	}
	return s
}

var (
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// fileEntry parses one entry of files.
func (p *parser) fileEntry(n *yaml.Node) (File, bool) {
	f := File{Line: n.Line}
	before := len(p.errs)
	p.mapping(n, "file", map[string]func(*yaml.Node){
		"path":   func(v *yaml.Node) { f.Path = p.path(v, "path") },
		"url":    func(v *yaml.Node) { f.URL = p.str(v, "url") },
		"sha256": func(v *yaml.Node) { f.SHA256 = strings.TrimPrefix(p.str(v, "sha256"), "sha256:") },
		"name":   func(v *yaml.Node) { f.Name = p.str(v, "name") },
		"tag":    func(v *yaml.Node) { f.Tag = p.str(v, "tag") },
	})
	if len(p.errs) > before {
		return f, false
	}
	at := &yaml.Node{Line: f.Line}
	switch {
	case (f.Path == "") == (f.URL == ""):
		p.errf(at, "file: want exactly one of path or url")
	case f.URL != "" && !isHTTP(f.URL):
		p.errf(at, "file: url %q: want an http:// or https:// URL", f.URL)
	case f.URL != "" && f.SHA256 == "":
		p.errf(at, "file: url %s needs sha256: the file's sha256 (hex)", f.URL)
	case f.SHA256 != "" && !hexRE.MatchString(f.SHA256):
		p.errf(at, "file: sha256 %q: want 64 lower-case hex digits", f.SHA256)
	}
	if len(p.errs) > before {
		return f, false
	}
	if f.Name == "" {
		if f.Path != "" {
			f.Name = filepath.Base(f.Path)
		} else {
			u, _ := url.Parse(f.URL)
			f.Name = path.Base(u.Path)
		}
		f.Name = strings.ToLower(f.Name)
	}
	if f.Tag == "" {
		f.Tag = "latest"
	}
	if !repoRE.MatchString(f.Name) || layout.ValidateRepo("files/"+f.Name) != nil {
		p.errf(at, "file: name %q: not a repository name (lower-case letters, digits, '.', '_', '-', '/'); set name:", f.Name)
	}
	if err := layout.ValidateTag(f.Tag); err != nil {
		p.errf(at, "file: %v", err)
	}
	return f, len(p.errs) == before
}

// isHTTP reports whether s is an absolute http or https URL with a host.
func isHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validOCI reports whether s is HOST[:PORT]/REPO with neither tag nor digest.
func validOCI(s string) bool {
	host, repo, ok := strings.Cut(s, "/")
	if !ok || host == "" || strings.ContainsAny(repo, "@:") {
		return false
	}
	return repoRE.MatchString(repo)
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
