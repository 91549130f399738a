package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// maxConfigSize bounds the image configs read for their platform and creation time.
const maxConfigSize = 16 << 20

// BuildOptions tune FromSource.
type BuildOptions struct {
	// Platform, when set, reduces every index to that platform's manifest (original digest),
	// as skopeo's --override-os/--override-arch does.
	Platforms []layout.Platform
}

// ImageError is one image FromSource could not take (layout.ImageError).
type ImageError = layout.ImageError

// ImagesError lists every image FromSource could not take (layout.ImagesError).
type ImagesError = layout.ImagesError

// FromSource resolves refs in src (every tag of src when refs is empty), reads each image's
// manifests and configs, and returns the catalog of all of them. Created is the newest
// "created" time among the configs (so packing the same images gives the same catalog); the
// caller sets BaleVersion and may override Created, then calls Finish. Every image that is
// missing or unreadable is reported in one *ImagesError.
func FromSource(src layout.Source, refs []layout.Ref, opt BuildOptions) (*Catalog, error) {
	if len(refs) == 0 {
		all, err := src.Refs()
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("the source holds no tagged images: %w", layout.ErrNotFound)
		}
		refs = all
	}
	c := New()
	var (
		problems []ImageError
		newest   time.Time
		configs  = map[digest.Digest]configInfo{}
	)
	for _, ref := range refs {
		img, err := loadRef(src, ref, opt)
		if err == nil {
			err = readConfigs(src, ref.Repo, img, configs)
		}
		if err != nil {
			problems = append(problems, ImageError{Ref: ref, Err: err})
			continue
		}
		platforms := map[digest.Digest]layout.Platform{}
		for _, m := range img.Manifests() {
			if m.Config != nil {
				ci := configs[m.Config.Digest]
				if ci.Created.After(newest) {
					newest = ci.Created
				}
				if ci.OS != "" {
					platforms[m.Digest] = layout.Platform{OS: ci.OS, Architecture: ci.Architecture, Variant: ci.Variant}
				}
			}
		}
		c.Add(ref.Repo, ref.Tag, img, platforms)
	}
	if len(problems) > 0 {
		return nil, &ImagesError{Images: problems}
	}
	if newest.IsZero() {
		newest = time.Unix(0, 0)
	}
	c.Meta.Created = newest.UTC().Truncate(time.Second)
	return c, nil
}

// Finish sets the bundle id from the content and validates the catalog.
func (c *Catalog) Finish() error {
	c.Meta.ID = c.ComputeID()
	return c.Validate()
}

func loadRef(src layout.Source, ref layout.Ref, opt BuildOptions) (*layout.Image, error) {
	return layout.ResolveImage(src, ref, opt.Platforms)
}

type configInfo struct {
	Created      time.Time `json:"created"`
	OS           string    `json:"os"`
	Architecture string    `json:"architecture"`
	Variant      string    `json:"variant"`
}

func readConfigs(src layout.Source, repo string, img *layout.Image, seen map[digest.Digest]configInfo) error {
	for _, m := range img.Manifests() {
		if m.Config == nil {
			continue
		}
		if _, ok := seen[m.Config.Digest]; ok {
			continue
		}
		if m.Config.Size > maxConfigSize {
			return fmt.Errorf("config %s: %d bytes: %w", m.Config.Digest, m.Config.Size, layout.ErrInvalid)
		}
		rc, err := src.OpenBlob(repo, *m.Config)
		if err != nil {
			return fmt.Errorf("config of manifest %s: %w", m.Digest, err)
		}
		b, err := io.ReadAll(layout.NewVerifier(rc, *m.Config))
		rc.Close()
		if err != nil {
			return fmt.Errorf("config of manifest %s: %w", m.Digest, err)
		}
		var ci configInfo
		// A config that is not an image config (an artifact) simply has no platform.
		if err := json.Unmarshal(b, &ci); err != nil && !errors.As(err, new(*json.UnmarshalTypeError)) {
			ci = configInfo{}
		}
		seen[m.Config.Digest] = ci
	}
	return nil
}
