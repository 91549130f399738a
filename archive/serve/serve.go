// Package serve is a read-only registry served straight from bundle files: the pull side of
// the OCI distribution-spec 1.1 (the Registry HTTP API v2): GET and HEAD of /v2/, manifests
// and blobs by tag or digest with Range, tags/list, _catalog and the referrers API, over a
// base and its patches as one view, decompressing only the frames a request needs
// (archive.Bundle).
//
// It is written here rather than taken from distribution's handlers: those bring their
// storage, cache, tracing and metrics stacks (a 33 MB binary, 131 modules, against bale's
// 12 MB) for seven read-only routes. The tests pull every image with the real skopeo,
// compare with docker-registry serving the unpacked storage, and run the OCI
// distribution-spec conformance suite in its read-only mode.
package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// Cache-Control values. Content named by its digest never changes. What a tag names, and the
// referrers of a manifest, change when a patch is served with its base: a client asks again,
// cheaply (a manifest's ETag is its digest, so If-None-Match gets a 304).
const (
	cacheImmutable  = "max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// Error codes of the distribution spec's table that serve answers with.
const (
	codeBlobUnknown       = "BLOB_UNKNOWN"
	codeBlobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid     = "DIGEST_INVALID"
	codeManifestInvalid   = "MANIFEST_INVALID"
	codeManifestUnknown   = "MANIFEST_UNKNOWN"
	codeNameInvalid       = "NAME_INVALID"
	codeNameUnknown       = "NAME_UNKNOWN"
	codeUnsupported       = "UNSUPPORTED"
	codeUnknown           = "UNKNOWN"
)

// HeaderFiltersApplied is the response header that names the filters a referrers response
// applied (OCI distribution-spec 1.1, "Listing Referrers").
const HeaderFiltersApplied = "OCI-Filters-Applied"

// View serves an archive.Source: the bundles as one view, later bundles winning for tags,
// patches' removals applied, a blob read from the bundle that carries it, and the referrers of
// a manifest those every bundle records (a patch may add some).
type View struct {
	src *archive.Source
	// Log gets one line for each request that fails because of a bundle (damaged, or not
	// what its catalog says): the bundle, the member, the digest and the error. Nil: the
	// standard logger.
	Log *log.Logger
}

// Open opens the bundles (a base, then its patches in order) as one view. Every blob a patch
// expects must be carried by an earlier bundle of the list (archive.OpenSource).
func Open(ctx context.Context, paths []string) (*View, error) {
	archive.SetFrameMemory(archive.ServeFrameMemory)
	s, err := archive.OpenSource(ctx, paths)
	if err != nil {
		return nil, err
	}
	return New(s), nil
}

// New serves s; the View's Close closes it.
func New(s *archive.Source) *View {
	return &View{src: s}
}

// Source is the bundles served, as one source.
func (v *View) Source() *archive.Source { return v.src }

// Close closes the bundles.
func (v *View) Close() error {
	return v.src.Close()
}

// Images counts the tags served.
func (v *View) Images() int {
	refs, _ := v.src.Refs()
	n := 0
	for _, r := range refs {
		if r.Tag != "" {
			n++
		}
	}
	return n
}

// Referrers returns the descriptors of the referrers of subject in repo, sorted by digest,
// only those of artifactType unless it is "": what GET /v2/<repo>/referrers/<subject>
// lists. It is empty, not nil, when there are none.
func (v *View) Referrers(repo string, subject digest.Digest, artifactType string) []layout.Descriptor {
	all, _ := v.src.Referrers(repo, subject)
	out := []layout.Descriptor{}
	for _, d := range all {
		if artifactType == "" || d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out
}

// Routes under /v2/<name>/, each the last path elements of a request.
const (
	routeManifests = "/manifests/"
	routeBlobs     = "/blobs/"
	routeReferrers = "/referrers/"
	routeTagsList  = "/tags/list"
)

// ServeHTTP implements http.Handler.
func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		apiError(w, http.StatusMethodNotAllowed, codeUnsupported, "bale serve is read-only")
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
		name, route, ref := splitRoute(strings.TrimPrefix(p, "/v2/"))
		if route == "" {
			// As distribution's router answers a path it has no route for: plain text, which
			// clients probing for an API take as "not supported here".
			http.NotFound(w, r)
			return
		}
		if err := layout.ValidateRepo(name); err != nil {
			apiError(w, http.StatusBadRequest, codeNameInvalid, "invalid repository name: "+err.Error())
			return
		}
		switch route {
		case routeTagsList:
			v.tagsList(w, r, name)
		case routeManifests:
			v.manifest(w, r, name, ref)
		case routeBlobs:
			v.blob(w, r, name, ref)
		case routeReferrers:
			v.referrersList(w, r, name, ref)
		}
	default:
		http.NotFound(w, r)
	}
}

