package main

import (
	"fmt"
	"net/url"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/fileart"
	"github.com/bale-project/bale/layout/helmchart"
	"github.com/bale-project/bale/layout/registry"
	"github.com/bale-project/bale/layout/release"
	"github.com/bale-project/bale/layout/remote"
)

// releaseFlag is pack's --release FILE.
var releaseFlag = &cli.StringFlag{Name: "release", Aliases: []string{"f"}, Usage: "pack what the release file `FILE` names too: its image lists (as --images), Helm charts (and, with images: true, the images they use) and files; SOURCE stays the source of the images"}

// stageReleaseFiles writes the file artifacts of rel's files into the registry storage at
// stage and returns their refs. A URL is fetched with the --src-* TLS settings and, for its
// host, the --src-creds or --src-authfile credentials, as a chart repository is.
func stageReleaseFiles(cx *cli.Context, stage string, rel *release.Release) ([]layout.Ref, error) {
	if len(rel.Files) == 0 {
		return nil, nil
	}
	o, err := remoteOptions(cx, "src")
	if err != nil {
		return nil, err
	}
	client, err := remote.HTTPClient(o)
	if err != nil {
		return nil, err
	}
	var refs []layout.Ref
	for _, f := range rel.Files {
		opt := fileart.Options{Client: client}
		if f.URL != "" {
			u, err := url.Parse(f.URL)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", rel.File, f.Line, usageError{err})
			}
			if opt.Username, opt.Password, err = remote.BasicAuth(o, u.Host); err != nil {
				return nil, err
			}
		}
		ref, err := fileart.Stage(cx.Context, stage, fileart.Spec{Path: f.Path, URL: f.URL, SHA256: f.SHA256, Name: f.Name, Tag: f.Tag}, opt)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", rel.File, f.Line, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// packSelection reads --release (nil without it) and the image selection of --images and
// the release's image lists together.
func packSelection(cx *cli.Context) (*layout.Selection, *release.Release, error) {
	var rel *release.Release
	if p := cx.String("release"); p != "" {
		var err error
		if rel, err = release.Load(p); err != nil {
			return nil, nil, usageError{err}
		}
	}
	lists := cx.StringSlice("images")
	if rel != nil {
		lists = append(slices.Clip(lists), rel.Images...)
	}
	if len(lists) == 0 {
		return nil, rel, nil
	}
	sel, err := layout.ReadImageSelection(lists)
	if err != nil {
		return nil, nil, err
	}
	if len(sel.Refs) == 0 && len(sel.AllTags) == 0 && len(sel.Patterns) == 0 {
		return nil, nil, usagef("the image lists %v name no images", lists)
	}
	return sel, rel, nil
}

// withRelease stages the charts and files of rel as registry storage at out.bale-release
// (nothing there before; removed by the cleanup returned, which the caller defers, and at
// once when staging fails) and returns src with the stage laid over it and refs with the
// staged artifacts and the images the charts use (images: true). refs nil (no image list)
// means only those images, or every tag of src (listed now; all is then true) when no chart
// names images either.
func withRelease(cx *cli.Context, rel *release.Release, src layout.Source, refs []layout.Ref, out string) (_ layout.Source, _ []layout.Ref, all bool, cleanup func(), err error) {
	cleanup = func() {}
	if rel == nil {
		return src, refs, false, cleanup, nil
	}
	stage := out + ".bale-release"
	if err := os.RemoveAll(stage); err != nil {
		return nil, nil, false, cleanup, err
	}
	cleanup = func() { os.RemoveAll(stage) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	st, err := registry.Create(stage)
	if err != nil {
		return nil, nil, false, cleanup, err
	}
	var staged []layout.Ref
	var images []string
	for _, c := range rel.Charts {
		ref, tgz, err := fetchChart(cx, c, st)
		if err != nil {
			return nil, nil, false, cleanup, fmt.Errorf("%s:%d: %w", rel.File, c.Line, err)
		}
		staged = append(staged, ref)
		if !c.Images {
			continue
		}
		ch, err := helmchart.LoadArchive(tgz)
		if err == nil {
			var imgs []string
			imgs, err = helmchart.Images(ch, helmchart.Values{Files: c.Values})
			images = append(images, imgs...)
		}
		if err != nil {
			return nil, nil, false, cleanup, fmt.Errorf("%s:%d: images of %s: %w", rel.File, c.Line, ref, err)
		}
	}
	files, err := stageReleaseFiles(cx, stage, rel)
	if err != nil {
		return nil, nil, false, cleanup, err
	}
	staged = append(staged, files...)
	if refs == nil && len(images) == 0 { // nothing names images: every tag of SOURCE
		if refs, err = src.Refs(); err != nil {
			return nil, nil, false, cleanup, err
		}
		all = true
	}
	seen := map[string]bool{}
	for _, r := range refs {
		seen[r.String()] = true
	}
	for _, s := range images {
		r, err := layout.ParseRef(s)
		if err != nil {
			return nil, nil, false, cleanup, err
		}
		if !seen[r.String()] {
			seen[r.String()] = true
			refs = append(refs, r)
		}
	}
	u, err := layout.NewUnion(src, st)
	if err != nil {
		return nil, nil, false, cleanup, err
	}
	return u, append(refs, staged...), all, cleanup, nil
}

// fetchChart writes the chart c names into dst (registry storage) and returns its ref and
// its .tgz; dst nil only reads it.
func fetchChart(cx *cli.Context, c release.Chart, dst layout.Sink) (layout.Ref, []byte, error) {
	o, err := remoteOptions(cx, "src")
	if err != nil {
		return layout.Ref{}, nil, err
	}
	var a *helmchart.Artifact
	switch {
	case c.OCI != "":
		if dst == nil {
			tmp, err := os.MkdirTemp("", "bale-chart-")
			if err != nil {
				return layout.Ref{}, nil, err
			}
			defer os.RemoveAll(tmp)
			dst = registry.New(tmp)
		}
		return helmchart.PutOCI(cx.Context, o, dst, c.OCI, c.Version)
	case c.Repo != "":
		client, err := remote.HTTPClient(o)
		if err != nil {
			return layout.Ref{}, nil, err
		}
		u, err := url.Parse(c.Repo)
		if err != nil {
			return layout.Ref{}, nil, usageError{err}
		}
		h := helmchart.HTTP{Client: client}
		if h.Username, h.Password, err = remote.BasicAuth(o, u.Host); err != nil {
			return layout.Ref{}, nil, err
		}
		if a, err = helmchart.FromRepo(cx.Context, h, c.Repo, c.Name, c.Version); err != nil {
			return layout.Ref{}, nil, err
		}
	default:
		if a, err = helmchart.FromPath(c.Path); err != nil {
			return layout.Ref{}, nil, err
		}
		if c.Version != "" {
			if _, err := helmchart.Newest([]string{helmchart.TagOf(a.Metadata.Version)}, c.Version); err != nil {
				return layout.Ref{}, nil, fmt.Errorf("chart %s is version %s: %w", c.Path, a.Metadata.Version, err)
			}
		}
	}
	if dst == nil {
		return a.Ref(), a.Chart, nil
	}
	ref, err := a.Put(dst)
	return ref, a.Chart, err
}
