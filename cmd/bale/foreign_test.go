package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// TestForeignLayerNotCarried: a non-distributable layer (with urls) that the source does not
// hold, as a registry that never received a Windows base layer, is recorded as not carried:
// pack and unpack succeed without it, the manifest stays byte for byte, nothing fetches the
// urls (example.invalid would not answer), verify passes, a push is accepted, and a patch does
// not expect the layer from the site.
func TestForeignLayerNotCarried(t *testing.T) {
	testenv.Need(t, "docker-registry")
	testenv.NeedTool(t, "regctl")
	t.Setenv(urlsAllowEnv, `["^https?://"]`)
	c := imagetest.OCI11()
	var img imagetest.Image
	for _, i := range c.Images {
		if i.Repo == "oci11/nondist" {
			img = i
		}
	}
	var m struct {
		Layers []struct {
			Digest digest.Digest
			URLs   []string
		}
	}
	if err := json.Unmarshal(c.Blobs[img.Digest], &m); err != nil {
		t.Fatal(err)
	}
	var foreign digest.Digest
	for _, l := range m.Layers {
		if len(l.URLs) > 0 {
			foreign = l.Digest
		}
	}
	if img.Repo == "" || foreign == "" {
		t.Fatal("the OCI11 corpus has no image with a layer with urls")
	}
	src := filepath.Join(t.TempDir(), "oci")
	if err := c.WriteOCILayout(src); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "blobs", "sha256", foreign.Encoded())); err != nil {
		t.Fatal(err)
	}
	list := writeFile(t, t.TempDir(), "images.list", img.Name()+"\n")
	bundle := filepath.Join(t.TempDir(), "b.tar.zst")
	mustBale(t, "pack", "--images", list, "-o", bundle, "oci:"+src)
	var ls struct{ Blobs, CarriedBlobs int }
	if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", bundle).stdout), &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Blobs != ls.CarriedBlobs+1 {
		t.Errorf("bale list: %d blobs, %d carried; want one not carried", ls.Blobs, ls.CarriedBlobs)
	}
	mustBale(t, "verify", bundle)

	work := t.TempDir()
	x, y, z := filepath.Join(work, "x"), filepath.Join(work, "y"), filepath.Join(work, "z")
	mustBale(t, "unpack", "--to", "registry:"+x, "--to", "dir:"+y, "--to", "oci:"+z, bundle)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "oci:"+z)
	reg := testenv.StartRegistry(t, x)
	got := testenv.Regctl(t, "", "--host", "reg="+reg.Addr+",tls=disabled", "manifest", "get", "--format", "raw-body", reg.Addr+"/"+img.Repo+":"+img.Tag)
	if !bytes.Equal(got, c.Blobs[img.Digest]) {
		t.Errorf("the unpacked storage serves another manifest for %s (%d bytes)", img.Name(), len(got))
	}
	if _, err := os.Stat(filepath.Join(x, "docker/registry/v2/blobs/sha256", foreign.Encoded()[:2], foreign.Encoded())); err == nil {
		t.Errorf("a blob the bundle does not carry appeared in the target")
	}

	// A patch of the same images expects nothing from the site for the layer not carried.
	patch := filepath.Join(t.TempDir(), "p.tar.zst")
	mustBale(t, "pack", "--base", bundle, "--images", list, "-o", patch, "oci:"+src)
	mustBale(t, "unpack", "--to", "registry:"+x, patch)

	dst := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "pushed"))
	mustBale(t, "push", "--dest-tls-verify=false", bundle, "docker://"+dst.Addr)
	got = testenv.Regctl(t, "", "--host", "reg="+dst.Addr+",tls=disabled", "manifest", "get", "--format", "raw-body", dst.Addr+"/"+img.Repo+":"+img.Tag)
	if !bytes.Equal(got, c.Blobs[img.Digest]) {
		t.Errorf("the pushed registry serves another manifest for %s", img.Name())
	}
}