// splitRoute splits the path after /v2/ into the repository name, the route and the
// reference after it. The route is the last of /manifests/, /blobs/ and /referrers/ in the
// path (a repository may have a component named "blobs"), with a reference of one path
// element, or /tags/list at the end; "" when the path is none of those. An upload's path
// (blobs/uploads/...) is a /blobs/ route whose reference holds a '/'.
func splitRoute(rest string) (name, route, ref string) {
	if n, ok := strings.CutSuffix(rest, routeTagsList); ok {
		return n, routeTagsList, ""
	}
	at := -1
	for _, rt := range []string{routeManifests, routeBlobs, routeReferrers} {
		if i := strings.LastIndex(rest, rt); i > 0 && i > at && !strings.Contains(rest[i+len(rt):], "/") {
			at, route = i, rt
		}
	}
	if i := strings.LastIndex(rest, routeBlobs+"uploads"); i > 0 && i > at {
		at, route = i, routeBlobs
	}
	if at < 0 || at+len(route) == len(rest) {
		return "", "", ""
	}
	return rest[:at], route, rest[at+len(route):]
}

// parseDigest checks a digest of a request path: ok false when it is malformed (a 400
// DIGEST_INVALID). A well-formed digest of an algorithm bale does not store is ok, and names
// nothing served.
func parseDigest(s string) (digest.Digest, bool) {
	d := digest.Digest(s)
	if err := d.Validate(); err != nil && !errors.Is(err, digest.ErrDigestUnsupported) {
		return "", false
	}
	return d, true
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
	names := v.src.Repositories()
	writeJSON(w, map[string][]string{"repositories": nonNil(page(w, r, names))})
}

