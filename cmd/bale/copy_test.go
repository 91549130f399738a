package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// TestCopyRoundTrip: registry -> dir -> oci -> registry by hard links keeps every manifest
// digest and every blob byte (the same inodes all along), and each output is read by the real
// peers: docker-registry serving the storage to skopeo copy --all, skopeo copy dir:, skopeo
// copy oci:PATH:REF.
func TestCopyRoundTrip(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	// Start from a copy of the genuine storage on this file system, so links are possible.
	s := filepath.Join(work, "s")
	mustBale(t, "copy", "registry:"+f.registry, "registry:"+s)
	d, o, r := filepath.Join(work, "d"), filepath.Join(work, "o"), filepath.Join(work, "r")
	mustBale(t, "copy", "registry:"+s, "dir:"+d)
	mustBale(t, "copy", "dir:"+d, "oci:"+o)
	mustBale(t, "copy", o, "registry:"+r) // a bare OCI layout path is detected
	for _, loc := range []string{"registry:" + s, "dir:" + d, "oci:" + o, "registry:" + r} {
		checkList(t, loc, f.corpus.Images)
		mustBale(t, "verify", loc)
	}

	// Every blob file of every output is the registry's own file: no blob bytes were added.
	for _, img := range f.corpus.Images {
		blobs, err := f.corpus.BlobDigests(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range append(append(blobs, img.Digest), img.Children...) {
			want := inode(t, blobData(s, b))
			got := map[string]uint64{
				"oci":      inode(t, filepath.Join(o, "blobs/sha256", b.Encoded())),
				"registry": inode(t, blobData(r, b)),
			}
			if b == img.Digest {
				got["dir"] = inode(t, filepath.Join(d, img.Repo+":"+img.Tag, "manifest.json"))
			} else if isChild(img, b) {
				got["dir"] = inode(t, filepath.Join(d, img.Repo+":"+img.Tag, b.Encoded()+".manifest.json"))
			} else {
				got["dir"] = inode(t, filepath.Join(d, img.Repo+":"+img.Tag, b.Encoded()))
			}
			for k, ino := range got {
				if ino != want {
					t.Errorf("%s: %s in %s is not a hard link of the source's file", img.Name(), b, k)
				}
			}
		}
	}

	t.Run("served registry", func(t *testing.T) { checkServed(t, r, "", f.corpus.Images) })
	t.Run("skopeo reads dir: and oci:", func(t *testing.T) {
		for _, img := range f.corpus.Images {
			checkSkopeoRead(t, "dir:"+filepath.Join(d, img.Repo+":"+img.Tag), img)
			// skopeo 1.9.3 (Debian 12) reads only OCI manifests and indexes out of an OCI
			// layout; bale keeps Docker manifests byte for byte there (see docs), which newer
			// containers/image reads.
			if strings.HasPrefix(img.MediaType, "application/vnd.oci.") {
				checkSkopeoRead(t, "oci:"+o+":"+img.Repo+":"+img.Tag, img)
			}
		}
	})

	// Pack from the OCI layout gives the same bundle as from the registry storage; unpack
	// into an OCI layout gives it back.
	b1, b2 := filepath.Join(work, "from-s.tar.zst"), filepath.Join(work, "from-o.tar.zst")
	mustBale(t, "pack", "-o", b1, "registry:"+s)
	mustBale(t, "pack", "-o", b2, "oci:"+o)
	if x, y := readFile(t, b1), readFile(t, b2); !bytes.Equal(x, y) {
		t.Errorf("packing the OCI layout and the registry storage of the same images differ")
	}
	o2 := filepath.Join(work, "o2")
	mustBale(t, "unpack", "--to", "oci:"+o2, b1)
	checkList(t, "oci:"+o2, f.corpus.Images)
	mustBale(t, "verify", "oci:"+o2)
}

// TestCopySelectAndMerge: --images selects, every missing image is reported and nothing is
// written; copies into one destination merge.
func TestCopySelectAndMerge(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	list := filepath.Join(work, "l.list")
	os.WriteFile(list, []byte("busybox:1.36.1\nno/such:v1\nmultiarch/pause:nope\n"), 0o644)
	out := filepath.Join(work, "out")
	res := bale(t, "copy", "--images", list, "registry:"+f.registry, "registry:"+out)
	if res.code != exitNotFound || !strings.Contains(res.stderr, "no/such:v1") || !strings.Contains(res.stderr, "multiarch/pause:nope") {
		t.Fatalf("copy with missing images: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused copy wrote %s", out)
	}
	var first, second []imagetest.Image
	for _, img := range f.corpus.Images {
		if strings.HasPrefix(img.Repo, "multiarch/") || strings.HasPrefix(img.Repo, "a/") {
			first = append(first, img)
		} else {
			second = append(second, img)
		}
	}
	for _, part := range [][]imagetest.Image{first, second} {
		var names []string
		for _, img := range part {
			names = append(names, "docker.io/"+img.Name())
		}
		os.WriteFile(list, []byte(strings.Join(names, "\n")), 0o644)
		mustBale(t, "copy", "--images", list, "dir:"+f.tree, "registry:"+out)
	}
	checkList(t, "registry:"+out, f.corpus.Images)
	mustBale(t, "verify", "registry:"+out)
	checkServed(t, out, "", f.corpus.Images)
}

func isChild(img imagetest.Image, d digest.Digest) bool {
	for _, c := range img.Children {
		if c == d {
			return true
		}
	}
	return false
}

// checkSkopeoRead has skopeo read an image (inspect --raw, and copy --all into a dir:, which
// verifies every blob) and compares the manifest digest.
func checkSkopeoRead(t *testing.T, ref string, img imagetest.Image) {
	t.Helper()
	if got := digest.FromBytes(testenv.Skopeo(t, "inspect", "--raw", ref)); got != img.Digest {
		t.Errorf("skopeo inspect --raw %s: %s, want %s", ref, got, img.Digest)
	}
	dst := filepath.Join(t.TempDir(), "pulled")
	testenv.Skopeo(t, "copy", "--all", "--preserve-digests", ref, "dir:"+dst)
	if got := digest.FromBytes(readFile(t, filepath.Join(dst, "manifest.json"))); got != img.Digest {
		t.Errorf("skopeo copy --all %s: manifest %s, want %s", ref, got, img.Digest)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOCIWrittenBySkopeo: bale reads an OCI layout skopeo wrote, with a bare-tag ref name and
// a <repo>:<tag> one, and copies it into registry storage that docker-registry serves.
func TestOCIWrittenBySkopeo(t *testing.T) {
	f := getFixture(t)
	img := imageNamed(f.corpus, "kubesphere/kube-proxy:v1.20.6") // an OCI image
	idx := imageNamed(f.corpus, "multiarch/pause:3.2")           // an OCI index
	o := filepath.Join(t.TempDir(), "site-images")
	testenv.Skopeo(t, "copy", "--all", "--preserve-digests", "dir:"+filepath.Join(f.tree, img.Repo+":"+img.Tag), "oci:"+o+":v1")
	testenv.Skopeo(t, "copy", "--all", "--preserve-digests", "dir:"+filepath.Join(f.tree, idx.Repo+":"+idx.Tag), "oci:"+o+":"+idx.Repo+":"+idx.Tag)
	want := []imagetest.Image{
		{Repo: "site-images", Tag: "v1", Digest: img.Digest, MediaType: img.MediaType},
		idx,
	}
	checkList(t, "oci:"+o, want)
	r := filepath.Join(t.TempDir(), "r")
	mustBale(t, "copy", "oci:"+o, "registry:"+r)
	checkServed(t, r, "", want)
}
