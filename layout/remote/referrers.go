package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

var (
	_ layout.ReferrerLister = (*Registry)(nil)
	_ layout.ReferrerTagger = (*Registry)(nil)
)

// What a registry was found to do about the referrers API (Registry.api).
const (
	apiUnknown int32 = iota
	apiYes
	apiNo
)

// Referrers asks the registry's referrers API (GET /v2/<repo>/referrers/<digest>) for the
// manifests whose subject is d: one request per manifest. A registry without the API
// (Distribution answers 404) is asked once; its referrers are found through the referrers tag
// schema, which layout.FindReferrers reads from the tag list it has already.
func (r *Registry) Referrers(repo string, d digest.Digest) ([]layout.Descriptor, error) {
	if r.api.Load() == apiNo {
		return nil, nil
	}
	nr, err := r.repo(repo)
	if err != nil {
		return nil, err
	}
	descs, ok, err := r.askReferrers(nr, d)
	if err != nil || !ok {
		return nil, err
	}
	return descs, nil
}

// askReferrers makes one referrers API request (go-containerregistry, with the tag schema
// fallback off) and records whether the registry has the API; ok is false when it does not.
func (r *Registry) askReferrers(nr name.Repository, d digest.Digest) (descs []layout.Descriptor, ok bool, err error) {
	ref := nr.Digest(d.String())
	idx, err := ggcr.Referrers(ref, ggcr.Reuse(r.cl.forRepo(nr.Name()).puller), ggcr.WithContext(r.ctx))
	var te *transport.Error
	var ue *url.Error
	switch {
	case err == nil:
	case errors.As(err, &te) && te.StatusCode != http.StatusNotFound, errors.As(err, &ue),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, false, r.explain(fmt.Errorf("referrers of %s: %w", ref, err))
	default:
		// Without the API, the answer is not an OCI index (go-containerregistry then
		// refuses, its tag fallback being off).
		r.api.Store(apiNo)
		return nil, false, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, false, fmt.Errorf("referrers of %s: %w", ref, err)
	}
	r.api.Store(apiYes)
	for _, m := range im.Manifests {
		desc := layout.Descriptor{MediaType: string(m.MediaType), Digest: digest.Digest(m.Digest.String()), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if err := layout.ValidateDigest(desc.Digest); err != nil {
			return nil, false, fmt.Errorf("referrers of %s: %w", ref, err)
		}
		descs = append(descs, desc)
	}
	return descs, true, nil
}

// hasReferrersAPI reports whether the registry answers the referrers API, asking it (about
// subject d of nr) the first time.
func (r *Registry) hasReferrersAPI(nr name.Repository, d digest.Digest) (bool, error) {
	switch r.api.Load() {
	case apiYes:
		return true, nil
	case apiNo:
		return false, nil
	}
	_, ok, err := r.askReferrers(nr, d)
	return ok, err
}

// TagReferrers keeps the referrers tag schema where the registry lacks the referrers API: the
// tag sha256-<hex> of subject names an index of refs merged with what the tag lists already.
// A registry with the API indexes referrers by their subject itself, and gets no such tag.
func (r *Registry) TagReferrers(repo string, subject digest.Digest, refs []layout.Descriptor) error {
	nr, err := r.repo(repo)
	if err != nil {
		return err
	}
	if api, err := r.hasReferrersAPI(nr, subject); err != nil || api {
		return err
	}
	tag := nr.Tag(layout.ReferrersTag(subject))
	var old *layout.Manifest
	desc, err := r.cl.forRepo(nr.Name()).puller.Get(r.ctx, tag)
	var te *transport.Error
	switch {
	case err == nil:
		if m, perr := layout.ParseManifest(desc.Manifest); perr == nil && m.IsIndex() {
			old = m
		}
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
	default:
		return r.explain(fmt.Errorf("reading %s: %w", tag, err))
	}
	raw, changed, err := layout.ReferrersIndex(old, refs)
	if err != nil || !changed {
		return err
	}
	m, err := layout.ParseManifest(raw)
	if err != nil {
		return err
	}
	if err := r.putManifest(nr, m); err != nil {
		return err
	}
	return r.putTag(nr, tag.TagStr(), m)
}

// skipReferrersTag reports whether ref is a referrers tag (sha256-<hex>) that a registry with
// the referrers API does not need: it lists the subject's referrers by itself.
func (r *Registry) skipReferrersTag(nr name.Repository, ref layout.Ref, img *layout.Image) (bool, error) {
	subject, suffix, ok := layout.ParseReferrerTag(ref.Tag)
	if !ok || suffix != "" || !img.Manifest.IsIndex() {
		return false, nil
	}
	return r.hasReferrersAPI(nr, subject)
}
