package helmchart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/strvals"

	"github.com/bale-project/bale/layout"
)

// ImagesAnnotation is Chart.yaml's annotation that lists the images a chart uses (Artifact
// Hub's: a YAML list of name/image pairs).
const ImagesAnnotation = "helm.sh/images"

// Values are the values a chart is rendered with, as helm install takes them: values files
// (-f) and --set K=V, applied in that order over the chart's own.
type Values struct {
	Files []string
	Set   []string
}

// merge is helm's values.Options.MergeValues for -f and --set (without its getter, which
// would bring helm's plugin runtime into bale): each file merged over the ones before, then
// each --set.
func (v Values) merge() (map[string]any, error) {
	base := map[string]any{}
	for _, f := range v.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
		m, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("values file %s: %v: %w", f, err, layout.ErrInvalid)
		}
		base = loader.MergeMaps(base, m)
	}
	for _, s := range v.Set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("--set %s: %v: %w", s, err, layout.ErrInvalid)
		}
	}
	return base, nil
}

// LoadArchive loads a chart archive with helm's loader.
func LoadArchive(tgz []byte) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("reading the chart archive: %v: %w", err, layout.ErrInvalid)
	}
	return ch, nil
}

// Images renders ch as helm template does (Helm's engine; the chart's values, then v;
// dependencies enabled or not by their conditions and tags, subcharts included) and returns
// every image its workloads name (see ManifestImages) and those of the helm.sh/images
// annotations of ch and its subcharts: sorted, each once, a reference without tag or digest
// given ":latest".
func Images(ch *chart.Chart, v Values) ([]string, error) {
	vals, err := v.merge()
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return nil, fmt.Errorf("chart %s: dependencies: %w", ch.Name(), err)
	}
	top, err := commonutil.ToRenderValues(ch, vals, common.ReleaseOptions{
		Name: "release-name", Namespace: "default", Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", ch.Name(), err)
	}
	seen := map[string]bool{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !isManifest(name) {
			continue
		}
		imgs, err := ManifestImages([]byte(files[name]))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		for _, i := range imgs {
			seen[i] = true
		}
	}
	if err := annotatedImages(ch, seen); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// isManifest reports whether a rendered template is a manifest helm would install: not
// NOTES.txt, not a partial (_helpers.tpl), and not empty.
func isManifest(name string) bool {
	b := path.Base(name)
	return !strings.HasSuffix(name, "NOTES.txt") && !strings.HasPrefix(b, "_")
}

// annotatedImages adds the images of the helm.sh/images annotation of ch and of every
// subchart.
func annotatedImages(ch *chart.Chart, seen map[string]bool) error {
	var errs []error
	if s, ok := ch.Metadata.Annotations[ImagesAnnotation]; ok {
		var list []struct {
			Name  string `yaml:"name"`
			Image string `yaml:"image"`
		}
		if err := yaml.Unmarshal([]byte(s), &list); err != nil {
			errs = append(errs, fmt.Errorf("chart %s: annotation %s: %v: %w", ch.Name(), ImagesAnnotation, err, layout.ErrInvalid))
		}
		for _, e := range list {
			img, err := normalize(e.Image)
			if err != nil {
				errs = append(errs, fmt.Errorf("chart %s: annotation %s: %w", ch.Name(), ImagesAnnotation, err))
				continue
			}
			seen[img] = true
		}
	}
	for _, d := range ch.Dependencies() {
		errs = append(errs, annotatedImages(d, seen))
	}
	return errors.Join(errs...)
}

// podSpecPaths are where each workload kind holds its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
}

// ManifestImages parses a stream of YAML documents (rendered manifests) and returns the image
// of every container, init container and ephemeral container of the pod spec of every
// workload (podSpecPaths; a List's items too), each once, in the order found, a reference
// without tag or digest given ":latest". A document that does not parse, or an image that is
// not a reference, is an error.
func ManifestImages(b []byte) ([]string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []string
	seen := map[string]bool{}
	var errs []error
	for n := 1; ; n++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("document %d: %v: %w", n, err, layout.ErrInvalid)
		}
		errs = append(errs, objectImages(doc, 0, func(img string) {
			if !seen[img] {
				seen[img] = true
				out = append(out, img)
			}
		}))
	}
	return out, errors.Join(errs...)
}

// objectImages calls add with each image of the object doc (a List's items, depth bounded).
func objectImages(doc any, depth int, add func(string)) error {
	obj, ok := doc.(map[string]any)
	if !ok || depth > 4 {
		return nil
	}
	kind, _ := obj["kind"].(string)
	if kind == "List" || strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		var errs []error
		for _, it := range items {
			errs = append(errs, objectImages(it, depth+1, add))
		}
		return errors.Join(errs...)
	}
	p, ok := podSpecPaths[kind]
	if !ok {
		return nil
	}
	var spec any = obj
	for _, k := range p {
		m, ok := spec.(map[string]any)
		if !ok {
			return nil
		}
		spec = m[k]
	}
	m, ok := spec.(map[string]any)
	if !ok {
		return nil
	}
	name := ""
	if md, ok := obj["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	var errs []error
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _ := m[field].([]any)
		for _, c := range cs {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			raw, ok := cm["image"]
			if !ok || raw == nil {
				continue
			}
			s, ok := raw.(string)
			if !ok {
				errs = append(errs, fmt.Errorf("%s %s: %s image %v: not a string: %w", kind, name, field, raw, layout.ErrInvalid))
				continue
			}
			img, err := normalize(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %s: %w", kind, name, field, err))
				continue
			}
			add(img)
		}
	}
	return errors.Join(errs...)
}

// normalize checks that s is an image reference (as image lists take them) and returns it as
// written, with ":latest" added when it has neither tag nor digest.
func normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty image: %w", layout.ErrInvalid)
	}
	if _, err := layout.ParseRef(s); err != nil {
		return "", err
	}
	name, _, hasDigest := strings.Cut(s, "@")
	if !hasDigest && !strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":") {
		s += ":latest"
	}
	return s, nil
}
