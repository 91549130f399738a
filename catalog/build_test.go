package catalog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// testStore builds registry storage from the fixture:
//
//	app:v1, app:latest   single Docker image (amd64, created 2021-04-14T12:00:00Z)
//	a/b/multi:1.0        manifest list of amd64 and arm/v7 (created 2022-06-01T10:20:30.987Z)
//	oci:1                OCI image whose config has no "created"
//	broken:1             image whose config blob is missing
func testStore(t *testing.T, f fixture) *registry.Store {
	t.Helper()
	s, err := registry.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []blob{f.cfgAmd, f.cfgArm, f.cfgOCI, f.base, f.app, f.armLayer, f.ociOnly, f.single, f.amd, f.arm, f.index, f.ociImage} {
		if err := s.WriteBlob(b.desc(), bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	link := func(repo string, b blob, tags ...string) {
		if err := s.LinkImage(repo, f.image(t, b)); err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if err := s.Tag(repo, tag, sha(b.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	link("app", f.single, "v1", "latest")
	link("a/b/multi", f.index, "1.0")
	link("oci", f.ociImage, "1")

	missingCfg := config(layout.MediaTypeDockerConfig, "linux", "amd64", "", "2030-01-01T00:00:00Z")
	broken := manifestJSON(layout.MediaTypeDockerManifest, missingCfg, f.base)
	if err := s.WriteBlob(broken.desc(), bytes.NewReader(broken.data)); err != nil {
		t.Fatal(err)
	}
	link("broken", broken, "1")
	return s
}

func ref(t *testing.T, s string) layout.Ref {
	t.Helper()
	r, err := layout.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFromSource(t *testing.T) {
	f := newFixture()
	s := testStore(t, f)
	c, err := catalog.FromSource(s, []layout.Ref{ref(t, "app:v1"), ref(t, "a/b/multi:1.0"), ref(t, "oci:1"), ref(t, "app@"+string(sha(f.single.data)))}, catalog.BuildOptions{})
	if err != nil {
		t.Fatalf("FromSource: %v", err)
	}
	// The newest config "created" (the arm child's), truncated to seconds, in UTC.
	if want := time.Date(2022, 6, 1, 10, 20, 30, 0, time.UTC); !c.Meta.Created.Equal(want) || c.Meta.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want %v UTC", c.Meta.Created, want)
	}
	if err := c.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	var got []string
	for _, e := range c.Entries() {
		got = append(got, e.Ref().String())
	}
	want := []string{"a/b/multi:1.0", "app:v1", "app@" + string(sha(f.single.data)), "oci:1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Entries = %q, want %q", got, want)
	}
	if p := c.Manifests[sha(f.single.data)].Platform; p == nil || p.String() != "linux/amd64" {
		t.Errorf("single image platform = %v, want linux/amd64 from its config", p)
	}
	if p := c.Manifests[sha(f.ociImage.data)].Platform; p == nil || p.String() != "linux/arm64/v8" {
		t.Errorf("oci image platform = %v, want linux/arm64/v8 from its config", p)
	}
	if p := c.Manifests[sha(f.arm.data)].Platform; p == nil || p.String() != "linux/arm/v7" {
		t.Errorf("arm child platform = %v, want linux/arm/v7", p)
	}
	if len(c.Blobs) != 12 {
		t.Errorf("%d blobs, want 12", len(c.Blobs))
	}

	t.Run("every tag when refs is empty", func(t *testing.T) {
		_, err := catalog.FromSource(s, nil, catalog.BuildOptions{})
		var ie *catalog.ImagesError
		if !errors.As(err, &ie) || len(ie.Images) != 1 || ie.Images[0].Ref.String() != "broken:1" {
			t.Fatalf("FromSource(all) = %v, want only broken:1 reported", err)
		}
	})
	t.Run("no created time", func(t *testing.T) {
		c, err := catalog.FromSource(s, []layout.Ref{ref(t, "oci:1")}, catalog.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Meta.Created.Equal(time.Unix(0, 0)) {
			t.Errorf("Created = %v, want the Unix epoch", c.Meta.Created)
		}
	})
	t.Run("empty source", func(t *testing.T) {
		empty, _ := registry.Create(t.TempDir())
		if _, err := catalog.FromSource(empty, nil, catalog.BuildOptions{}); !errors.Is(err, layout.ErrNotFound) {
			t.Errorf("FromSource(empty) = %v, want ErrNotFound", err)
		}
	})
}

func TestFromSourceReportsEveryMissingRef(t *testing.T) {
	f := newFixture()
	s := testStore(t, f)
	missing := []string{
		"app:nope",
		"no/such/repo:1",
		"app@" + string(sha([]byte("no such manifest"))),
		"oci@" + string(sha(f.single.data)), // exists, but not in this repository
		"broken:1",                          // its config blob is missing
	}
	refs := []layout.Ref{ref(t, "app:v1")}
	for _, m := range missing {
		refs = append(refs, ref(t, m))
	}
	refs = append(refs, ref(t, "a/b/multi:1.0"))
	c, err := catalog.FromSource(s, refs, catalog.BuildOptions{})
	if c != nil {
		t.Errorf("FromSource returned a catalog with the error")
	}
	var ie *catalog.ImagesError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v (%T), want *catalog.ImagesError", err, err)
	}
	if !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("error is not ErrNotFound: %v", err)
	}
	var got []string
	for _, im := range ie.Images {
		got = append(got, im.Ref.String())
		if !errors.Is(im.Err, layout.ErrNotFound) {
			t.Errorf("%s: %v is not ErrNotFound", im.Ref, im.Err)
		}
	}
	var want []string
	for _, m := range missing {
		want = append(want, ref(t, m).String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message does not name %s:\n%v", w, err)
		}
	}
}

func TestFromSourcePlatform(t *testing.T) {
	f := newFixture()
	s := testStore(t, f)
	refs := []layout.Ref{ref(t, "a/b/multi:1.0"), ref(t, "app:v1")}
	tests := []struct {
		platform string
		child    digest.Digest
		created  time.Time
	}{
		{"linux/amd64", sha(f.amd.data), time.Date(2021, 4, 14, 12, 0, 0, 0, time.UTC)},
		{"linux/arm", sha(f.arm.data), time.Date(2022, 6, 1, 10, 20, 30, 0, time.UTC)},
		{"linux/arm/v7", sha(f.arm.data), time.Date(2022, 6, 1, 10, 20, 30, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p, _ := layout.ParsePlatform(tt.platform)
			c, err := catalog.FromSource(s, refs, catalog.BuildOptions{Platforms: []layout.Platform{p}})
			if err != nil {
				t.Fatal(err)
			}
			r := c.Repos["a/b/multi"]
			if r.Tags["1.0"] != tt.child {
				t.Errorf("tag 1.0 -> %s, want the child %s", r.Tags["1.0"], tt.child)
			}
			if !reflect.DeepEqual(r.Manifests, []digest.Digest{tt.child}) {
				t.Errorf("a/b/multi manifests = %v, want only the child", r.Manifests)
			}
			if _, ok := c.Manifests[sha(f.index.data)]; ok {
				t.Error("the index is still in the catalog")
			}
			if rec := c.Manifests[tt.child]; rec == nil || rec.Platform == nil || !p.Matches(rec.Platform) {
				t.Errorf("child record = %+v", rec)
			}
			if c.Repos["app"].Tags["v1"] != sha(f.single.data) {
				t.Errorf("a single image changed under a platform option")
			}
			if !c.Meta.Created.Equal(tt.created) {
				t.Errorf("Created = %v, want %v (only the selected child counts)", c.Meta.Created, tt.created)
			}
			if err := c.Finish(); err != nil {
				t.Errorf("Finish: %v", err)
			}
		})
	}
	t.Run("no such platform", func(t *testing.T) {
		p := layout.Platform{OS: "linux", Architecture: "s390x"}
		_, err := catalog.FromSource(s, refs, catalog.BuildOptions{Platforms: []layout.Platform{p}})
		var ie *catalog.ImagesError
		if !errors.As(err, &ie) || len(ie.Images) != 1 || ie.Images[0].Ref.Repo != "a/b/multi" || !errors.Is(err, layout.ErrNotFound) {
			t.Errorf("err = %v, want one ImagesError for a/b/multi, ErrNotFound", err)
		}
	})
}

func TestVerifySource(t *testing.T) {
	f := newFixture()
	s := testStore(t, f)
	c, problems := catalog.VerifySource(s)
	if c == nil {
		t.Fatal("no catalog")
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "broken:1") {
		t.Errorf("problems = %v, want only broken:1", problems)
	}
	if _, ok := c.Repos["app"]; !ok {
		t.Error("the readable images are not in the catalog")
	}
	// Corrupt a layer: VerifySource hashes every blob.
	p, _ := s.Path(registry.BlobData{Digest: sha(f.app.data)})
	if err := overwrite(p, bytes.ToUpper(f.app.data)); err != nil {
		t.Fatal(err)
	}
	_, problems = catalog.VerifySource(s)
	found := false
	for _, pr := range problems {
		if errors.Is(pr, layout.ErrDigestMismatch) {
			found = true
		}
	}
	if !found {
		t.Errorf("problems = %v, want a digest mismatch for the corrupt layer", problems)
	}
}

// overwrite replaces the content of a read-only file.
func overwrite(p string, b []byte) error {
	if err := os.Chmod(p, 0o644); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// TestFromSourceSparse: several platforms keep the index with only their children: the index
// record lists the others as absent, the format is 2, the catalog validates and survives the
// database; without them it is format 1. Validate refuses a sparse index in a format 1
// catalog and an "absent" digest that is not a child.
func TestFromSourceSparse(t *testing.T) {
	f := newFixture()
	s := testStore(t, f)
	refs := []layout.Ref{ref(t, "a/b/multi:1.0"), ref(t, "app:v1")}
	ps := []layout.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "s390x"}}
	c, err := catalog.FromSource(s, refs, catalog.BuildOptions{Platforms: ps})
	if err != nil {
		t.Fatal(err)
	}
	idx := sha(f.index.data)
	r := c.Repos["a/b/multi"]
	rec := c.Manifests[idx]
	if r.Tags["1.0"] != idx || rec == nil || !reflect.DeepEqual(rec.Absent, []digest.Digest{sha(f.arm.data)}) {
		t.Fatalf("tag 1.0 -> %s, index record %+v", r.Tags["1.0"], rec)
	}
	if !reflect.DeepEqual(r.Manifests, sortedDigests(idx, sha(f.amd.data))) || c.Manifests[sha(f.arm.data)] != nil {
		t.Errorf("manifests %v: want the index and the amd64 child only", r.Manifests)
	}
	if c.Meta.Format != catalog.FormatCatalog {
		t.Errorf("format %d, want %d", c.Meta.Format, catalog.FormatCatalog)
	}
	if err := c.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	p := filepath.Join(t.TempDir(), "c.db")
	if err := catalog.Write(p, c); err != nil {
		t.Fatal(err)
	}
	back, err := catalog.Read(p)
	if err != nil || back.Meta.Format != catalog.FormatCatalog || !reflect.DeepEqual(back.Manifests[idx].Absent, rec.Absent) || back.Validate() != nil {
		t.Fatalf("read back: %v, %+v", err, back)
	}
	full, err := catalog.FromSource(s, refs, catalog.BuildOptions{})
	if err != nil || full.Meta.Format != catalog.FormatCatalog || len(full.Manifests[idx].Absent) != 0 {
		t.Errorf("without platforms: format %d, absent %v, %v", full.Meta.Format, full.Manifests[idx].Absent, err)
	}

	c.Meta.Format = 1
	if err := c.Validate(); !errors.Is(err, catalog.ErrInconsistent) {
		t.Errorf("a sparse index in a format 1 catalog: %v", err)
	}
	c.Meta.Format = 2
	rec.Absent = append(rec.Absent, sha([]byte("stranger")))
	if err := c.Validate(); !errors.Is(err, catalog.ErrInconsistent) {
		t.Errorf("an absent digest that is not a child: %v", err)
	}
}
