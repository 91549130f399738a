package remote

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPlainHTTPRemembers: once an https request to a host is answered in plain http, later
// https requests to it fail at once without a connection, and http ones still go through.
func TestPlainHTTPRemembers(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	cl := &http.Client{Transport: &plainHTTP{base: base}}

	if _, err := cl.Get("https://" + host + "/v2/"); !errors.Is(err, http.ErrSchemeMismatch) {
		t.Fatalf("https to a plain http server: %v, want http.ErrSchemeMismatch", err)
	}
	before := conns.Load()
	if before == 0 {
		t.Fatal("the first https request made no connection")
	}
	_, err := cl.Get("https://" + host + "/v2/")
	if !errors.Is(err, http.ErrSchemeMismatch) || !strings.Contains(err.Error(), "not tried") {
		t.Errorf("second https request: %v, want it not tried", err)
	}
	if n := conns.Load(); n != before {
		t.Errorf("the second https request connected (%d connections, %d before)", n, before)
	}
	resp, err := cl.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatalf("http to the same host: %v", err)
	}
	resp.Body.Close()
}
