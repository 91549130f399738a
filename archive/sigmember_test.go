package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
)

// TestSignatureMembers: WriteOptions.Sign puts its signatures right after the catalog, as
// bale/signatures/<n>.sigstore.json, and records their sizes in the catalog's meta, outside
// the id (the same as unsigned). ReadSignatures returns them; the stream reader unpacks past
// them; OpenRandom lays the blobs out past them (its seek table must match, or it refuses);
// a volume set refuses Sign. A member longer than recorded, a recorded member missing, or a
// member the catalog does not record makes the bundle malformed (ErrBundle).
func TestSignatureMembers(t *testing.T) {
	ctx := context.Background()
	fx := bigFixture(t, 2*archive.FrameSize)
	sigs := [][]byte{[]byte(`{"first":"signature"}`), []byte(`{"second":"signature, longer"}`)}
	var signedID string
	opt := archive.WriteOptions{Sign: func(c *catalog.Catalog) ([][]byte, error) {
		signedID = c.Meta.ID // the id is known before anything is written
		return sigs, nil
	}}
	dir := t.TempDir()
	p, plain := filepath.Join(dir, "signed.tar.zst"), filepath.Join(dir, "plain.tar.zst")
	if err := archive.WriteFile(ctx, p, fx.catalog(t), fx.store, opt); err != nil {
		t.Fatal(err)
	}
	if err := archive.WriteFile(ctx, plain, fx.catalog(t), fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}

	c, got, err := archive.ReadSignatures(p)
	if err != nil {
		t.Fatal(err)
	}
	pc, none, err := archive.ReadSignatures(plain)
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.ID != pc.Meta.ID || c.Meta.ID != signedID || len(none) != 0 || len(pc.Meta.Signatures) != 0 {
		t.Errorf("ids signed %s, unsigned %s, at Sign %s; unsigned carries %d signatures", c.Meta.ID, pc.Meta.ID, signedID, len(none))
	}
	if !slices.Equal(c.Meta.Signatures, []int64{int64(len(sigs[0])), int64(len(sigs[1]))}) {
		t.Errorf("meta signatures %v", c.Meta.Signatures)
	}
	if len(got) != 2 || got[0].Name != "bale/signatures/1.sigstore.json" || got[1].Name != "bale/signatures/2.sigstore.json" ||
		!bytes.Equal(got[0].Raw, sigs[0]) || !bytes.Equal(got[1].Raw, sigs[1]) {
		t.Errorf("signature members %+v", got)
	}
	for path, want := range map[string]bool{p: true, plain: false} {
		if has, err := archive.CarriesSignatures(path); err != nil || has != want {
			t.Errorf("CarriesSignatures(%s) = %v, %v", path, has, err)
		}
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	members := readMembers(t, raw)
	if members[0].hdr.Name != archive.CatalogName || members[1].hdr.Name != archive.ListName || members[2].hdr.Name != got[0].Name || members[3].hdr.Name != got[1].Name {
		t.Fatalf("member order %s, %s, %s, %s", members[0].hdr.Name, members[1].hdr.Name, members[2].hdr.Name, members[3].hdr.Name)
	}

	// Stream: every blob and link, past the signatures.
	_, st := newTarget(t)
	if _, err := unpackBytes(raw, st); err != nil {
		t.Fatalf("unpack of the signed bundle: %v", err)
	}
	// Random access: every blob from the layout past the signatures.
	b, err := archive.OpenRandom(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for h, want := range fx.blobs {
		rs, _, err := b.OpenBlob(digest.Digest("sha256:" + h))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rs)
		rs.Close()
		if err != nil || !bytes.Equal(body, want) {
			t.Fatalf("blob %s from OpenRandom: %d bytes, %v", h, len(body), err)
		}
	}

	if err := archive.WriteFile(ctx, filepath.Join(dir, "split.tar.zst"), fx.catalog(t), fx.store,
		archive.WriteOptions{Sign: opt.Sign, VolumeSize: archive.MinVolumeSize}); err == nil {
		t.Error("a volume set written with Sign")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "split*")); len(m) != 0 {
		t.Errorf("a refused volume set left %v", m)
	}

	plainMembers := readMembers(t, mustReadFile(t, plain))
	for _, tc := range []struct {
		name    string
		members []member
	}{
		{"member longer than recorded", edited(members, func(ms []member) []member {
			ms[1].body = append(bytes.Clone(ms[1].body), ' ')
			return ms
		})},
		{"recorded member missing", edited(members, func(ms []member) []member { return slices.Delete(ms, 2, 3) })},
		{"member not recorded", edited(plainMembers, func(ms []member) []member {
			return slices.Insert(ms, 1, members[1])
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, st := newTarget(t)
			if _, err := unpackBytes(craft(t, tc.members), st); !errors.Is(err, archive.ErrBundle) {
				t.Errorf("unpack: %v, want ErrBundle", err)
			}
		})
	}
}

// edited is f applied to a copy of ms.
func edited(ms []member, f func([]member) []member) []member {
	return f(slices.Clone(ms))
}

func mustReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
