package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// shapes is imagetest.RealWorld pushed into docker-registry (skopeo copy --all, the index of an
// index by a manifest PUT): its storage root, made once per test binary.
type shapes struct {
	corpus   *imagetest.Corpus
	registry string
}

var (
	shapesOnce sync.Once
	shapesFix  *shapes
)

func getShapes(t *testing.T) *shapes {
	t.Helper()
	testenv.Need(t, "skopeo")
	testenv.Need(t, "docker-registry")
	shapesOnce.Do(func() {
		t.Run("shapes", func(t *testing.T) {
			dir, err := os.MkdirTemp("", "bale-shapes-")
			if err != nil {
				t.Fatal(err)
			}
			extraCleanup = append(extraCleanup, dir)
			s := &shapes{corpus: imagetest.RealWorld(), registry: filepath.Join(dir, "registry")}
			reg := testenv.StartRegistry(t, s.registry)
			src := t.TempDir()
			for _, img := range s.corpus.Images {
				if s.corpus.NestsIndex(img) {
					if err := s.corpus.PutManifest(reg.Addr, img); err != nil {
						t.Fatal(err)
					}
					continue
				}
				p, err := s.corpus.WriteDir(src, img)
				if err != nil {
					t.Fatal(err)
				}
				reg.Push(t, "dir:"+p, img.Repo, img.Tag)
			}
			reg.Stop()
			shapesFix = s
		})
	})
	if shapesFix == nil {
		t.Fatal("pushing imagetest.RealWorld failed")
	}
	return shapesFix
}

// shapesBundle packs the shapes into a bundle in dir.
func shapesBundle(t *testing.T, s *shapes, dir string) string {
	t.Helper()
	bundle := filepath.Join(dir, "shapes.tar.zst")
	mustBale(t, "pack", "-q", "-o", bundle, "registry:"+s.registry)
	return bundle
}

// mergedAlpine checks that the stderr of a copy of n images of the corpus names the one merged
// name and both refs it merges, and says the images went under n-1 names.
func mergedAlpine(t *testing.T, what, stderr string, n int) {
	t.Helper()
	var line string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "docker.io/library/alpine:3.14") {
			line = l
		}
	}
	words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' })
	if !slices.Contains(words, "alpine:3.14") || !slices.Contains(words, "library/alpine:3.14") {
		t.Errorf("%s: no line says alpine:3.14 and library/alpine:3.14 merged into docker.io/library/alpine:3.14:\n%s", what, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("copied %d images", n)) || !strings.Contains(stderr, fmt.Sprintf("under %d names", n-1)) {
		t.Errorf("%s: the summary does not say %d images went under %d names:\n%s", what, n, n-1, stderr)
	}
}

// TestShapesContainerd: BuildKit-shaped indexes (attestation manifests beside the images), an
// index of an index and its tagged inner index, and one index under alpine:3.14 and
// library/alpine:3.14, copied from a bundle to an oci-archive and imported by the real
// containerd: ctr lists every runtime name at its registry digest, complete, and bale says
// which names merged.
func TestShapesContainerd(t *testing.T) {
	s := getShapes(t)
	ctd := testenv.StartContainerd(t)
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	oci := filepath.Join(dir, "shapes.tar")
	res := mustBale(t, "copy", bundle, "oci-archive:"+oci)
	mergedAlpine(t, "copy to oci-archive", res.stderr, len(s.corpus.Images))

	ctd.Ctr(t, "-n", "k8s.io", "images", "import", "--all-platforms", "--snapshotter", "native", oci)
	want := map[string]string{}
	for _, img := range s.corpus.Images {
		want[runtimeName(t, img.Repo, img.Tag)] = string(img.Digest)
	}
	if len(want) != len(s.corpus.Images)-1 {
		t.Fatalf("%d runtime names for %d images: the corpus should merge exactly two", len(want), len(s.corpus.Images))
	}
	checkCtr(t, "oci-archive", ctd.CtrImages(t, "k8s.io"), want)
}

