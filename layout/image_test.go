package layout_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in   string
		want layout.Platform
	}{
		{"linux/amd64", layout.Platform{OS: "linux", Architecture: "amd64"}},
		{"linux/arm/v7", layout.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{"linux/arm64/v8", layout.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{"windows/amd64", layout.Platform{OS: "windows", Architecture: "amd64"}},
	}
	for _, tt := range tests {
		got, err := layout.ParsePlatform(tt.in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePlatform(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParsePlatform(%q).String() = %q", tt.in, s)
		}
	}
	for _, in := range []string{"", "linux", "linux/", "/amd64", "/", "linux/arm/v7/x", "//", "linux//v7"} {
		if p, err := layout.ParsePlatform(in); !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want ErrInvalid", in, p, err)
		}
	}
}

func TestPlatformMatches(t *testing.T) {
	amd := &layout.Platform{OS: "linux", Architecture: "amd64"}
	armV7 := &layout.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	armV6 := &layout.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}
	arm := &layout.Platform{OS: "linux", Architecture: "arm"}
	tests := []struct {
		want  string
		child *layout.Platform
		match bool
	}{
		{"linux/amd64", amd, true},
		{"linux/amd64", armV7, false},
		{"linux/arm", armV7, true}, // empty variant matches any
		{"linux/arm", armV6, true},
		{"linux/arm", arm, true},
		{"linux/arm/v7", armV7, true},
		{"linux/arm/v7", armV6, false},
		{"linux/arm/v7", arm, false}, // a wanted variant needs that variant
		{"windows/amd64", amd, false},
		{"linux/amd64", nil, false},
		{"linux/amd64", &layout.Platform{OS: "linux", Architecture: "amd64", OSVersion: "x", Variant: "v2"}, true},
	}
	for _, tt := range tests {
		p, err := layout.ParsePlatform(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(tt.child); got != tt.match {
			t.Errorf("%s.Matches(%+v) = %v, want %v", tt.want, tt.child, got, tt.match)
		}
	}
}

// testImages builds a multi-arch index (amd64, arm/v7, arm64/v8) and a single image.
func testImages(t *testing.T) (index, single *layout.Image) {
	t.Helper()
	amd := mustParse(t, imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA, layerB))
	arm := mustParse(t, imageManifest(layout.MediaTypeDockerManifest, true, cfgArm, layerA))
	arm64 := mustParse(t, imageManifest(layout.MediaTypeOCIManifest, true, cfgArm64, layerC, layerB))
	idx := mustParse(t, indexManifest(layout.MediaTypeOCIIndex, true,
		platDesc(amd.MediaType, amd.Digest, int64(len(amd.Raw)), "linux", "amd64", ""),
		platDesc(arm.MediaType, arm.Digest, int64(len(arm.Raw)), "linux", "arm", "v7"),
		platDesc(arm64.MediaType, arm64.Digest, int64(len(arm64.Raw)), "linux", "arm64", "v8")))
	return &layout.Image{Manifest: idx, Children: []*layout.Manifest{amd, arm, arm64}}, &layout.Image{Manifest: amd}
}

