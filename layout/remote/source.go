package remote

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// Refs lists every tag under the prefix: the registry's _catalog, then each repository's
// tags list. Registries that do not serve _catalog (Docker Hub, many Harbor setups) need an
// image list instead.
func (r *Registry) Refs() ([]layout.Ref, error) {
	reg, err := name.NewRegistry(r.host, r.nopts...)
	if err != nil {
		return nil, err
	}
	repos, err := r.cl.forRepo("").puller.Catalog(r.ctx, reg)
	if err != nil {
		return nil, r.explain(fmt.Errorf("listing the repositories of %s (GET /v2/_catalog; without it, name the images with --images): %w", r.spec, err))
	}
	var local []string
	for _, rr := range repos {
		if repo, ok := r.local(rr); ok {
			local = append(local, repo)
		}
	}
	refs, err := layout.TagRefs(r, local)
	if err != nil {
		return nil, err
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].Repo != refs[j].Repo {
			return refs[i].Repo < refs[j].Repo
		}
		return refs[i].Tag < refs[j].Tag
	})
	return refs, nil
}

// reference is the registry's name for ref.
func (r *Registry) reference(ref layout.Ref) (name.Reference, error) {
	nr, err := r.repo(ref.Repo)
	if err != nil {
		return nil, err
	}
	if ref.Tag != "" {
		return nr.Tag(ref.Tag), nil
	}
	return nr.Digest(ref.Digest.String()), nil
}

// Resolve asks the registry (HEAD /v2/<repo>/manifests/<tag>) which manifest ref names.
func (r *Registry) Resolve(ref layout.Ref) (digest.Digest, error) {
	nref, err := r.reference(ref)
	if err != nil {
		return "", err
	}
	desc, err := r.cl.forRepo(nref.Context().Name()).puller.Head(r.ctx, nref)
	if err != nil {
		return "", r.explain(fmt.Errorf("%s: %w", nref, err))
	}
	d, err := digest.Parse(desc.Digest.String())
	if err != nil {
		return "", fmt.Errorf("%s: the registry answered digest %q: %w", nref, desc.Digest, layout.ErrInvalid)
	}
	if ref.Digest != "" && ref.Digest != d {
		return "", fmt.Errorf("%s is %s, not %s: %w", nref, d, ref.Digest, layout.ErrNotFound)
	}
	return d, nil
}

// ReadManifest fetches manifest d of repo by digest and verifies it.
func (r *Registry) ReadManifest(repo string, d digest.Digest) (*layout.Manifest, error) {
	nr, err := r.repo(repo)
	if err != nil {
		return nil, err
	}
	ref := nr.Digest(d.String())
	desc, err := r.cl.forRepo(nr.Name()).puller.Get(r.ctx, ref)
	if err != nil {
		return nil, r.explain(fmt.Errorf("%s: %w", ref, err))
	}
	m, err := layout.ParseManifest(desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if m.Digest != d {
		return nil, fmt.Errorf("%s: the registry sent a manifest hashing to %s: %w", ref, m.Digest, layout.ErrDigestMismatch)
	}
	r.manifests.Store(d, m.Raw)
	return m, nil
}

// OpenBlob streams blob d of repo (GET /v2/<repo>/blobs/<digest>); a manifest, which a
// registry serves from /manifests/ only, comes from there, unless ReadManifest already
// fetched it. The caller verifies it.
func (r *Registry) OpenBlob(repo string, d layout.Descriptor) (io.ReadCloser, error) {
	nr, err := r.repo(repo)
	if err != nil {
		return nil, err
	}
	ref := nr.Digest(d.Digest.String())
	if layout.IsManifestType(d.MediaType) {
		if raw, ok := r.manifests.Load(d.Digest); ok {
			return io.NopCloser(bytes.NewReader(raw.([]byte))), nil
		}
		desc, err := r.cl.forRepo(nr.Name()).puller.Get(r.ctx, ref)
		if err != nil {
			return nil, r.explain(fmt.Errorf("%s: %w", ref, err))
		}
		return io.NopCloser(bytes.NewReader(desc.Manifest)), nil
	}
	l, err := r.cl.forRepo(nr.Name()).puller.Layer(r.ctx, ref)
	if err != nil {
		return nil, r.explain(fmt.Errorf("%s: %w", ref, err))
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, r.explain(fmt.Errorf("%s: %w", ref, err))
	}
	return rc, nil
}

// explain adds what to do next to the registry errors people meet: not found, refused
// credentials, an untrusted certificate.
func (r *Registry) explain(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", err, layout.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w\n(%s refused the credentials: give them with --%s-creds USER:PASS or --%s-authfile FILE, or log in with docker/podman/skopeo login)", err, r.host, r.flags(), r.flags())
		}
	}
	if strings.Contains(err.Error(), "is a private or link-local address") {
		// go-containerregistry (since v0.21) refuses a token server at a private IP address
		// unless it is the registry's own HOST:PORT, against server-side request forgery.
		return fmt.Errorf("%w\n(%s sends clients to a token server named by a private IP address, which bale's registry client refuses unless it is %s itself: name the token server by a host name in the registry's auth.token.realm, or serve it on the registry's HOST:PORT, as Harbor does)", err, r.host, r.host)
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || strings.Contains(err.Error(), "x509: ") {
		return fmt.Errorf("%w\n(the TLS certificate of %s is not trusted: add its CA with --%s-cert-dir DIR (*.crt), or skip the check with --%s-tls-verify=false)", err, r.host, r.flags(), r.flags())
	}
	return err
}

var _ layout.TagLister = (*Registry)(nil)

// Tags lists repo's tags (GET /v2/<repo>/tags/list), so that image lists can select every tag
// of a repository, or tags by pattern, on a registry without /v2/_catalog.
func (r *Registry) Tags(repo string) ([]string, error) {
	nr, err := r.repo(repo)
	if err != nil {
		return nil, err
	}
	tags, err := r.cl.forRepo(nr.Name()).puller.List(r.ctx, nr)
	if err != nil {
		return nil, r.explain(fmt.Errorf("listing the tags of %s: %w", nr, err))
	}
	return tags, nil
}