// TestShapesPodman: the same shapes through docker-archive into podman, once for the host's
// default (linux/amd64) and once for --platform linux/arm64: every name loads with the image
// id (config digest) of that platform's image, never an attestation's; bale says which names
// merged.
func TestShapesPodman(t *testing.T) {
	s := getShapes(t)
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	// shapes/buildkit:single has no arm64 image: the arm64 archive is of the others, and asked
	// for it alone bale names the one platform it has (its attestation is none).
	res := bale(t, "copy", "--platform", "linux/arm64", "--images", writeFile(t, dir, "single.list", "shapes/buildkit:single\n"),
		bundle, "docker-archive:"+filepath.Join(dir, "single.tar"))
	if res.code != exitNotFound || !strings.Contains(res.stderr, "no linux/arm64 manifest (it has [linux/amd64])") {
		t.Errorf("copy --platform linux/arm64 of a linux/amd64 BuildKit image: exit %d\n%s", res.code, res.stderr)
	}
	var list strings.Builder
	arm := []imagetest.Image{}
	for _, img := range s.corpus.Images {
		if img.Name() != "shapes/buildkit:single" {
			list.WriteString(img.Name() + "\n")
			arm = append(arm, img)
		}
	}
	for _, p := range []struct {
		flag, os, arch string
		images         []imagetest.Image
	}{{"", "linux", "amd64", s.corpus.Images}, {"linux/arm64", "linux", "arm64", arm}} {
		docker := filepath.Join(dir, "docker-"+p.arch+".tar")
		args := []string{"copy", bundle, "docker-archive:" + docker}
		if p.flag != "" {
			args = []string{"copy", "--platform", p.flag, "--images", writeFile(t, dir, "arm.list", list.String()), bundle, "docker-archive:" + docker}
		}
		res := mustBale(t, args...)
		mergedAlpine(t, "copy to docker-archive "+p.arch, res.stderr, len(p.images))

		pm := testenv.NewPodman(t)
		pm.Run(t, "load", "-i", docker)
		var images []struct {
			ID    string `json:"Id"`
			Names []string
		}
		if err := json.Unmarshal([]byte(pm.Run(t, "images", "--format", "json")), &images); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, img := range images {
			for _, n := range img.Names {
				got[n] = "sha256:" + img.ID
			}
		}
		if len(got) != len(p.images)-1 {
			t.Errorf("podman (%s) lists %d names, want %d: %v", p.arch, len(got), len(p.images)-1, got)
		}
		for _, img := range p.images {
			name := runtimeName(t, img.Repo, img.Tag)
			cfg, ok := platformConfig(t, s.corpus, img.Digest, p.os, p.arch)
			if !ok {
				t.Fatalf("%s has no %s/%s image", img.Name(), p.os, p.arch)
			}
			if got[name] != string(cfg) {
				t.Errorf("podman (%s): %s has id %q, want the %s/%s config %s (has %v)", p.arch, name, got[name], p.os, p.arch, cfg, got)
				continue
			}
			out := pm.Run(t, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", name)
			if strings.TrimSpace(out) != p.os+"/"+p.arch {
				t.Errorf("podman (%s): %s is %s", p.arch, name, out)
			}
		}
	}
}

// platformConfig finds, by reading the corpus's own bytes, the config digest of the image for
// os/arch below index d (at any depth), never an attestation manifest's.
func platformConfig(t *testing.T, c *imagetest.Corpus, d digest.Digest, os, arch string) (digest.Digest, bool) {
	t.Helper()
	var m struct {
		Manifests []imagetest.Descriptor `json:"manifests"`
		Config    *imagetest.Descriptor  `json:"config"`
	}
	if err := json.Unmarshal(c.Blobs[d], &m); err != nil {
		t.Fatal(err)
	}
	for _, x := range m.Manifests {
		if imagetest.IsIndexType(x.MediaType) {
			if cfg, ok := platformConfig(t, c, x.Digest, os, arch); ok {
				return cfg, true
			}
			continue
		}
		if x.Platform != nil && x.Platform.OS == os && x.Platform.Architecture == arch {
			return platformConfig(t, c, x.Digest, os, arch)
		}
	}
	if m.Config != nil {
		return m.Config.Digest, true
	}
	return "", false
}

// TestShapesPackUnpackVerify runs the shapes through the main path once: pack from registry
// storage, list (platforms without unknown/unknown), verify, unpack to registry storage and a
// dir tree, verify both, and docker-registry and bale serve serving every image and every
// manifest below it to skopeo; the index of an index, which skopeo cannot copy, by digest.
func TestShapesPackUnpackVerify(t *testing.T) {
	s := getShapes(t)
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	checkList(t, bundle, s.corpus.Images)
	for _, l := range listJSON(t, bundle) {
		want := []string{"linux/amd64", "linux/arm64/v8"}
		if l.Repo+":"+l.Tag == "shapes/buildkit:single" {
			want = want[:1]
		}
		if l.Repo+":"+l.Tag == "shapes/nested:outer" {
			continue // its child is an index: no platform of its own
		}
		if !slices.Equal(l.Platforms, want) {
			t.Errorf("bale list: %s:%s has platforms %v, want %v", l.Repo, l.Tag, l.Platforms, want)
		}
	}
	mustBale(t, "verify", bundle)

	x, y := filepath.Join(dir, "x"), filepath.Join(dir, "y")
	mustBale(t, "unpack", "-q", "--to", "registry:"+x, "--to", "dir:"+y, bundle)
	mustBale(t, "verify", "registry:"+x)
	mustBale(t, "verify", "dir:"+y)
	checkList(t, "dir:"+y, s.corpus.Images)
	for _, reg := range []*testenv.Registry{testenv.StartRegistry(t, x), startServe(t, bundle)} {
		for _, img := range s.corpus.Images {
			if !s.corpus.NestsIndex(img) {
				reg.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
				continue
			}
			for _, d := range append([]digest.Digest{img.Digest}, img.Children...) {
				raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...), reg.Ref(img.Repo, d.String()))...)
				if got := sha256Hex(raw); got != d {
					t.Errorf("%s serves %s@%s as %s", reg.Addr, img.Repo, d, got)
				}
			}
		}
	}
}

