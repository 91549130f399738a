package chartdir

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"sigs.k8s.io/yaml"

	"github.com/bale-project/bale/internal/fsutil"
)

// indexFile is a classic Helm repository's index.yaml, as helm's pkg/repo/v1 IndexFile
// writes it (apiVersion v1, generated, entries of chart versions), with the chart metadata in
// Helm's own type. Helm's repo package is not used for these few fields: it links Helm's
// getter, OCI registry client and plugin runtime, about 25 MB of binary and their package
// initialisation on every bale command.
type indexFile struct {
	APIVersion string                     `json:"apiVersion"`
	Generated  time.Time                  `json:"generated"`
	Entries    map[string][]*chartVersion `json:"entries"`
}

// chartVersion is one version of a chart in index.yaml: the chart's metadata (Chart.yaml)
// and where its .tgz is, as helm's repo.ChartVersion.
type chartVersion struct {
	*chart.Metadata
	URLs    []string  `json:"urls"`
	Created time.Time `json:"created,omitempty"`
	Digest  string    `json:"digest,omitempty"`
}

// newIndex returns an empty index generated now.
func newIndex() *indexFile {
	return &indexFile{APIVersion: "v1", Generated: time.Now().UTC(), Entries: map[string][]*chartVersion{}}
}

// add records the chart md in file (relative to the repository), with its sha256 hex.
func (x *indexFile) add(md *chart.Metadata, file, sha256 string) error {
	if err := md.Validate(); err != nil {
		return fmt.Errorf("chart %s-%s: %w", md.Name, md.Version, err)
	}
	x.Entries[md.Name] = append(x.Entries[md.Name], &chartVersion{Metadata: md, URLs: []string{file}, Created: time.Now().UTC(), Digest: sha256})
	return nil
}

// has reports whether the index has version of chart name.
func (x *indexFile) has(name, version string) bool {
	for _, v := range x.Entries[name] {
		if v.Metadata != nil && v.Version == version {
			return true
		}
	}
	return false
}

// loadIndex reads index.yaml at p (an error wrapping fs.ErrNotExist when there is none).
func loadIndex(p string) (*indexFile, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	x := &indexFile{}
	if err := yaml.Unmarshal(raw, x); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return x, nil
}

// sortEntries orders each chart's versions newest first, as helm does (by semver, those
// that do not parse last).
func (x *indexFile) sortEntries() {
	for _, vs := range x.Entries {
		sort.SliceStable(vs, func(i, j int) bool {
			a, errA := semver.NewVersion(vs[i].Version)
			b, errB := semver.NewVersion(vs[j].Version)
			if errA != nil || errB != nil {
				return errA == nil && errB != nil
			}
			return b.LessThan(a)
		})
	}
}

// write writes the index to p, through a temporary file renamed over it.
func (x *indexFile) write(p string) error {
	raw, err := yaml.Marshal(x)
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Clean(p), raw, 0o644)
}