func TestImageSelectPlatform(t *testing.T) {
	idx, single := testImages(t)
	tests := []struct {
		want  string
		child int // index of the expected child, -1 for ErrNotFound
	}{
		{"linux/amd64", 0},
		{"linux/arm", 1},
		{"linux/arm/v7", 1},
		{"linux/arm64", 2},
		{"linux/arm64/v8", 2},
		{"linux/arm/v6", -1},
		{"linux/amd64/v2", -1},
		{"windows/amd64", -1},
	}
	for _, tt := range tests {
		p, _ := layout.ParsePlatform(tt.want)
		got, err := idx.SelectPlatform(p)
		if tt.child < 0 {
			if !errors.Is(err, layout.ErrNotFound) {
				t.Errorf("SelectPlatform(%s) = %v, %v; want ErrNotFound", tt.want, got, err)
			} else if !strings.Contains(err.Error(), "[linux/amd64 linux/arm/v7 linux/arm64/v8]") {
				t.Errorf("SelectPlatform(%s) error %q does not list the platforms the index has", tt.want, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SelectPlatform(%s): %v", tt.want, err)
			continue
		}
		if got.Manifest != idx.Children[tt.child] || len(got.Children) != 0 {
			t.Errorf("SelectPlatform(%s) = %s with %d children, want child %d (%s)", tt.want,
				got.Digest(), len(got.Children), tt.child, idx.Children[tt.child].Digest)
		}
		if !bytes.Equal(got.Manifest.Raw, idx.Children[tt.child].Raw) {
			t.Errorf("SelectPlatform(%s) changed the manifest bytes", tt.want)
		}
	}

	// A single image is returned as it is, whatever the platform.
	for _, w := range []string{"linux/amd64", "windows/arm64"} {
		p, _ := layout.ParsePlatform(w)
		if got, err := single.SelectPlatform(p); err != nil || got != single {
			t.Errorf("single.SelectPlatform(%s) = %v, %v; want the image itself", w, got, err)
		}
	}

	// Two children for one platform: the first wins.
	a, b := idx.Children[1], idx.Children[0]
	dup := mustParse(t, indexManifest(layout.MediaTypeDockerManifestList, true,
		platDesc(a.MediaType, a.Digest, int64(len(a.Raw)), "linux", "amd64", ""),
		platDesc(b.MediaType, b.Digest, int64(len(b.Raw)), "linux", "amd64", "")))
	dupImg := &layout.Image{Manifest: dup, Children: []*layout.Manifest{a, b}}
	got, err := dupImg.SelectPlatform(layout.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil || got.Manifest != a {
		t.Errorf("duplicate platform: got %v, %v; want the first child", got, err)
	}
}

func TestImageBlobsAndSize(t *testing.T) {
	idx, single := testImages(t)
	wantBlobs := []digest.Digest{cfgAmd64.digest(), layerA.digest(), layerB.digest(), cfgArm.digest(), cfgArm64.digest(), layerC.digest()}
	if got := digestsOf(idx.Blobs()); !reflect.DeepEqual(got, wantBlobs) {
		t.Errorf("index Blobs() = %v, want %v", got, wantBlobs)
	}
	if got := digestsOf(single.Blobs()); !reflect.DeepEqual(got, wantBlobs[:3]) {
		t.Errorf("single Blobs() = %v, want %v", got, wantBlobs[:3])
	}
	var wantSize int64
	for _, m := range append([]*layout.Manifest{idx.Manifest}, idx.Children...) {
		wantSize += int64(len(m.Raw))
	}
	for _, b := range []blob{cfgAmd64, layerA, layerB, cfgArm, cfgArm64, layerC} {
		wantSize += int64(len(b.data))
	}
	if got := idx.Size(); got != wantSize {
		t.Errorf("Size() = %d, want %d", got, wantSize)
	}
	if got := idx.Manifests(); len(got) != 4 || got[0] != idx.Manifest || got[3] != idx.Children[2] {
		t.Errorf("Manifests() = %v", got)
	}
	wantPlatforms := []layout.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"}}
	if got := idx.Platforms(); !reflect.DeepEqual(got, wantPlatforms) {
		t.Errorf("Platforms() = %v, want %v", got, wantPlatforms)
	}
	if got := single.Platforms(); got != nil {
		t.Errorf("single Platforms() = %v, want nil", got)
	}
}

func TestImageOutline(t *testing.T) {
	idx, _ := testImages(t)
	subject := &layout.Descriptor{MediaType: layout.MediaTypeOCIManifest, Digest: layerA.digest(), Size: 1}
	idx.Children[1].Subject = subject
	o := idx.Outline()
	want, got := idx.Manifests(), o.Manifests()
	if len(got) != len(want) {
		t.Fatalf("Outline has %d manifests, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m == want[i] {
			t.Errorf("manifest %d of the outline is the image's own", i)
		}
		if m.Digest != want[i].Digest || m.MediaType != want[i].MediaType || m.Subject != want[i].Subject {
			t.Errorf("manifest %d: outline %s %s %v, want %s %s %v", i, m.Digest, m.MediaType, m.Subject, want[i].Digest, want[i].MediaType, want[i].Subject)
		}
		if m.Raw != nil || m.Config != nil || m.Layers != nil || m.Manifests != nil {
			t.Errorf("manifest %d of the outline keeps bytes or descriptors", i)
		}
	}
	if got := o.Blobs(); len(got) != 0 {
		t.Errorf("outline Blobs() = %v, want none", got)
	}
}

// mapSource is a layout.Source over in-memory manifests and blobs.
type mapSource struct {
	manifests map[digest.Digest][]byte
	blobs     map[digest.Digest][]byte
}

func (s *mapSource) Refs() ([]layout.Ref, error)               { return nil, nil }
func (s *mapSource) Resolve(layout.Ref) (digest.Digest, error) { return "", layout.ErrNotFound }
func (s *mapSource) OpenBlob(_ string, d layout.Descriptor) (io.ReadCloser, error) {
	b, ok := s.blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, layout.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (s *mapSource) ReadManifest(_ string, d digest.Digest) (*layout.Manifest, error) {
	b, ok := s.manifests[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", d, layout.ErrNotFound)
	}
	return layout.ParseManifest(b)
}

func TestLoadImage(t *testing.T) {
	amd := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA)
	arm := imageManifest(layout.MediaTypeDockerManifest, true, cfgArm, layerA)
	good := indexManifest(layout.MediaTypeDockerManifestList, true,
		platDesc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd)), "linux", "amd64", ""),
		platDesc(layout.MediaTypeDockerManifest, sha(arm), int64(len(arm)), "linux", "arm", "v7"))
	nested := indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeDockerManifestList, sha(good), int64(len(good))))
	wrongType := indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeOCIManifest, sha(amd), int64(len(amd))))
	wrongSize := indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd))+1))
	missing := indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeDockerManifest, shaOf("gone"), 4))
	armOnly := indexManifest(layout.MediaTypeOCIIndex, true,
		platDesc(layout.MediaTypeDockerManifest, sha(arm), int64(len(arm)), "linux", "arm", "v7"))
	twoInner := indexManifest(layout.MediaTypeOCIIndex, true,
		desc(layout.MediaTypeDockerManifestList, sha(good), int64(len(good))),
		desc(layout.MediaTypeOCIIndex, sha(armOnly), int64(len(armOnly))))
	src := &mapSource{manifests: map[digest.Digest][]byte{}}
	for _, b := range [][]byte{amd, arm, good, nested, wrongType, wrongSize, missing, armOnly, twoInner} {
		src.manifests[sha(b)] = b
	}

	img, err := layout.LoadImage(src, "r", sha(good))
	if err != nil {
		t.Fatalf("LoadImage: %v", err)
	}
	if img.Digest() != sha(good) || len(img.Children) != 2 || img.Children[0].Digest != sha(amd) || img.Children[1].Digest != sha(arm) {
		t.Errorf("LoadImage = %s with children %v", img.Digest(), img.Children)
	}
	single, err := layout.LoadImage(src, "r", sha(amd))
	if err != nil || len(single.Children) != 0 || single.Digest() != sha(amd) {
		t.Errorf("LoadImage(single) = %v, %v", single, err)
	}

	for _, tt := range []struct {
		name string
		d    digest.Digest
		want error
	}{
		{"child media type differs", sha(wrongType), layout.ErrInvalid},
		{"child size differs", sha(wrongSize), layout.ErrInvalid},
		{"missing child", sha(missing), layout.ErrNotFound},
		{"missing manifest", shaOf("nothing"), layout.ErrNotFound},
	} {
		if _, err := layout.LoadImage(src, "r", tt.d); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}

	// An index of an index (regctl index create --digest): loaded whole, depth first, and
	// --platform descends through it.
	nest, err := layout.LoadImage(src, "r", sha(nested))
	if err != nil {
		t.Fatalf("nested index: %v", err)
	}
	var got []digest.Digest
	for _, m := range nest.Manifests() {
		got = append(got, m.Digest)
	}
	if want := []digest.Digest{sha(nested), sha(good), sha(amd), sha(arm)}; !slices.Equal(got, want) {
		t.Errorf("nested index manifests = %v, want %v", got, want)
	}
	arm7, _ := layout.ParsePlatform("linux/arm/v7")
	if one, err := nest.SelectPlatform(arm7); err != nil || one.Digest() != sha(arm) {
		t.Errorf("nested SelectPlatform(linux/arm/v7) = %v, %v; want %s", one, err, sha(arm))
	}
	amd64, _ := layout.ParsePlatform("linux/amd64")
	sp, err := nest.SelectPlatforms([]layout.Platform{amd64, {OS: "windows", Architecture: "amd64"}})
	if err != nil || sp.Digest() != sha(nested) || len(sp.Children) != 2 || sp.Children[1].Digest != sha(amd) ||
		len(sp.Absent) != 1 || sp.Absent[0].Digest != sha(arm) {
		t.Errorf("nested SelectPlatforms = %+v, %v; want nested, good, amd with arm absent", sp, err)
	}

	// An inner index none of whose children is kept is absent as one descriptor.
	two, err := layout.LoadImage(src, "r", sha(twoInner))
	if err != nil {
		t.Fatalf("index of two indexes: %v", err)
	}
	sp, err = two.SelectPlatforms([]layout.Platform{amd64, {OS: "windows", Architecture: "amd64"}})
	var absent []digest.Digest
	if sp != nil {
		for _, d := range sp.Absent {
			absent = append(absent, d.Digest)
		}
	}
	if err != nil || len(sp.Children) != 2 || !slices.Equal(absent, []digest.Digest{sha(arm), sha(armOnly)}) {
		t.Errorf("SelectPlatforms of an index of two indexes: %+v, absent %v, %v; want good and amd kept, arm and the arm-only index absent", sp, absent, err)
	}
}

