package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive"
)

// packVolumes writes fx's bundle as volumes of size bytes at dir/b.tar.zst and returns the
// base path and the volume files in order.
func packVolumes(t *testing.T, fx *fixture, dir string, size int64) (string, []string) {
	t.Helper()
	base := filepath.Join(dir, "b.tar.zst")
	if err := archive.WriteFile(context.Background(), base, fx.catalog(t), fx.store, archive.WriteOptions{VolumeSize: size}); err != nil {
		t.Fatal(err)
	}
	vols, _ := filepath.Glob(base + ".*")
	return base, vols
}

// TestVolumes: a bundle split into volumes is the same tar stream as the single file (the
// concatenation decodes to it), lists its data volumes in the catalog, and unpacks and
// verifies given its first volume or its bare name.
func TestVolumes(t *testing.T) {
	fx := bigFixture(t, 700<<10)
	dir := t.TempDir()
	base, vols := packVolumes(t, fx, dir, 128<<10)
	if len(vols) < 5 {
		t.Fatalf("%d volumes for a %d-byte bundle at 128 KiB: %v", len(vols), fx.totalBytes(), vols)
	}
	var cat []byte
	for i, v := range vols {
		if want := archive.VolumeName(base, i+1); v != want {
			t.Fatalf("volume %d is %s, want %s", i+1, v, want)
		}
		b, _ := os.ReadFile(v)
		if i > 0 && i < len(vols)-1 && len(b) > 128<<10 {
			t.Errorf("%s holds %d bytes, more than the volume size", v, len(b))
		}
		cat = append(cat, b...)
	}
	// The same members after the catalog and the list member, which differ only by the
	// volumes they list.
	got, want := readMembers(t, cat), readMembers(t, fx.bundle(t))
	if len(got) != len(want) {
		t.Fatalf("%d members in the volumes, %d in the single file", len(got), len(want))
	}
	if got[1].hdr.Name != archive.ListName || !bytes.Contains(got[1].body, []byte(`"volumes":[{"name":"`)) {
		t.Errorf("member 1 is %s, want the list member naming the volumes", got[1].hdr.Name)
	}
	for i := 2; i < len(got); i++ {
		if got[i].hdr.Name != want[i].hdr.Name || !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("member %d differs: %s / %s", i, got[i].hdr.Name, want[i].hdr.Name)
		}
	}
	if got[0].hdr.Name != archive.CatalogName {
		t.Errorf("the first volume starts with %s", got[0].hdr.Name)
	}
	c, err := archive.ReadCatalog(vols[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Meta.Volumes) != len(vols)-2 || c.Meta.Volumes[0].Name != filepath.Base(vols[1]) {
		t.Errorf("catalog volumes %+v, files %v", c.Meta.Volumes, vols)
	}
	for _, p := range []string{vols[0], base} {
		_, dst := newTarget(t)
		res, err := archive.UnpackFiles(context.Background(), []string{p}, dst, archive.UnpackOptions{NoSync: true})
		if err != nil || res.BlobsWritten != len(fx.blobs) {
			t.Fatalf("UnpackFiles(%s): %v %+v", p, err, res)
		}
		checkTagsComplete(t, dst.Root())
		if _, problems := archive.VerifyFile(context.Background(), p); len(problems) != 0 {
			t.Errorf("VerifyFile(%s): %v", p, problems)
		}
	}
	// Packed again with larger volumes, the extra old volumes go.
	_, fewer := packVolumes(t, fx, dir, 512<<10)
	if len(fewer) >= len(vols) {
		t.Errorf("repacking with larger volumes left %v", fewer)
	}
	if _, err := os.Stat(vols[len(vols)-1]); len(fewer) < len(vols) && err == nil {
		t.Errorf("%s of the earlier pack is still there", vols[len(vols)-1])
	}
}

// TestVolumesDamaged: a missing or damaged data volume is named before anything is written;
// without the last volume (the seek table) the bundle still unpacks, streamed.
func TestVolumesDamaged(t *testing.T) {
	fx := bigFixture(t, 700<<10)
	cases := map[string]func(vols []string) (string, string){
		"missing": func(vols []string) (string, string) {
			os.Remove(vols[2])
			return filepath.Base(vols[2]), "no such file"
		},
		"flipped": func(vols []string) (string, string) {
			b, _ := os.ReadFile(vols[1])
			b[len(b)/2] ^= 1
			os.WriteFile(vols[1], b, 0o644)
			return filepath.Base(vols[1]), "damaged"
		},
		"truncated": func(vols []string) (string, string) {
			os.Truncate(vols[3], 100)
			return filepath.Base(vols[3]), "truncated"
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			_, vols := packVolumes(t, fx, t.TempDir(), 128<<10)
			vol, what := damage(vols)
			parent, dst := newTarget(t)
			os.RemoveAll(dst.Root())
			_, err := archive.UnpackFiles(context.Background(), []string{vols[0]}, dst, archive.UnpackOptions{})
			if !errors.Is(err, archive.ErrVolume) || !strings.Contains(err.Error(), vol) || !strings.Contains(err.Error(), what) {
				t.Fatalf("UnpackFiles: %v\nwant ErrVolume naming %s (%s)", err, vol, what)
			}
			if _, err := os.Stat(dst.Root()); !os.IsNotExist(err) {
				t.Errorf("the target was created before the volumes were checked")
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("written beside the target: %v", ents)
			}
			if _, problems := archive.VerifyFile(context.Background(), vols[0]); len(problems) == 0 || !errors.Is(problems[0], archive.ErrVolume) {
				t.Errorf("VerifyFile: %v", problems)
			}
		})
	}
	t.Run("no seek table volume", func(t *testing.T) {
		_, vols := packVolumes(t, fx, t.TempDir(), 128<<10)
		os.Remove(vols[len(vols)-1])
		_, dst := newTarget(t)
		if _, err := archive.UnpackFiles(context.Background(), []string{vols[0]}, dst, archive.UnpackOptions{NoSync: true}); err != nil {
			t.Fatalf("UnpackFiles without the seek table volume: %v", err)
		}
		checkTagsComplete(t, dst.Root())
	})
}
