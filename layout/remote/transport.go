package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// plainHTTP remembers the hosts that answered an https request in plain http, and fails every
// later https request to them at once, without dialling.
//
// go-containerregistry pings a registry it may reach over http (a loopback or private address,
// or --tls-verify=false) with https first and http right after, and pings again for every new
// set of scopes: each repository written to, and each repository a blob is mounted from. Each
// such https attempt dialled a connection and made a TLS client hello (key shares included)
// only to be answered in plain http: a sixth of push's CPU at 5,000 tags (#19). Failing it at
// once leads to the same http fallback.
type plainHTTP struct {
	base  http.RoundTripper
	hosts sync.Map // host:port -> true
}

// RoundTrip sends req through the base transport unless it is https to a host known to speak
// plain http.
func (p *plainHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return p.base.RoundTrip(req)
	}
	host := req.URL.Host
	if _, ok := p.hosts.Load(host); ok {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("https to %s not tried, it answered https in plain http before: %w", host, http.ErrSchemeMismatch)
	}
	resp, err := p.base.RoundTrip(req)
	// What net/http's Client turns into ErrSchemeMismatch: a TLS record header that is the
	// start of an HTTP answer.
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
		p.hosts.Store(host, true)
	}
	return resp, err
}

// CloseIdleConnections passes on to the base transport (http.Client calls it).
func (p *plainHTTP) CloseIdleConnections() { closeIdle(p.base) }

// closeIdle closes the idle connections of rt, if it keeps any.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// blobAnswers is what the registry answered during the upload of one blob, as seen by
// traceTransport: go-containerregistry's Upload asks whether the blob is there (HEAD), then
// mounts or uploads it, and says only whether it all succeeded. Knowing how lets bale count
// what a push did, and tell a registry that fails to say whether it has a blob (see upload)
// without a HEAD of its own before each upload (one request a blob, #19).
type blobAnswers struct {
	existing  atomic.Bool // HEAD of the blob: 200
	headFails atomic.Bool // HEAD of the blob: 5xx
	mounted   atomic.Bool // POST with mount=: 201 Created
}

// blobAnswersKey is the context key of the *blobAnswers that an upload's requests fill in.
type blobAnswersKey struct{}

// withBlobAnswers returns ctx carrying a new blobAnswers for the requests made with it.
func withBlobAnswers(ctx context.Context) (context.Context, *blobAnswers) {
	a := &blobAnswers{}
	return context.WithValue(ctx, blobAnswersKey{}, a), a
}

// traceTransport fills in the blobAnswers of a request's context, if it has one.
type traceTransport struct{ base http.RoundTripper }

// RoundTrip sends req and records what the answer says about the blob being uploaded.
func (t traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	a, _ := req.Context().Value(blobAnswersKey{}).(*blobAnswers)
	if a == nil || err != nil || !strings.Contains(req.URL.Path, "/blobs/") {
		return resp, err
	}
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK:
		a.existing.Store(true)
	case req.Method == http.MethodHead && resp.StatusCode >= 500:
		a.headFails.Store(true)
	case req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		a.mounted.Store(true)
	}
	return resp, err
}

// CloseIdleConnections passes on to the base transport (http.Client calls it).
func (t traceTransport) CloseIdleConnections() { closeIdle(t.base) }
