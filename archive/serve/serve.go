// Package serve is a read-only registry served straight from bundle files: the pull side of
// the Registry HTTP API v2 (GET and HEAD of /v2/, manifests and blobs by tag or digest with
// Range, tags/list, _catalog), over a base and its patches as one view, decompressing only
// the frames a request needs (archive.Bundle).
//
// It is written here rather than taken from distribution's handlers: those bring their
// storage, cache, tracing and metrics stacks (a 33 MB binary, 131 modules, against bale's
// 12 MB) for six read-only routes. The tests pull every image with the real skopeo, and
// compare with docker-registry serving the unpacked storage.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
)

// View is what the bundles serve together: later bundles win for tags, patches' removals
// apply, a blob comes from the bundle that carries it.
type View struct {
	bundles []*archive.Bundle
	tags    map[string]map[string]digest.Digest // repo -> tag -> manifest
	repos   map[string]map[digest.Digest]bool   // repo -> manifests and blobs it may serve
	media   map[digest.Digest]string            // manifest -> media type
	owner   map[digest.Digest]*archive.Bundle   // blob -> the bundle that carries it
	mtime   time.Time
}

// Open opens the bundles (a base, then its patches in order) as one view. Every blob a patch
// expects must be carried by an earlier bundle of the list.
func Open(ctx context.Context, paths []string) (*View, error) {
	v := &View{tags: map[string]map[string]digest.Digest{}, repos: map[string]map[digest.Digest]bool{},
		media: map[digest.Digest]string{}, owner: map[digest.Digest]*archive.Bundle{}}
	for _, p := range paths {
		b, err := archive.OpenRandom(ctx, p)
		if err != nil {
			v.Close()
			return nil, err
		}
		v.bundles = append(v.bundles, b)
		if err := v.add(b); err != nil {
			v.Close()
			return nil, err
		}
		if b.Catalog.Meta.Created.After(v.mtime) {
			v.mtime = b.Catalog.Meta.Created
		}
	}
	return v, nil
}

func (v *View) add(b *archive.Bundle) error {
	c := b.Catalog
	var missing []string
	for _, d := range c.ExpectedBlobs() {
		if v.owner[d] == nil {
			missing = append(missing, d.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s is a patch: %d blob(s) it expects are in none of the bundles before it (first %s); serve it after its base: %w",
			b.Path, len(missing), missing[0], layout.ErrNotFound)
	}
	for _, d := range c.CarriedBlobs() {
		if v.owner[d] == nil {
			v.owner[d] = b
		}
	}
	for d, m := range c.Manifests {
		v.media[d] = m.MediaType
	}
	for _, name := range c.RepoNames() {
		r := c.Repos[name]
		allowed := v.repos[name]
		if allowed == nil {
			allowed = map[digest.Digest]bool{}
			v.repos[name] = allowed
		}
		for _, d := range r.Manifests {
			allowed[d] = true
		}
		for _, d := range c.RepoLayers(name) {
			allowed[d] = true
		}
		if v.tags[name] == nil {
			v.tags[name] = map[string]digest.Digest{}
		}
		for t, d := range r.Tags {
			v.tags[name][t] = d
		}
	}
	for _, e := range c.Removals() {
		if v.tags[e.Repo][e.Tag] == e.Digest {
			delete(v.tags[e.Repo], e.Tag)
		}
	}
	return nil
}

// Close closes the bundles.
func (v *View) Close() error {
	for _, b := range v.bundles {
		b.Close()
	}
	return nil
}

// Images counts the tags served.
func (v *View) Images() int {
	n := 0
	for _, t := range v.tags {
		n += len(t)
	}
	return n
}

// ServeHTTP implements http.Handler.
func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		apiError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "bale serve is read-only")
		return
	}
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	case p == "/v2/_catalog":
		v.catalog(w, r)
	case strings.HasPrefix(p, "/v2/"):
		rest := strings.TrimPrefix(p, "/v2/")
		if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
			v.tagsList(w, r, name)
		} else if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
			v.manifest(w, r, rest[:i], rest[i+len("/manifests/"):])
		} else if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
			v.blob(w, r, rest[:i], rest[i+len("/blobs/"):])
		} else {
			apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such route")
		}
	default:
		http.NotFound(w, r)
	}
}

// page applies ?n= and ?last= to a sorted list, and sets the Link header of the next page.
func page(w http.ResponseWriter, r *http.Request, all []string) []string {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 && n < len(all) {
		all = all[:n]
		next := *r.URL
		qq := next.Query()
		qq.Set("last", all[len(all)-1])
		next.RawQuery = qq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.RequestURI()))
	}
	return all
}

func (v *View) catalog(w http.ResponseWriter, r *http.Request) {
	var names []string
	for name, t := range v.tags {
		if len(t) > 0 || len(v.repos[name]) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	writeJSON(w, map[string][]string{"repositories": nonNil(page(w, r, names))})
}

func (v *View) tagsList(w http.ResponseWriter, r *http.Request, name string) {
	tags, ok := v.tags[name]
	if !ok {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	var list []string
	for t := range tags {
		list = append(list, t)
	}
	sort.Strings(list)
	writeJSON(w, map[string]any{"name": name, "tags": nonNil(page(w, r, list))})
}

func (v *View) manifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	var d digest.Digest
	if strings.Contains(ref, ":") {
		d = digest.Digest(ref)
		if layout.ValidateDigest(d) != nil || !v.repos[name][d] || v.media[d] == "" {
			apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
	} else if d = v.tags[name][ref]; d == "" {
		apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	v.serveBlob(w, r, d, v.media[d])
}

func (v *View) blob(w http.ResponseWriter, r *http.Request, name, ref string) {
	d := digest.Digest(ref)
	if layout.ValidateDigest(d) != nil || !v.repos[name][d] {
		apiError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	v.serveBlob(w, r, d, "application/octet-stream")
}

// serveBlob sends blob d with Range and HEAD support (http.ServeContent), verified as it
// streams: a whole blob whose bytes do not hash to d ends the response early.
func (v *View) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, mediaType string) {
	b := v.owner[d]
	if b == nil {
		apiError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	rs, _, err := b.OpenBlob(d)
	if err != nil {
		status, code := http.StatusInternalServerError, "UNKNOWN"
		if errors.Is(err, layout.ErrNotFound) {
			status, code = http.StatusNotFound, "BLOB_UNKNOWN"
		}
		apiError(w, status, code, err.Error())
		return
	}
	defer rs.Close()
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Etag", `"`+d.String()+`"`)
	w.Header().Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, r, "", v.mtime, rs)
}

func writeJSON(w http.ResponseWriter, x any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(x)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// apiError writes an error as the distribution spec shapes it.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
