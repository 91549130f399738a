// Package remote is a live registry (Registry HTTP API v2, OCI distribution spec) as a bale
// layout: a Source to pull from and a Sink to push to, at docker://HOST[:PORT][/PREFIX].
//
// The protocol, authentication (basic and bearer tokens, docker and podman auth files), the
// retries with backoff on 408, 429, 5xx and dropped connections, and cross-repository blob
// mounts are go-containerregistry's remote package; this package maps bale's image model
// onto it and keeps every manifest byte for byte (digests never change).
//
// Repository names map with the prefix: bale's repo "kubesphere/ks-apiserver" is
// PREFIX/kubesphere/ks-apiserver on the registry.
package remote

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bale-project/bale/layout"
)

// Scheme starts every live registry location.
const Scheme = "docker://"

// Options say how to reach a registry: credentials and TLS, as skopeo's --src-*/--dest-*
// flags do.
type Options struct {
	// Username and Password, when set, are used for every request (skopeo's --creds).
	Username, Password string
	// AuthFile is a docker config.json or containers auth.json to take credentials from;
	// empty means ~/.docker/config.json, $DOCKER_CONFIG, $REGISTRY_AUTH_FILE and
	// $XDG_RUNTIME_DIR/containers/auth.json, as docker and podman look for them.
	AuthFile string
	// NoTLSVerify accepts any certificate and plain http (skopeo's --tls-verify=false).
	NoTLSVerify bool
	// CertDir holds *.crt CA certificates and *.cert/*.key client pairs, as in
	// /etc/containers/certs.d/HOST/ (skopeo's --cert-dir).
	CertDir string
	// Jobs is how many blobs are pulled or pushed at once; 0 means 4.
	Jobs int
	// Context cancels every request.
	Context context.Context
	// Flags is "src" or "dest": which of skopeo-style --src-*/--dest-* flags errors name.
	Flags string
}

// Registry is a registry at HOST[:PORT] with an optional repository prefix.
type Registry struct {
	host   string
	prefix string
	jobs   int
	ctx    context.Context
	nopts  []name.Option
	cl     *clients // go-containerregistry's Puller and Pusher, renewed (clients.go)
	pushed *blobs   // what this run has pushed, for mounts and to push each blob once
	links  *links   // what this run made present in each repository, and who may write links when
	// manifests holds the bytes ReadManifest fetched and verified, by digest, so that copying
	// an image does not GET its manifests a second time.
	manifests sync.Map
	spec      string
	flag      string // "src" or "dest"
	mu        sync.Mutex
	stats     PushStats
	keys      authn.Keychain
	tr        http.RoundTripper
	// api is whether the registry answers the referrers API: apiUnknown until asked.
	api atomic.Int32
}

// ErrUsage reports a location that is not docker://HOST[:PORT][/PREFIX].
var ErrUsage = errors.New("not a docker://HOST[:PORT][/PREFIX] location")

