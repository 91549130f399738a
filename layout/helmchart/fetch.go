package helmchart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/bale-project/bale/layout"
)

// ErrNoMatch reports a chart repository or registry that holds no version of the chart that
// matches the version or range asked for.
var ErrNoMatch = fmt.Errorf("no matching chart version: %w", layout.ErrNotFound)

// MaxChartSize bounds a chart archive or index.yaml read from a repository.
const MaxChartSize = 256 << 20

// FromPath builds the artifact of a chart directory (packaged as helm package does) or a .tgz
// (with its .prov beside it, as helm push takes it).
func FromPath(p string) (*Artifact, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("chart %w", err)
	}
	if fi.IsDir() {
		return FromDir(p)
	}
	return FromFile(p)
}

// FromFile builds the artifact of the chart archive at p as helm push does: p+".prov" is its
// provenance file when it exists, and its created time is the archive's modification time.
func FromFile(p string) (*Artifact, error) {
	tgz, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("chart %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("chart %w", err)
	}
	prov, err := os.ReadFile(p + ".prov")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("chart provenance: %w", err)
	}
	a, err := Build(tgz, prov, fi.ModTime().Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	return a, nil
}

// FromDir packages the chart directory dir as helm package does (helm's loader and
// chartutil.Save: .helmignore, a valid semver version, the dependencies Chart.yaml names
// present in charts/) and builds its artifact.
func FromDir(dir string) (*Artifact, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %v: %w", dir, err, layout.ErrInvalid)
	}
	if _, err := semver.StrictNewVersion(ch.Metadata.Version); err != nil {
		return nil, fmt.Errorf("chart %s: version %q is not semver: %w", dir, ch.Metadata.Version, layout.ErrInvalid)
	}
	if err := checkDependencies(ch); err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "bale-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	p, err := chartutil.Save(ch, tmp)
	if err != nil {
		return nil, fmt.Errorf("packaging chart %s: %w", dir, err)
	}
	// helm's .tgz keeps the files' times, so it is the same each time: so is the manifest,
	// created when the chart's newest file was written (helm push would say when the .tgz was).
	if t := newest(ch); !t.IsZero() {
		if err := os.Chtimes(p, t, t); err != nil {
			return nil, err
		}
	}
	return FromFile(p)
}

// newest is the time the newest file of ch (its dependencies' too) was written.
func newest(ch *chart.Chart) time.Time {
	t := ch.ModTime
	for _, fs := range [][]*common.File{ch.Raw, ch.Templates, ch.Files} {
		for _, f := range fs {
			if f != nil && f.ModTime.After(t) {
				t = f.ModTime
			}
		}
	}
	for _, d := range ch.Dependencies() {
		if n := newest(d); n.After(t) {
			t = n
		}
	}
	return t
}

// checkDependencies is helm package's check (action.CheckDependencies): every dependency of
// Chart.yaml is in charts/.
func checkDependencies(ch *chart.Chart) error {
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if !have[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s (helm dependency build): %w",
			strings.Join(missing, ", "), layout.ErrNotFound)
	}
	return nil
}

// HTTP says how to reach classic chart repositories: the client (TLS as for docker://) and
// basic-auth credentials.
type HTTP struct {
	Client             *http.Client
	Username, Password string
}

// get fetches u whole (at most MaxChartSize); a 404 is layout.ErrNotFound.
func (h HTTP) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if h.Username != "" || h.Password != "" {
		req.SetBasicAuth(h.Username, h.Password)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %s: %w", u, resp.Status, layout.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxChartSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > MaxChartSize {
		return nil, fmt.Errorf("GET %s: more than %d bytes: %w", u, MaxChartSize, layout.ErrInvalid)
	}
	return b, nil
}