// TestImageSelectPlatforms: several platforms keep the index and those children, the others
// absent; a sparse image's SelectPlatform finds only what it holds; ForPlatforms picks the
// rule by the number of platforms.
func TestImageSelectPlatforms(t *testing.T) {
	idx, single := testImages(t)
	ps := func(s ...string) []layout.Platform {
		var out []layout.Platform
		for _, x := range s {
			p, _ := layout.ParsePlatform(x)
			out = append(out, p)
		}
		return out
	}
	got, err := idx.SelectPlatforms(ps("linux/amd64", "linux/arm64", "windows/amd64"))
	if err != nil || got.Manifest != idx.Manifest || len(got.Children) != 2 || got.Children[0] != idx.Children[0] || got.Children[1] != idx.Children[2] {
		t.Fatalf("SelectPlatforms = %+v, %v", got, err)
	}
	if len(got.Absent) != 1 || got.Absent[0].Digest != idx.Children[1].Digest || !got.Sparse() || got.Digest() != idx.Digest() {
		t.Errorf("absent %v, sparse %v, digest %s", got.Absent, got.Sparse(), got.Digest())
	}
	if all, err := idx.SelectPlatforms(ps("linux/amd64", "linux/arm", "linux/arm64")); err != nil || all.Sparse() || len(all.Children) != 3 {
		t.Errorf("every platform: %+v, %v", all, err)
	}
	if _, err := idx.SelectPlatforms(ps("windows/amd64", "linux/s390x")); !errors.Is(err, layout.ErrNotFound) || !strings.Contains(err.Error(), "windows/amd64 or linux/s390x") {
		t.Errorf("no platform: %v", err)
	}
	// The absent platform cannot be selected from the sparse image.
	if _, err := got.SelectPlatform(layout.Platform{OS: "linux", Architecture: "arm"}); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("SelectPlatform of an absent platform: %v", err)
	}
	if one, err := got.SelectPlatform(layout.Platform{OS: "linux", Architecture: "arm64"}); err != nil || one.Manifest != idx.Children[2] {
		t.Errorf("SelectPlatform of a present platform: %v, %v", one, err)
	}
	// Narrowing a sparse image again keeps the absent ones absent.
	if again, err := got.SelectPlatforms(ps("linux/amd64", "linux/ppc64le")); err != nil || len(again.Children) != 1 || len(again.Absent) != 2 {
		t.Errorf("SelectPlatforms of a sparse image: %+v, %v", again, err)
	}
	for n, want := range map[int]int{0: 3, 1: 0, 2: 2} { // children of the result
		got, err := idx.ForPlatforms(ps("linux/amd64", "linux/arm64")[:n])
		if err != nil || len(got.Children) != want {
			t.Errorf("ForPlatforms with %d platforms: %d children, %v; want %d", n, len(got.Children), err, want)
		}
	}
	if s, err := single.SelectPlatforms(ps("linux/arm64", "linux/amd64")); err != nil || s != single {
		t.Errorf("a single image: %v %v", s, err)
	}
}

// TestLoadSparse: an index one of whose children is not in the source loads as a sparse image.
func TestLoadSparse(t *testing.T) {
	amd := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA)
	arm := imageManifest(layout.MediaTypeDockerManifest, true, cfgArm, layerA)
	idx := indexManifest(layout.MediaTypeDockerManifestList, true,
		platDesc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd)), "linux", "amd64", ""),
		platDesc(layout.MediaTypeDockerManifest, sha(arm), int64(len(arm)), "linux", "arm", "v7"))
	src := &mapSource{manifests: map[digest.Digest][]byte{sha(amd): amd, sha(idx): idx}}
	img, err := layout.LoadImage(src, "r", sha(idx))
	if err != nil || len(img.Children) != 1 || len(img.Absent) != 1 || img.Absent[0].Digest != sha(arm) {
		t.Fatalf("LoadImage of a sparse index: %+v, %v", img, err)
	}
	if ms := img.Manifests(); len(ms) != 2 {
		t.Errorf("Manifests of a sparse image: %d, want the index and its present child", len(ms))
	}
}