// TestShapesPlatformsKeepAttestations: copy with two --platform keeps each BuildKit index byte
// for byte with the images of those platforms and the attestation manifests of exactly those
// images; the other images and their attestations are left out (docker-registry serves the
// index and the kept manifests, and answers 404 for the rest).
func TestShapesPlatformsKeepAttestations(t *testing.T) {
	s := getShapes(t)
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	root := filepath.Join(dir, "amd64")
	mustBale(t, "copy", "-q", "--platform", "linux/amd64", "--platform", "linux/s390x", bundle, "registry:"+root)
	reg := testenv.StartRegistry(t, root)
	img := s.corpus.ByName("shapes/buildkit:multi")
	var idx imagetest.IndexJSON
	if err := json.Unmarshal(s.corpus.Blobs[img.Digest], &idx); err != nil {
		t.Fatal(err)
	}
	keep := map[digest.Digest]bool{img.Digest: true}
	for _, d := range idx.Manifests {
		if d.Platform.Architecture == "amd64" {
			keep[d.Digest] = true
		}
	}
	for _, d := range idx.Manifests {
		if d.Annotations[imagetest.AnnotationReferenceType] == imagetest.ReferenceTypeAttestation && keep[digest.Digest(d.Annotations[imagetest.AnnotationReferenceDigest])] {
			keep[d.Digest] = true
		}
	}
	if len(keep) != 3 {
		t.Fatalf("the corpus's multi index should keep itself, one image and one attestation, not %d", len(keep))
	}
	for _, d := range append([]digest.Digest{img.Digest}, img.Children...) {
		raw, err := testenv.RunSkopeo(t.Context(), append(append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...), reg.Ref(img.Repo, d.String()))...)
		switch {
		case keep[d] && (err != nil || sha256Hex(raw) != d):
			t.Errorf("%s@%s: want it kept: %v", img.Repo, d, err)
		case !keep[d] && err == nil:
			t.Errorf("%s@%s: want it left out, docker-registry serves it", img.Repo, d)
		}
	}
}

// TestShapesEveryLayout takes the shapes through the layouts the main path does not: unpack to
// an OCI layout and to registry storage in a bucket (versitygw), and push into a live
// docker-registry. Each is verified by bale, lists every tag at its digest, and packs back
// into a bundle with the original's catalog id (which binds every tag, manifest and blob).
func TestShapesEveryLayout(t *testing.T) {
	s := getShapes(t)
	testenv.NeedTool(t, "versitygw")
	dir := t.TempDir()
	bundle := shapesBundle(t, s, dir)
	want := catalogID(t, bundle)

	oci := "oci:" + filepath.Join(dir, "oci")
	mustBale(t, "unpack", "-q", "--to", oci, bundle)

	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "shapes")
	bucket := "s3://shapes/site"
	mustBale(t, "unpack", "-q", "--to", bucket, bundle)

	reg := testenv.StartRegistry(t, filepath.Join(dir, "pushed"))
	mustBale(t, "push", "-q", "--dest-tls-verify=false", bundle, "docker://"+reg.Addr)
	live := "docker://" + reg.Addr

	for _, loc := range []string{oci, bucket, live} {
		t.Run(strings.SplitN(loc, ":", 2)[0], func(t *testing.T) {
			if loc != live {
				mustBale(t, "verify", loc)
			}
			checkList(t, loc, s.corpus.Images)
			back := filepath.Join(t.TempDir(), "back.tar.zst")
			args := []string{"pack", "-q", "-o", back, loc}
			if loc == live {
				args = []string{"pack", "-q", "--src-tls-verify=false", "-o", back, loc}
			}
			mustBale(t, args...)
			if got := catalogID(t, back); got != want {
				t.Errorf("packed back from %s: catalog id %s, want the original's %s", loc, got, want)
			}
		})
	}
}

// catalogID is the catalog id bale catalog reports for a bundle.
func catalogID(t *testing.T, bundle string) string {
	t.Helper()
	res := mustBale(t, "catalog", "-o", filepath.Join(t.TempDir(), "catalog.db"), bundle)
	_, after, ok := strings.Cut(res.stderr, ", id ")
	if !ok {
		t.Fatalf("bale catalog says no id:\n%s", res.stderr)
	}
	id, _, _ := strings.Cut(after, ")")
	return id
}
