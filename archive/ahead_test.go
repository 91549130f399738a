package archive_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// TestCopyReadsFramesOnce: a bundle of 256 small images whose blobs spread over several frames
// (laid out by digest, so each image's manifest, config and layer lie in frames far apart),
// copied image by image with room for two decoded frames, decodes each frame about once per
// pass (the resolution, then the copy), not once per blob read: the source reads what all the
// images need ahead, in the order the bundle holds it. With room in memory for less than that,
// what is read ahead goes to a temporary file, still one pass, and nothing is left of it. The
// copy is whole and verifies.
func TestCopyReadsFramesOnce(t *testing.T) {
	ctx := context.Background()
	fx := newStoreFixture(t)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 256 {
		noise := make([]byte, 16<<10) // incompressible: 4 MiB of layers in all
		for j := range noise {
			noise[j] = byte(r.Uint32())
		}
		img := fx.image(t, true, jplatform{OS: "linux", Architecture: "amd64"}, "2024-01-01T00:00:00Z",
			makeLayer(t, "noise", string(noise)))
		fx.link(t, fmt.Sprintf("app%d", i%16), img, nil, fmt.Sprintf("v%d", i))
	}
	bundle := fx.bundle(t)
	path := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(path, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := archive.OpenRandom(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	frames := archive.BundleFrames(b)
	b.Close()
	if frames < 4 {
		t.Fatalf("the bundle has %d frames; the test needs its blobs spread over more than the cache holds", frames)
	}
	for _, tc := range []struct {
		name   string
		memory int64
		spill  bool
	}{
		{"in memory", 32 << 20, false},
		{"spilled", 256 << 10, true}, // a sixteenth of the layers
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			defer archive.SetAheadMemory(tc.memory)()
			defer archive.SetFrameBudget(2*archive.FrameSize, time.Hour)()
			src, err := archive.OpenSource(ctx, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			dst := registry.New(filepath.Join(t.TempDir(), "dst"))
			n, err := layout.CopyWith(ctx, src, dst, nil, layout.CopyOptions{})
			if err != nil || n != 256 {
				t.Fatalf("copied %d images, %v; want 256", n, err)
			}
			if spilt := archive.AheadSpilt(src); (spilt > 0) != tc.spill {
				t.Errorf("%d bytes read ahead went to the spill file; want some: %v", spilt, tc.spill)
			}
			_, _, _, decodes := archive.FrameStats()
			t.Logf("%d frames, %d decoded for 256 images", frames, decodes)
			if decodes > 2*frames+2 {
				t.Errorf("%d frames were decoded for a bundle of %d: a frame per blob read, not per pass", decodes, frames)
			}
			if _, errs := catalog.VerifySource(dst); len(errs) > 0 {
				t.Errorf("the copy does not verify: %v", errs)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("reading ahead left %s in TMPDIR", left[0].Name())
			}
		})
	}
}
