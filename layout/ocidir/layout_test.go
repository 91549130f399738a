package ocidir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

func TestRefNames(t *testing.T) {
	d := digest.FromString("x")
	l := &Layout{root: filepath.Join(t.TempDir(), "Site Images_1")}
	tests := []struct {
		name string
		want layout.Ref
	}{
		{"v1", layout.Ref{Repo: "site-images_1", Tag: "v1"}},
		{"kubesphere/kube-apiserver:v1.20.6", layout.Ref{Repo: "kubesphere/kube-apiserver", Tag: "v1.20.6"}},
		{"a/b/c/d:x_y.z-1", layout.Ref{Repo: "a/b/c/d", Tag: "x_y.z-1"}},
		{"busybox@" + string(d), layout.Ref{Repo: "busybox", Digest: d}},
	}
	for _, tt := range tests {
		got, err := l.parseRefName(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("parseRefName(%q) = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
		if tt.name != "v1" && RefName(got) != tt.name {
			t.Errorf("RefName(%+v) = %q, want %q", got, RefName(got), tt.name)
		}
	}
	if _, err := l.parseRefName("UPPER/x:1"); err == nil {
		t.Errorf("an invalid repository name was accepted")
	}
}

func TestOpenIgnoresForeignDescriptors(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, LayoutFile), []byte(`{"imageLayoutVersion": "1.0.0"}`), 0o644)
	d := digest.FromString("m")
	idx := `{"schemaVersion":2,"manifests":[
		{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(d) + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"app:v1"}},
		{"mediaType":"application/vnd.example.artifact","digest":"` + string(d) + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"art:v1"}},
		{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(d) + `","size":1}]}`
	os.WriteFile(filepath.Join(root, IndexFile), []byte(idx), 0o644)
	l, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := l.Refs()
	if err != nil || len(refs) != 1 || refs[0] != (layout.Ref{Repo: "app", Tag: "v1"}) {
		t.Fatalf("Refs = %v, %v; want only app:v1", refs, err)
	}
	if got, err := l.Resolve(layout.Ref{Repo: "app", Tag: "v1"}); err != nil || got != d {
		t.Errorf("Resolve(app:v1) = %s, %v", got, err)
	}
	if _, err := l.Resolve(layout.Ref{Repo: "art", Tag: "v1"}); err == nil {
		t.Errorf("an artifact descriptor resolved as an image")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Errorf("a directory without oci-layout opened")
	}
}
