package layout

import (
	"path"
	"strings"
)

// MediaTypeHelmConfig is the config media type of a Helm chart, as helm push writes it.
const MediaTypeHelmConfig = "application/vnd.cncf.helm.config.v1+json"

// FilesRepoPrefix starts the repository of every file artifact: files/<name>.
const FilesRepoPrefix = "files/"

// Kind is what a tagged manifest holds, as bale list and bale diff show it.
type Kind string

// The kinds of KindOf.
const (
	KindImage Kind = "image" // a container image, an index, or any other artifact
	KindChart Kind = "chart" // a Helm chart (helm push)
	KindFile  Kind = "file"  // a file or directory artifact under files/ (oras push, pack --release)
)

// KindOf classifies a manifest of repository repo from what a catalog records of it: its
// media type, its config's media type ("" for an index) and its number of layers. A chart
// is an image manifest whose config is Helm's, in any repository; a file artifact is an
// image manifest with layers under files/ whose config is not a container image's (oras
// writes the empty config). Without reading the manifest this cannot see the title
// annotation the files: writer needs on each layer (fileart.Layers); an artifact under
// files/ without one is listed as a file and skipped by files:.
func KindOf(repo, mediaType, configMediaType string, layers int) Kind {
	if IsIndexType(mediaType) || configMediaType == "" {
		return KindImage
	}
	switch {
	case configMediaType == MediaTypeHelmConfig:
		return KindChart
	case strings.HasPrefix(repo, FilesRepoPrefix) && layers > 0 &&
		configMediaType != MediaTypeOCIConfig && configMediaType != MediaTypeDockerConfig:
		return KindFile
	}
	return KindImage
}

// ChartName returns the name and version of the chart tagged tag in repo: the last element
// of the repository (helm push appends the chart's name) and the tag with "_" back to "+"
// (helm push writes 1.0.0+build as the tag 1.0.0_build).
func ChartName(repo, tag string) (name, version string) {
	return path.Base(repo), strings.ReplaceAll(tag, "_", "+")
}

// FileName returns the name of a file artifact in repo: the repository under files/.
func FileName(repo string) string { return strings.TrimPrefix(repo, FilesRepoPrefix) }