// Open parses docker://HOST[:PORT][/PREFIX] and sets up the clients; nothing is sent yet.
func Open(spec string, o Options) (*Registry, error) {
	rest, ok := strings.CutPrefix(spec, Scheme)
	if !ok || rest == "" {
		return nil, fmt.Errorf("%q: %w", spec, ErrUsage)
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if strings.ContainsAny(prefix, ":@") {
		return nil, fmt.Errorf("%q: the prefix is a repository path, without tag or digest (images come from --images): %w", spec, ErrUsage)
	}
	var nopts []name.Option
	if o.NoTLSVerify {
		nopts = append(nopts, name.Insecure)
	}
	if _, err := name.NewRegistry(host, append(nopts, name.StrictValidation)...); err != nil {
		return nil, fmt.Errorf("%q: %v: %w", spec, err, ErrUsage)
	}
	if prefix != "" {
		if _, err := name.NewRepository(host+"/"+prefix, nopts...); err != nil {
			return nil, fmt.Errorf("%q: %v: %w", spec, err, ErrUsage)
		}
	}
	base, err := httpTransport(o)
	if err != nil {
		return nil, err
	}
	tr := traceTransport{base: &plainHTTP{base: base}}
	keys, err := keychain(o)
	if err != nil {
		return nil, err
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	opts := []ggcr.Option{ggcr.WithTransport(tr), ggcr.WithAuthFromKeychain(keys), ggcr.WithContext(ctx),
		ggcr.WithJobs(jobs), ggcr.WithUserAgent("bale")}
	// Referrers come from the API only; the tag schema is read from the tag list (see
	// Referrers), so that a registry is asked at most once per manifest.
	cl, err := newClients(func() (*clientGen, error) {
		puller, err := ggcr.NewPuller(append(opts, ggcr.WithReferrersTagFallback(false))...)
		if err != nil {
			return nil, err
		}
		// Every blob an image has is pushed, a non-distributable layer's too (bale carries it
		// when the source has it): go-containerregistry would skip it silently, and the
		// manifest, whose layer names urls, would then be accepted without it.
		pusher, err := ggcr.NewPusher(append(opts, ggcr.WithNondistributable)...)
		if err != nil {
			return nil, err
		}
		return &clientGen{puller: puller, pusher: pusher, repos: map[string]bool{}}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Registry{host: host, prefix: prefix, jobs: jobs, ctx: ctx, nopts: nopts, cl: cl,
		pushed: newBlobs(), links: newLinks(), spec: Scheme + strings.TrimSuffix(rest, "/"), flag: cmp.Or(o.Flags, "src"), keys: keys, tr: tr}, nil
}

// Is reports whether s is written as a live registry location.
func Is(s string) bool { return strings.HasPrefix(s, Scheme) }

// String is the location as given.
func (r *Registry) String() string { return r.spec }

// Check asks the registry once, before any work, whether this client may pull from (or push
// to) repo: one clear error for wrong credentials or an untrusted certificate instead of one
// per blob. A repository that does not exist yet is fine.
func (r *Registry) Check(repo string, push bool) error {
	nr, err := r.repo(repo)
	if err != nil {
		return err
	}
	if push {
		err = ggcr.CheckPushPermission(nr.Tag("latest"), r.keys, r.tr)
	} else {
		_, err = r.cl.forRepo(nr.Name()).puller.Lister(r.ctx, nr) // the first page of tags only
	}
	if err == nil || errors.Is(r.explain(err), layout.ErrNotFound) {
		return nil
	}
	verb := map[bool]string{false: "pull from", true: "push to"}[push]
	return r.explain(fmt.Errorf("cannot %s %s: %w", verb, nr, err))
}

// flags names the flag family of messages.
func (r *Registry) flags() string { return r.flag }

// repo maps bale's repository name to the registry's.
func (r *Registry) repo(repo string) (name.Repository, error) {
	full := r.host + "/" + repo
	if r.prefix != "" {
		full = r.host + "/" + r.prefix + "/" + repo
	}
	return name.NewRepository(full, r.nopts...)
}

// local maps the registry's repository name back to bale's, or false outside the prefix.
func (r *Registry) local(remoteRepo string) (string, bool) {
	if r.prefix == "" {
		return remoteRepo, true
	}
	rest, ok := strings.CutPrefix(remoteRepo, r.prefix+"/")
	return rest, ok && rest != ""
}

// httpTransport builds the HTTP transport of o: the system roots plus CertDir's, client
// certificates, or no verification at all.
func httpTransport(o Options) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Several images go at once, Jobs blobs each, all to one host: with the default of 2 idle
	// connections a host, every request past the second dialled a new connection and closed
	// it after (issue #19: a tenth of push's CPU was in dialConn at 1,000 tags).
	tr.MaxIdleConnsPerHost = tr.MaxIdleConns
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.NoTLSVerify {
		cfg.InsecureSkipVerify = true //nolint:gosec // the user asked for it (--tls-verify=false)
	}
	if o.CertDir != "" {
		ents, err := os.ReadDir(o.CertDir)
		if err != nil {
			return nil, fmt.Errorf("--cert-dir: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, e := range ents {
			p := filepath.Join(o.CertDir, e.Name())
			switch filepath.Ext(e.Name()) {
			case ".crt":
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("--cert-dir: %w", err)
				}
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("--cert-dir: %s holds no PEM certificate", p)
				}
			case ".cert":
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, fmt.Errorf("--cert-dir: client certificate %s with %s: %w", p, key, err)
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			}
		}
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// keychain is where credentials come from: the flags, an auth file, or docker's and
// podman's usual files.
func keychain(o Options) (authn.Keychain, error) {
	if o.Username != "" || o.Password != "" {
		return staticKeychain{authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})}, nil
	}
	if o.AuthFile != "" {
		f, err := os.Open(o.AuthFile)
		if err != nil {
			return nil, fmt.Errorf("--authfile: %w", err)
		}
		defer f.Close()
		cf, err := config.LoadFromReader(f)
		if err != nil {
			return nil, fmt.Errorf("--authfile %s: %w", o.AuthFile, err)
		}
		return fileKeychain{cf}, nil
	}
	return authn.DefaultKeychain, nil
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

// fileKeychain takes credentials from one config file, keyed by registry host.
type fileKeychain struct{ cf *configfile.ConfigFile }

func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	if host == name.DefaultRegistry {
		host = authn.DefaultAuthKey
	}
	ac, err := k.cf.GetAuthConfig(host)
	if err != nil {
		return nil, err
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
}

var _ layout.Source = (*Registry)(nil)
