package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// schema1Manifest is a Docker schema1 manifest as old registries hold them (unsigned form).
const schema1Manifest = `{"schemaVersion":1,"name":"old/app","tag":"v1","architecture":"amd64",` +
	`"fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],` +
	`"history":[{"v1Compatibility":"{\"id\":\"x\"}"}]}`

// TestKeepGoing: a pack of every tag of an old registry that holds a schema1 image names it
// and writes nothing; with --keep-going it packs the rest, names what it left out and exits 5.
func TestKeepGoing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "reg")
	if out, err := exec.Command("cp", "-r", "../../testdata/sample-registry", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	st, err := registry.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(schema1Manifest)
	d := digest.FromBytes(raw)
	desc := layout.Descriptor{MediaType: layout.MediaTypeDockerSchema1, Digest: d, Size: int64(len(raw))}
	if err := st.WriteBlob(desc, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteLink(registry.RevisionLink{Repo: "old/app", Digest: d}, d); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag("old/app", "v1", d); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.tar.zst")

	res := bale(t, "pack", "-o", out, "registry:"+root)
	if res.code == 0 || !strings.Contains(res.stderr, "old/app:v1") || !strings.Contains(res.stderr, "schema1") {
		t.Fatalf("pack of a registry holding a schema1 image: exit %d, stderr %q; want a failure naming old/app:v1", res.code, res.stderr)
	}
	if _, err := exec.Command("test", "-e", out).CombinedOutput(); err == nil {
		t.Fatalf("a failed pack left %s", out)
	}

	res = bale(t, "pack", "--keep-going", "-o", out, "registry:"+root)
	if res.code != exitPartial || !strings.Contains(res.stderr, "old/app:v1") || !strings.Contains(res.stderr, "schema1") {
		t.Fatalf("pack --keep-going: exit %d, stderr %q; want %d naming old/app:v1", res.code, res.stderr, exitPartial)
	}
	ls := listJSON(t, out)
	if len(ls) == 0 {
		t.Fatal("pack --keep-going wrote no image")
	}
	for _, l := range ls {
		if l.Repo == "old/app" {
			t.Errorf("the schema1 image was packed: %+v", l)
		}
	}
	mustBale(t, "verify", out)
}
