package helmchart

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/remote"
)

// PutOCI copies the chart at ociRef (HOST[:PORT]/REPO, oci:// allowed) from its registry into
// dst as it is there (manifest and blobs byte for byte), at charts/<name>:<tag>: the tag is
// version when it is exact, else the newest tag that matches the range. It returns the ref
// written and the chart's .tgz.
func PutOCI(ctx context.Context, o remote.Options, dst layout.Sink, ociRef, version string) (layout.Ref, []byte, error) {
	ociRef = strings.TrimPrefix(ociRef, "oci://")
	host, repoPath, ok := strings.Cut(ociRef, "/")
	if !ok || repoPath == "" {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %q: want HOST[:PORT]/REPO: %w", ociRef, layout.ErrInvalid)
	}
	o.Context = ctx
	r, err := remote.Open(remote.Scheme+host, o)
	if err != nil {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s: %w", ociRef, err)
	}
	tag := TagOf(version)
	if _, err := semver.StrictNewVersion(version); err != nil {
		tags, err := r.Tags(repoPath)
		if err != nil {
			return layout.Ref{}, nil, fmt.Errorf("oci chart %s: %w", ociRef, err)
		}
		if tag, err = Newest(tags, version); err != nil {
			return layout.Ref{}, nil, fmt.Errorf("oci chart %s: %w", ociRef, err)
		}
	}
	d, err := r.Resolve(layout.Ref{Repo: repoPath, Tag: tag})
	if err != nil {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s:%s: %w", ociRef, tag, err)
	}
	img, err := layout.LoadImage(r, repoPath, d)
	if err != nil {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s:%s: %w", ociRef, tag, err)
	}
	m := img.Manifest
	if m.Config == nil || m.Config.MediaType != ConfigMediaType {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s:%s is not a Helm chart (config %s): %w", ociRef, tag, configType(m), layout.ErrInvalid)
	}
	tgz, err := readLayer(r, repoPath, m)
	if err != nil {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s:%s: %w", ociRef, tag, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return layout.Ref{}, nil, fmt.Errorf("oci chart %s:%s: %v: %w", ociRef, tag, err, layout.ErrInvalid)
	}
	ref := layout.Ref{Repo: RepoPrefix + ch.Metadata.Name, Tag: tag}
	if err := dst.PutImage(ref, img, renamed{r, repoPath}); err != nil {
		return ref, nil, fmt.Errorf("oci chart %s:%s: %w", ociRef, tag, err)
	}
	return ref, tgz, nil
}

// configType names m's config media type for an error.
func configType(m *layout.Manifest) string {
	if m.Config == nil {
		return "none"
	}
	return m.Config.MediaType
}

// readLayer reads and verifies the chart content layer of m.
func readLayer(src layout.Source, repo string, m *layout.Manifest) ([]byte, error) {
	for _, l := range m.Layers {
		if l.MediaType != ChartLayerMediaType {
			continue
		}
		if l.Size > MaxChartSize {
			return nil, fmt.Errorf("chart layer of %d bytes: %w", l.Size, layout.ErrInvalid)
		}
		rc, err := src.OpenBlob(repo, l)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, l.Size+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != l.Size || digest.FromBytes(b) != l.Digest {
			return nil, fmt.Errorf("chart layer %s: %w", l.Digest, layout.ErrDigestMismatch)
		}
		return b, nil
	}
	return nil, fmt.Errorf("no %s layer: %w", ChartLayerMediaType, layout.ErrInvalid)
}

// ReadChart reads the chart archive (.tgz) of the chart artifact ref in src.
func ReadChart(src layout.Source, ref layout.Ref) ([]byte, error) {
	d, err := src.Resolve(ref)
	if err != nil {
		return nil, err
	}
	m, err := src.ReadManifest(ref.Repo, d)
	if err != nil {
		return nil, err
	}
	return readLayer(src, ref.Repo, m)
}

// renamed reads every repository's content from one repository of src: the chart's own in
// its registry, whatever name it is stored under here.
type renamed struct {
	src  layout.Source
	repo string
}

func (r renamed) Refs() ([]layout.Ref, error) { return r.src.Refs() }

func (r renamed) Resolve(ref layout.Ref) (digest.Digest, error) {
	ref.Repo = r.repo
	return r.src.Resolve(ref)
}

func (r renamed) ReadManifest(_ string, d digest.Digest) (*layout.Manifest, error) {
	return r.src.ReadManifest(r.repo, d)
}

func (r renamed) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	return r.src.OpenBlob(r.repo, d)
}