func (v *View) tagsList(w http.ResponseWriter, r *http.Request, name string) {
	if !v.src.HasRepository(name) {
		apiError(w, http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
		return
	}
	list, _ := v.src.Tags(name)
	writeJSON(w, map[string]any{"name": name, "tags": nonNil(page(w, r, list))})
}

// manifest serves manifest ref (a tag or a digest) of repository name. The reference is
// checked before the repository is looked up: a malformed one is a 400 wherever it is asked.
func (v *View) manifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	var d digest.Digest
	byTag := !strings.Contains(ref, ":")
	if byTag {
		if layout.ValidateTag(ref) != nil {
			apiError(w, http.StatusBadRequest, codeManifestInvalid, fmt.Sprintf("reference %q is neither a tag nor a digest", ref))
			return
		}
	} else {
		var ok bool
		if d, ok = parseDigest(ref); !ok {
			apiError(w, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("invalid digest %q", ref))
			return
		}
	}
	if !v.src.HasRepository(name) {
		apiError(w, http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
		return
	}
	if byTag {
		var err error
		if d, err = v.src.Resolve(layout.Ref{Repo: name, Tag: ref}); err != nil {
			apiError(w, http.StatusNotFound, codeManifestUnknown, "manifest unknown")
			return
		}
		v.serveBlob(w, r, d, v.src.MediaType(d), false)
		return
	}
	if !v.src.Holds(name, d) || v.src.MediaType(d) == "" {
		apiError(w, http.StatusNotFound, codeManifestUnknown, "manifest unknown")
		return
	}
	v.serveBlob(w, r, d, v.src.MediaType(d), true)
}

func (v *View) blob(w http.ResponseWriter, r *http.Request, name, ref string) {
	if ref == "uploads" || strings.HasPrefix(ref, "uploads/") {
		apiError(w, http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry (bale serve is read-only)")
		return
	}
	d, ok := parseDigest(ref)
	if !ok {
		apiError(w, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("invalid digest %q", ref))
		return
	}
	if !v.src.HasRepository(name) {
		apiError(w, http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
		return
	}
	if !v.src.Holds(name, d) {
		apiError(w, http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
		return
	}
	v.serveBlob(w, r, d, "application/octet-stream", true)
}

// referrersList answers the referrers API: an OCI index of the manifests whose subject is
// ref, 200 with an empty list for a digest (or repository) without any, as the spec wants
// (a 404 would tell clients that the API is missing).
func (v *View) referrersList(w http.ResponseWriter, r *http.Request, name, ref string) {
	d, ok := parseDigest(ref)
	if !ok {
		apiError(w, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("invalid digest %q", ref))
		return
	}
	at := r.URL.Query().Get("artifactType")
	index := struct {
		SchemaVersion int                 `json:"schemaVersion"`
		MediaType     string              `json:"mediaType"`
		Manifests     []layout.Descriptor `json:"manifests"`
	}{2, layout.MediaTypeOCIIndex, v.Referrers(name, d, at)}
	body, err := json.Marshal(index)
	if err != nil {
		apiError(w, http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", layout.MediaTypeOCIIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", cacheRevalidate)
	if at != "" {
		h.Set(HeaderFiltersApplied, "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// serveBlob sends blob d with Range and HEAD support (http.ServeContent), verified as it
// streams: a whole blob whose bytes do not hash to d ends the response early. byDigest says
// whether the request named d (content that never changes, cached for a year) or a tag (which
// a patch may move: revalidated on every use, by ETag only).
func (v *View) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, mediaType string, byDigest bool) {
	b := v.src.Carrier(d)
	if b == nil {
		apiError(w, http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
		return
	}
	rs, _, err := b.OpenBlob(d)
	if err != nil {
		status, code := http.StatusInternalServerError, codeUnknown
		if errors.Is(err, layout.ErrNotFound) {
			status, code = http.StatusNotFound, codeBlobUnknown
		} else {
			v.logFailure(r, b, d, "answered 500", err)
		}
		apiError(w, status, code, err.Error())
		return
	}
	defer rs.Close()
	h := w.Header()
	h.Set("Content-Type", mediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	modtime := v.src.Created()
	if byDigest {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		// No Last-Modified: serving an older set of bundles may move a tag back in time.
		h.Set("Cache-Control", cacheRevalidate)
		modtime = time.Time{}
	}
	fr := &failedReader{ReadSeeker: rs}
	http.ServeContent(w, r, "", modtime, fr)
	if fr.err != nil {
		v.logFailure(r, b, d, fmt.Sprintf("cut short after %d bytes", fr.sent), fr.err)
	}
}

// failedReader keeps the first error reading a blob: the bundle's, as the client's own
// failures are the response writer's.
type failedReader struct {
	io.ReadSeeker
	sent int64
	err  error
}

// Read reads the blob, keeping its first error but EOF.
func (f *failedReader) Read(p []byte) (int, error) {
	n, err := f.ReadSeeker.Read(p)
	f.sent += int64(n)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

// logFailure logs, in one line, a request that failed because of bundle b: the bundle file,
// the member of blob d and the error.
func (v *View) logFailure(r *http.Request, b *archive.Bundle, d digest.Digest, what string, err error) {
	member, _ := registry.PathFor(registry.BlobData{Digest: d})
	l := v.Log
	if l == nil {
		l = log.Default()
	}
	l.Printf("%s %s %s: bundle %s, member %s, blob %s: %v", r.Method, r.URL.Path, what, b.Path, member, d, err)
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
	var body bytes.Buffer
	json.NewEncoder(&body).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	w.Write(body.Bytes())
}
