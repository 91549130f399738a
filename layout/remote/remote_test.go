package remote

import (
	"errors"
	"testing"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		spec, host, prefix string
		ok                 bool
	}{
		{"docker://harbor.site:443/library", "harbor.site:443", "library", true},
		{"docker://127.0.0.1:5000", "127.0.0.1:5000", "", true},
		{"docker://127.0.0.1:5000/", "127.0.0.1:5000", "", true},
		{"docker://quay.io/a/b", "quay.io", "a/b", true},
		{"docker://", "", "", false},
		{"harbor.site/library", "", "", false},
		{"docker://harbor.site/library:v1", "", "", false},
		{"docker://harbor.site/Library", "", "", false},
		{"docker://bad host/x", "", "", false},
	}
	for _, tt := range tests {
		r, err := Open(tt.spec, Options{})
		if !tt.ok {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("Open(%q) = %v, want ErrUsage", tt.spec, err)
			}
			continue
		}
		if err != nil || r.host != tt.host || r.prefix != tt.prefix {
			t.Errorf("Open(%q) = %+v, %v; want host %q prefix %q", tt.spec, r, err, tt.host, tt.prefix)
			continue
		}
		nr, err := r.repo("kubesphere/ks-apiserver")
		want := tt.host + "/kubesphere/ks-apiserver"
		if tt.prefix != "" {
			want = tt.host + "/" + tt.prefix + "/kubesphere/ks-apiserver"
		}
		if err != nil || nr.Name() != want {
			t.Errorf("%s: repo maps to %v %v, want %s", tt.spec, nr, err, want)
		}
		back, ok := r.local(nr.RepositoryStr())
		if !ok || back != "kubesphere/ks-apiserver" {
			t.Errorf("%s: %s maps back to %q %v", tt.spec, nr.RepositoryStr(), back, ok)
		}
	}
	r, _ := Open("docker://h.io/pre", Options{})
	for _, outside := range []string{"other/x", "pre", "prefix/x"} {
		if _, ok := r.local(outside); ok {
			t.Errorf("%s is outside the prefix pre, but maps", outside)
		}
	}
}

func TestOptions(t *testing.T) {
	if _, err := Open("docker://h.io", Options{CertDir: "/nonexistent"}); err == nil {
		t.Error("a missing --cert-dir is accepted")
	}
	if _, err := Open("docker://h.io", Options{AuthFile: "/nonexistent"}); err == nil {
		t.Error("a missing --authfile is accepted")
	}
}