// FromRepo finds chart name in the classic repository at repoURL (its index.yaml), the newest
// version that matches version (exact, or a semver range; "" means the newest), fetches its
// .tgz (checked against the index's digest) and its .prov when the repository has one, and
// builds its artifact; its created time is the index entry's, so that the same version always
// gives the same manifest.
func FromRepo(ctx context.Context, h HTTP, repoURL, name, version string) (*Artifact, error) {
	base := strings.TrimSuffix(repoURL, "/") + "/"
	idx, err := h.get(ctx, base+"index.yaml")
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", repoURL, err)
	}
	var index index
	if err := yaml.Unmarshal(idx, &index); err != nil || index.APIVersion == "" {
		return nil, fmt.Errorf("chart repository %s: index.yaml: %v: %w", repoURL, err, layout.ErrInvalid)
	}
	cv, err := index.get(name, version)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %s %s: %w", repoURL, name, cmp.Or(version, "(newest)"), err)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart repository %s: %s %s has no urls: %w", repoURL, name, cv.Version, layout.ErrInvalid)
	}
	u, err := resolveURL(base, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %s %s: %w", repoURL, name, cv.Version, err)
	}
	tgz, err := h.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %s %s: %w", repoURL, name, cv.Version, err)
	}
	if cv.Digest != "" {
		if got := digest.FromBytes(tgz).Encoded(); got != cv.Digest {
			return nil, fmt.Errorf("chart repository %s: %s: sha256 %s, index.yaml says %s: %w", repoURL, u, got, cv.Digest, layout.ErrDigestMismatch)
		}
	}
	prov, err := h.get(ctx, u+".prov")
	if errors.Is(err, layout.ErrNotFound) {
		prov, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", repoURL, err)
	}
	created := ""
	if t, err := time.Parse(time.RFC3339Nano, cv.Created); err == nil {
		created = t.UTC().Format(time.RFC3339)
	}
	a, err := Build(tgz, prov, created)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %s: %w", repoURL, u, err)
	}
	if a.Metadata.Name != name || a.Metadata.Version != cv.Version {
		return nil, fmt.Errorf("chart repository %s: %s holds %s %s, index.yaml says %s %s: %w", repoURL, u,
			a.Metadata.Name, a.Metadata.Version, name, cv.Version, layout.ErrInvalid)
	}
	return a, nil
}

// indexEntry is one version of a chart in index.yaml: what bale reads of it.
type indexEntry struct {
	Version string   `yaml:"version"`
	Digest  string   `yaml:"digest"`
	URLs    []string `yaml:"urls"`
	Created string   `yaml:"created"`
}

// index is a classic repository's index.yaml (YAML or JSON).
type index struct {
	APIVersion string                  `yaml:"apiVersion"`
	Entries    map[string][]indexEntry `yaml:"entries"`
}

// get picks the version of name as helm's IndexFile.Get does: the entry whose version is
// version exactly, else the newest that matches version as a range ("" means the newest
// stable).
func (x *index) get(name, version string) (*indexEntry, error) {
	es := x.Entries[name]
	if len(es) == 0 {
		return nil, fmt.Errorf("no chart %s in index.yaml: %w", name, ErrNoMatch)
	}
	tags := make([]string, len(es))
	for i, e := range es {
		tags[i] = TagOf(e.Version)
	}
	tag, err := Newest(tags, version)
	if err != nil {
		return nil, err
	}
	return &es[slices.Index(tags, tag)], nil
}

// resolveURL is ref (a chart's url in index.yaml) against the repository's base URL.
func resolveURL(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", ref, layout.ErrInvalid)
	}
	if r.IsAbs() {
		return r.String(), nil
	}
	b.Path = path.Join(b.Path, r.Path)
	return b.String(), nil
}

// Newest is the newest of tags (chart versions as helm push tags them) that matches version
// (exact or a semver range; "" means the newest stable), as helm picks one.
func Newest(tags []string, version string) (string, error) {
	if version != "" {
		for _, t := range tags {
			if VersionOf(t) == version {
				return t, nil
			}
		}
	}
	c, err := semver.NewConstraint(cmp.Or(version, "*"))
	if err != nil {
		return "", fmt.Errorf("version %q: %v: %w", version, err, layout.ErrInvalid)
	}
	var best *semver.Version
	var tag string
	for _, t := range tags {
		v, err := semver.NewVersion(VersionOf(t))
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, tag = v, t
		}
	}
	if best == nil {
		return "", fmt.Errorf("no tag matches %s: %w", cmp.Or(version, "*"), ErrNoMatch)
	}
	return tag, nil
}
