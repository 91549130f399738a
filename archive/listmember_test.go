package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
)

// format4 turns the members of a format-5 bundle into those of the same bundle in format 4:
// the catalog without meta/list, and without the list member.
func format4(t testing.TB, ms []member) []member {
	t.Helper()
	if len(ms) < 2 || ms[0].hdr.Name != archive.CatalogName || ms[1].hdr.Name != archive.ListName {
		t.Fatalf("not a format-5 bundle: members %s, %s", ms[0].hdr.Name, ms[1].hdr.Name)
	}
	c := catalogOfMember(t, ms[0])
	if c.Meta.Format != 5 || c.Meta.List == nil {
		t.Fatalf("catalog format %d, list %v", c.Meta.Format, c.Meta.List)
	}
	c.Meta.Format, c.Meta.List = 4, nil
	h := *ms[0].hdr
	body := catalogBytes(t, c)
	h.Size = int64(len(body))
	return append([]member{{hdr: &h, body: body}}, ms[2:]...)
}

// catalogOfMember reads the catalog member m.
func catalogOfMember(t testing.TB, m member) *catalog.Catalog {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(p, m.body, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestListMember: a bundle carries, right after its catalog, the list member that
// listing.Render makes of the catalog read back from it, recorded in meta/list (size and
// sha256); the catalog says format 5. Every reader checks it.
func TestListMember(t *testing.T) {
	fx := newFixture(t)
	ms := readMembers(t, fx.bundle(t))
	if len(ms) < 2 || ms[1].hdr.Name != archive.ListName {
		t.Fatalf("member 1 is %s, want %s", ms[1].hdr.Name, archive.ListName)
	}
	c := catalogOfMember(t, ms[0])
	want, err := listing.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Format != 5 || c.Meta.List == nil || !bytes.Equal(ms[1].body, want) ||
		c.Meta.List.Size != int64(len(want)) || c.Meta.List.Digest != digest.FromBytes(want) {
		t.Fatalf("format %d, meta/list %+v; member:\n%s\nrendered:\n%s", c.Meta.Format, c.Meta.List, ms[1].body, want)
	}
	lines := strings.Split(strings.TrimSuffix(string(ms[1].body), "\n"), "\n")
	h, err := listing.ParseHeader([]byte(lines[0]))
	if err != nil || h.ID != c.Meta.ID || h.Counts.Images != len(lines)-1 || h.Counts.Images != len(c.Entries()) {
		t.Errorf("header %+v (%v), %d rows, %d entries", h, err, len(lines)-1, len(c.Entries()))
	}
}

// TestListMemberDamaged: a list member with a flipped byte, one forged (a row edited and the
// member rendered again around it, meta/list left as it was), and one that is not where the
// catalog records it are refused by Unpack and VerifyFile (ErrBundle), nothing written; a
// member that a lying writer recorded in meta/list (the catalog rewritten to match it) is read,
// but VerifyFile renders the member again from the catalog and refuses it.
func TestListMemberDamaged(t *testing.T) {
	fx := newFixture(t)
	genuine := readMembers(t, fx.bundle(t))
	edit := func(f func(ms []member) []member) []byte {
		ms := make([]member, len(genuine))
		for i, m := range genuine {
			h := *m.hdr
			ms[i] = member{hdr: &h, body: bytes.Clone(m.body)}
		}
		return craft(t, f(ms))
	}
	forge := func(ms []member) []member {
		b := bytes.Replace(ms[1].body, []byte(`"tag":"`), []byte(`"tag":"x`), 1)
		ms[1].body, ms[1].hdr.Size = b, int64(len(b))
		return ms
	}
	for name, bundle := range map[string][]byte{
		"flipped byte": edit(func(ms []member) []member { ms[1].body[len(ms[1].body)/2] ^= 0x01; return ms }),
		"forged":       edit(forge),
		"missing":      edit(func(ms []member) []member { return remove(ms, 1) }),
		"moved":        edit(func(ms []member) []member { l := ms[1]; return insert(remove(ms, 1), 2, l) }),
	} {
		_, st := newTarget(t)
		if _, err := unpackBytes(bundle, st); !errors.Is(err, archive.ErrBundle) {
			t.Errorf("%s: Unpack: %v, want ErrBundle", name, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(st.Root(), "docker/registry/v2/repositories")); len(ents) != 0 {
			t.Errorf("%s: Unpack wrote %d repositories", name, len(ents))
		}
		p := filepath.Join(t.TempDir(), "b.tar.zst")
		if err := os.WriteFile(p, bundle, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, problems := archive.VerifyFile(context.Background(), p); len(problems) == 0 || !errors.Is(problems[0], archive.ErrBundle) {
			t.Errorf("%s: VerifyFile: %v, want ErrBundle", name, problems)
		}
	}

	// A lying writer: the forged member recorded in meta/list.
	lie := edit(func(ms []member) []member {
		ms = forge(ms)
		c := catalogOfMember(t, ms[0])
		c.Meta.List = &catalog.ListMember{Size: int64(len(ms[1].body)), Digest: digest.FromBytes(ms[1].body)}
		ms[0].body = catalogBytes(t, c)
		ms[0].hdr.Size = int64(len(ms[0].body))
		return ms
	})
	_, st := newTarget(t)
	if _, err := unpackBytes(lie, st); err != nil {
		t.Fatalf("Unpack of a bundle whose meta/list records its forged member: %v", err)
	}
	p := filepath.Join(t.TempDir(), "lie.tar.zst")
	if err := os.WriteFile(p, lie, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, problems := archive.VerifyFile(context.Background(), p); len(problems) != 1 || !errors.Is(problems[0], archive.ErrBundle) ||
		!strings.Contains(problems[0].Error(), "not what the catalog renders") {
		t.Errorf("VerifyFile of a lying writer's bundle: %v", problems)
	}
}

// TestOpenListHead: the list member of a bundle bale wrote is found from the seek table, in a
// file and in a volume set, with its header, size and sha256 as the catalog records them, and
// its rows read again one at a time; a bundle without a seek table (one stream), or framed
// without a list member (format 3), is ErrNoListHead (the caller reads the catalog).
func TestOpenListHead(t *testing.T) {
	fx := bigFixture(t, 700<<10)
	dir := t.TempDir()
	file := filepath.Join(dir, "one.tar.zst")
	if err := archive.WriteFile(context.Background(), file, fx.catalog(t), fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	base, _ := packVolumes(t, fx, dir, 128<<10)
	for _, p := range []string{file, base + ".001"} {
		c, err := archive.ReadCatalog(p)
		if err != nil {
			t.Fatal(err)
		}
		lh, err := archive.OpenListHead(p)
		if err != nil {
			t.Fatalf("%s: OpenListHead: %v", p, err)
		}
		n := 0
		err = lh.Rows(func(im listing.Image) error { n++; return nil })
		lh.Close()
		if err != nil || lh.Header.ID != c.Meta.ID || lh.Size != c.Meta.List.Size || lh.Digest != c.Meta.List.Digest ||
			n != len(c.Entries()) || n != lh.Header.Counts.Images || len(lh.Header.Volumes) != len(c.Meta.Volumes) {
			t.Errorf("%s: header %+v, %d bytes, %s, %d rows (%v); catalog %s, meta/list %+v, %d entries, %d volumes",
				p, lh.Header, lh.Size, lh.Digest, n, err, c.Meta.ID, c.Meta.List, len(c.Entries()), len(c.Meta.Volumes))
		}
	}
	// A catalog of format 3 is written as it is, framed, without a list member.
	old := fx.catalog(t)
	old.Meta.Format = 3
	var framed bytes.Buffer
	if err := archive.Write(context.Background(), &framed, old, fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ms := readMembers(t, framed.Bytes()); ms[1].hdr.Name == archive.ListName || seekTableSize(t, framed.Bytes()) == 0 {
		t.Fatalf("the format-3 bundle: member 1 %s, seek table %d bytes", ms[1].hdr.Name, seekTableSize(t, framed.Bytes()))
	}
	for name, b := range map[string][]byte{"one stream": craft(t, readMembers(t, fx.bundle(t))), "format 3, framed": framed.Bytes()} {
		p := filepath.Join(dir, "x.tar.zst")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := archive.OpenListHead(p); !errors.Is(err, archive.ErrNoListHead) {
			t.Errorf("%s: OpenListHead: %v, want ErrNoListHead", name, err)
		}
	}
}
