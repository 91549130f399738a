package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// genuine is the fixture's bundle taken apart: members[0] is the catalog, then nBlobs blobs,
// then the repository links, the first tag link at firstTag.
type genuine struct {
	fx       *fixture
	bundle   []byte
	members  []member
	nBlobs   int
	firstTag int
}

func newGenuine(t testing.TB) *genuine {
	t.Helper()
	fx := newFixture(t)
	// A format-4 bundle: every member after the catalog is a blob or a link (the list member
	// of format 5 has its own cases, listmember_test.go).
	g := &genuine{fx: fx}
	g.members = format4(t, readMembers(t, fx.bundle(t)))
	g.bundle = craft(t, g.members)
	g.nBlobs = len(fx.blobs)
	for i, m := range g.members {
		if i > 0 && isTagLink(m.hdr.Name) {
			g.firstTag = i
			break
		}
	}
	if g.firstTag <= 1+g.nBlobs {
		t.Fatalf("unexpected genuine layout: %d blobs, first tag link at %d", g.nBlobs, g.firstTag)
	}
	return g
}

// ms returns a copy of the genuine members, headers and bodies included, safe to edit.
func (g *genuine) ms() []member {
	out := make([]member, len(g.members))
	for i, m := range g.members {
		h := *m.hdr
		out[i] = member{hdr: &h, body: bytes.Clone(m.body)}
	}
	return out
}

func (g *genuine) blob(i int) member { return g.ms()[1+i] }

func (g *genuine) firstLink() member { return g.ms()[1+g.nBlobs] }

func insert(ms []member, i int, m ...member) []member {
	return append(ms[:i:i], append(m, ms[i:]...)...)
}

func remove(ms []member, i int) []member { return append(ms[:i:i], ms[i+1:]...) }

// catalogBytes writes c as a catalog file and returns its bytes.
func catalogBytes(t testing.TB, c *catalog.Catalog) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.db")
	if err := catalog.Write(p, c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// safeUnpack unpacks bundle into st, turning a panic into an error the test reports.
func safeUnpack(bundle []byte, st *registry.Store) (res *archive.UnpackResult, panicked string, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	res, err = unpackBytes(bundle, st)
	return res, "", err
}

// safeUnpackFile is safeUnpack through a file: UnpackFiles, with the parallel frame reader
// when the bundle ends with a seek table.
func safeUnpackFile(t *testing.T, bundle []byte, st *registry.Store) (res *archive.UnpackResult, panicked string, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
		}
	}()
	p := filepath.Join(t.TempDir(), "bundle.tar.zst")
	if err := os.WriteFile(p, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = archive.UnpackFiles(context.Background(), []string{p}, st, archive.UnpackOptions{})
	return res, "", err
}

// hostileCase is a bundle Unpack must refuse. want lists the acceptable sentinels (errors.Is
// any of them); mention must appear in the error when set.
type hostileCase struct {
	name    string
	bundle  func(t *testing.T, g *genuine) []byte
	want    []error
	mention func(g *genuine) string
}

var (
	wantBundle   = []error{archive.ErrBundle}
	wantMismatch = []error{layout.ErrDigestMismatch}
	wantDamage   = []error{archive.ErrBundle, layout.ErrDigestMismatch}
	wantCatalog  = []error{archive.ErrBundle, catalog.ErrFormat}
	wantBadCat   = []error{archive.ErrBundle, catalog.ErrInconsistent, layout.ErrInvalid}
)

func literal(s string) func(*genuine) string { return func(*genuine) string { return s } }

// withMember inserts m right after the catalog of the genuine bundle.
func withMember(m member) func(t *testing.T, g *genuine) []byte {
	return func(t *testing.T, g *genuine) []byte { return craft(t, insert(g.ms(), 1, m)) }
}

// replaceBlob0 replaces the first blob member with what edit makes of it.
func replaceBlob0(edit func(m member) member) func(t *testing.T, g *genuine) []byte {
	return func(t *testing.T, g *genuine) []byte {
		ms := g.ms()
		ms[1] = edit(ms[1])
		return craft(t, ms)
	}
}

func blob0Name(g *genuine) string { return g.blob(0).hdr.Name }

func blob0Hex(g *genuine) string { return filepath.Base(filepath.Dir(g.blob(0).hdr.Name)) }

func special(typeflag byte, linkname string) func(m member) member {
	return func(m member) member {
		m.hdr.Typeflag, m.hdr.Linkname, m.hdr.Size, m.body = typeflag, linkname, 0, nil
		if typeflag == tar.TypeChar {
			m.hdr.Devmajor, m.hdr.Devminor = 1, 3
		}
		return m
	}
}

func hostileCases(t testing.TB) []hostileCase {
	evil := []byte("evil\n")
	randomBytes := func(n int, seed uint64) []byte {
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(seed, seed))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	stray := randomBytes(300, 7)
	return []hostileCase{
		// Names.
		{name: "dotdot", bundle: withMember(reg("../evil", evil)), want: wantBundle, mention: literal("../evil")},
		{name: "absolute", bundle: withMember(reg("/abs/evil", evil)), want: wantBundle, mention: literal("/abs/evil")},
		{name: "dotdot below prefix", bundle: withMember(reg("docker/registry/v2/../../evil", evil)), want: wantBundle,
			mention: literal("docker/registry/v2/../../evil")},
		{name: "dot slash prefix", bundle: replaceBlob0(func(m member) member { m.hdr.Name = "./" + m.hdr.Name; return m }),
			want: wantBundle, mention: func(g *genuine) string { return "./" + blob0Name(g) }},
		{name: "double slash", bundle: replaceBlob0(func(m member) member {
			m.hdr.Name = strings.Replace(m.hdr.Name, "/blobs/", "//blobs/", 1)
			return m
		}), want: wantBundle, mention: func(g *genuine) string { return strings.Replace(blob0Name(g), "/blobs/", "//blobs/", 1) }},
		{name: "wrong fan-out", bundle: replaceBlob0(func(m member) member {
			h := filepath.Base(filepath.Dir(m.hdr.Name))
			m.hdr.Name = prefix + "blobs/sha256/xx/" + h + "/data"
			return m
		}), want: wantBundle, mention: func(g *genuine) string { return prefix + "blobs/sha256/xx/" + blob0Hex(g) + "/data" }},
		{name: "upper-case hex", bundle: replaceBlob0(func(m member) member { m.hdr.Name = strings.ToUpper(m.hdr.Name); return m }),
			want: wantBundle, mention: func(g *genuine) string { return strings.ToUpper(blob0Name(g)) }},
		{name: "unknown path", bundle: withMember(reg(prefix+"repositories/x/_uploads/u/data", evil)), want: wantBundle,
			mention: literal(prefix + "repositories/x/_uploads/u/data")},
		{name: "very long name", bundle: withMember(reg(prefix+"repositories/"+strings.Repeat("a/", 2100)+"_layers/sha256/"+strings.Repeat("0", 64)+"/link", evil)),
			want: wantBundle, mention: literal(strings.Repeat("a/", 100))},
		{name: "NUL in ustar name", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 1, member{raw: rawUSTAR("../evil\x00"+blob0Name(g), tar.TypeReg, evil)}))
		}, want: wantBundle, mention: literal("../evil")},
		{name: "NUL in GNU long name", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 1, member{raw: rawGNULongName("../../evil\x00"+blob0Name(g), evil)}))
		}, want: wantBundle, mention: literal("../../evil")},
		{name: "NUL in PAX path", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 1, member{raw: rawPAXPath(blob0Name(g)+"\x00/../../../evil", evil)}))
		}, want: wantBundle},
		// Member types.
		{name: "symlink", bundle: replaceBlob0(special(tar.TypeSymlink, "../../../../../../../../etc/passwd")), want: wantBundle, mention: blob0Name},
		{name: "hard link", bundle: replaceBlob0(special(tar.TypeLink, archive.CatalogName)), want: wantBundle, mention: blob0Name},
		{name: "directory", bundle: withMember(member{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: prefix + "blobs/sha256/", Mode: 0o755, ModTime: wantCreated}}),
			want: wantBundle, mention: literal(prefix + "blobs/sha256/")},
		{name: "fifo", bundle: replaceBlob0(special(tar.TypeFifo, "")), want: wantBundle, mention: blob0Name},
		{name: "char device", bundle: replaceBlob0(special(tar.TypeChar, "")), want: wantBundle, mention: blob0Name},
		// Blobs against the catalog.
		{name: "duplicate blob", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 2, g.blob(0)))
		}, want: wantBundle, mention: blob0Name},
		{name: "blob size differs from catalog", bundle: replaceBlob0(func(m member) member {
			m.body = append(m.body, 'x')
			return m
		}), want: wantBundle, mention: blob0Name},
		{name: "blob shorter than catalog", bundle: replaceBlob0(func(m member) member {
			m.body = m.body[:len(m.body)-1]
			return m
		}), want: wantBundle, mention: blob0Name},
		{name: "blob bytes do not match digest", bundle: replaceBlob0(func(m member) member {
			m.body[len(m.body)/2] ^= 0x01
			return m
		}), want: wantMismatch, mention: blob0Hex},
		{name: "blob not in catalog", bundle: withMember(reg(blobName(hexOf(stray)), stray)), want: wantBundle,
			mention: literal(blobName(hexOf(stray)))},
		{name: "catalog blob missing", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, remove(g.ms(), 1))
		}, want: wantBundle, mention: blob0Hex},
		{name: "blob after link", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			last := ms[g.nBlobs]
			ms = remove(ms, g.nBlobs)
			return craft(t, insert(ms, g.nBlobs+1, last))
		}, want: wantBundle, mention: func(g *genuine) string { return g.blob(g.nBlobs - 1).hdr.Name }},
		// Links against the catalog.
		{name: "link content differs", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			ms[1+g.nBlobs].body = []byte("sha256:" + strings.Repeat("a", 64))
			return craft(t, ms)
		}, want: wantBundle, mention: func(g *genuine) string { return g.firstLink().hdr.Name }},
		{name: "link with trailing newline", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			ms[1+g.nBlobs].body = append(ms[1+g.nBlobs].body, '\n')
			return craft(t, ms)
		}, want: wantBundle, mention: func(g *genuine) string { return g.firstLink().hdr.Name }},
		{name: "tag link not in catalog", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			return craft(t, append(ms, reg(tagCurrentName("library/alpine", "evil"), ms[len(ms)-1].body)))
		}, want: wantBundle, mention: literal(tagCurrentName("library/alpine", "evil"))},
		{name: "duplicate tag link", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			return craft(t, append(ms, ms[len(ms)-1]))
		}, want: wantBundle, mention: func(g *genuine) string { return g.members[len(g.members)-1].hdr.Name }},
		{name: "duplicate repository link", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 2+g.nBlobs, g.firstLink()))
		}, want: wantBundle, mention: func(g *genuine) string { return g.firstLink().hdr.Name }},
		{name: "tag current link missing", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			return craft(t, ms[:len(ms)-1])
		}, want: wantBundle, mention: func(g *genuine) string { return g.members[len(g.members)-1].hdr.Name }},
		{name: "repository link after tag link", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			repoLink := ms[g.firstTag-1]
			ms = remove(ms, g.firstTag-1)
			return craft(t, insert(ms, g.firstTag, repoLink))
		}, want: wantBundle, mention: func(g *genuine) string { return g.members[g.firstTag-1].hdr.Name }},
		// The catalog.
		{name: "first member not the catalog", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			ms[0], ms[1] = ms[1], ms[0]
			return craft(t, ms)
		}, want: wantBundle, mention: blob0Name},
		{name: "missing catalog", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, g.ms()[1:])
		}, want: wantBundle, mention: blob0Name},
		{name: "catalog twice", bundle: func(t *testing.T, g *genuine) []byte {
			return craft(t, insert(g.ms(), 1, g.ms()[0]))
		}, want: wantBundle, mention: literal(archive.CatalogName)},
		{name: "catalog not bbolt", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			ms[0].body = randomBytes(len(ms[0].body), 3)
			return craft(t, ms)
		}, want: wantCatalog, mention: literal("catalog")},
		{name: "catalog tiny", bundle: func(t *testing.T, g *genuine) []byte {
			ms := g.ms()
			ms[0].body = []byte("not a database")
			return craft(t, ms)
		}, want: wantCatalog, mention: literal("catalog")},
		{name: "catalog size over the limit", bundle: func(t *testing.T, g *genuine) []byte {
			blk := rawUSTAR(archive.CatalogName, tar.TypeReg, nil)
			copy(blk[124:136], fmt.Sprintf("%011o\x00", archive.MaxCatalogSize+1))
			copy(blk[148:156], "        ")
			sum := 0
			for _, c := range blk {
				sum += int(c)
			}
			copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
			return zstdBytes(t, append(blk, make([]byte, 4096)...))
		}, want: wantBundle, mention: literal(fmt.Sprint(archive.MaxCatalogSize + 1))},
		{name: "catalog cut short", bundle: func(t *testing.T, g *genuine) []byte {
			// The tar stream ends in the middle of the catalog's content.
			tb := plainTar(t, g.ms())
			return zstdBytes(t, tb[:512+len(g.members[0].body)/2])
		}, want: wantBundle, mention: literal("catalog")},
		{name: "catalog with corrupt bbolt pages", bundle: func(t *testing.T, g *genuine) []byte {
			// Pages 0 and 1 are bbolt's meta pages (checksummed); mangle the type flags of
			// every other page, as a damaged or hostile catalog would.
			ms := g.ms()
			cat := ms[0].body
			for p := 2 * 4096; p+10 <= len(cat); p += 4096 {
				cat[p+8], cat[p+9] = 0xfd, 0xff
			}
			return craft(t, ms)
		}, want: wantCatalog, mention: literal("catalog")},
		{name: "catalog id does not match content", bundle: func(t *testing.T, g *genuine) []byte {
			c := g.fx.catalog(t)
			c.Meta.ID = "sha256:" + strings.Repeat("0", 64)
			ms := g.ms()
			ms[0].body = catalogBytes(t, c)
			return craft(t, ms)
		}, want: wantBundle, mention: literal("sha256:" + strings.Repeat("0", 64))},
		{name: "catalog repository name escapes", bundle: func(t *testing.T, g *genuine) []byte {
			c := g.fx.catalog(t)
			c.Repos["../../evil"] = c.Repos["multi"]
			delete(c.Repos, "multi")
			c.Meta.ID = c.ComputeID()
			ms := g.ms()
			ms[0].body = catalogBytes(t, c)
			return craft(t, ms)
		}, want: wantBadCat, mention: literal("../../evil")},
		{name: "catalog tag name escapes", bundle: func(t *testing.T, g *genuine) []byte {
			c := g.fx.catalog(t)
			r := c.Repos["multi"]
			r.Tags["../../x"] = r.Tags["2.0"]
			c.Meta.ID = c.ComputeID()
			ms := g.ms()
			ms[0].body = catalogBytes(t, c)
			return craft(t, ms)
		}, want: wantBadCat, mention: literal("../../x")},
		lie("manifest names a layer the catalog lacks", "extra layer", wantBundle),
		lie("manifest layer size differs from catalog", "layer size", wantBundle),
		lie("manifest media type differs from catalog", "media type", wantBundle),
		lie("index names a child the catalog lacks", "index extra child", wantBundle),
		lie("catalog manifest is not a manifest", "not a manifest", []error{archive.ErrBundle, layout.ErrInvalid}),
		// The container.
		{name: "empty file", bundle: func(*testing.T, *genuine) []byte { return nil }, want: wantBundle},
		{name: "plain tar", bundle: func(t *testing.T, g *genuine) []byte { return plainTar(t, g.ms()) }, want: wantBundle},
		{name: "zstd of nothing", bundle: func(t *testing.T, g *genuine) []byte { return zstdBytes(t, nil) }, want: wantBundle},
		{name: "random bytes", bundle: func(*testing.T, *genuine) []byte { return randomBytes(4096, 9) }, want: wantBundle},
	}
}

// lie is a hostile case built by lyingBundle; the error must name the lying manifest.
func lie(name, variant string, want []error) hostileCase {
	return hostileCase{
		name: name,
		bundle: func(t *testing.T, _ *genuine) []byte {
			b, _ := lyingBundle(t, variant)
			return b
		},
		want: want,
		mention: func(*genuine) string {
			_, h := lyingBundle(nil, variant) // deterministic: the same manifest every time
			return h
		},
	}
}

// lyingBundle is a well-formed bundle whose catalog is self-consistent but lies about one
// manifest, whose hex digest it returns. With variant
//
//	"extra layer"        the manifest names a config and two layers, the catalog records the
//	                     config and the first layer: the second is nowhere in the bundle;
//	"layer size"         the manifest gives a layer one byte more than it has;
//	"media type"         the manifest is OCI, the catalog says Docker schema2;
//	"index extra child"  an index names two children, the catalog records one: the other is
//	                     nowhere in the bundle;
//	"not a manifest"     the catalog records as a manifest a blob that is not one.
//
// Unpacking any of them as the catalog says would tag content that is incomplete or other
// than recorded. t may be nil when only the digest is wanted.
func lyingBundle(t *testing.T, variant string) ([]byte, string) {
	var tb testing.TB = t
	if t == nil {
		tb = &quietTB{}
	}
	fx := &fixture{blobs: map[string][]byte{}, links: map[string]string{}}
	if t != nil {
		fx = newStoreFixture(t)
	}
	put := func(b []byte) string {
		if t == nil {
			return hexOf(b)
		}
		return fx.put(t, b)
	}
	l1, ghost := makeLayer(tb, "real", "real layer\n"), makeLayer(tb, "ghost", "not in the bundle\n")
	cfg := jconfig{Architecture: "amd64", OS: "linux", Created: "2023-01-01T00:00:00Z"}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{l1.diffID}
	cb := mustJSON(tb, cfg)
	ch, lh := put(cb), put(l1.gz)
	cd := jdesc{MediaType: mtDockerConfig, Digest: "sha256:" + ch, Size: len(cb)}
	ld := jdesc{MediaType: mtDockerLayer, Digest: "sha256:" + lh, Size: len(l1.gz)}
	gd := jdesc{MediaType: mtDockerLayer, Digest: "sha256:" + hexOf(ghost.gz), Size: len(ghost.gz)}
	toDesc := func(d jdesc) layout.Descriptor {
		return layout.Descriptor{MediaType: d.MediaType, Digest: digest.Digest(d.Digest), Size: int64(d.Size)}
	}
	honest := mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtDockerManifest, Config: &cd, Layers: []jdesc{ld}})
	// truth is what the catalog records: a Docker manifest of the config and the first layer.
	truth := &layout.Manifest{MediaType: mtDockerManifest, Config: new(toDesc(cd)), Layers: []layout.Descriptor{toDesc(ld)}}
	var raw []byte
	switch variant {
	case "extra layer":
		raw = mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtDockerManifest, Config: &cd, Layers: []jdesc{ld, gd}})
	case "layer size":
		big := ld
		big.Size++
		raw = mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtDockerManifest, Config: &cd, Layers: []jdesc{big}})
	case "media type":
		raw = mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtOCIManifest, Config: &cd, Layers: []jdesc{ld}})
	case "not a manifest":
		raw = []byte("this is not a manifest\n")
	case "index extra child":
		raw = honest
	default:
		panic("unknown variant " + variant)
	}
	mh := put(raw)
	truth.Digest, truth.Raw = digest.Digest("sha256:"+mh), raw
	img := &layout.Image{Manifest: truth}
	if variant == "index extra child" {
		other := mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtDockerManifest, Config: &cd, Layers: []jdesc{ld, ld}})
		p := &jplatform{OS: "linux", Architecture: "amd64"}
		a := jdesc{MediaType: mtDockerManifest, Digest: "sha256:" + mh, Size: len(raw), Platform: p}
		b := jdesc{MediaType: mtDockerManifest, Digest: "sha256:" + hexOf(other), Size: len(other), Platform: p}
		idxRaw := mustJSON(tb, jmanifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []jdesc{a, b}})
		ih := put(idxRaw)
		idx := &layout.Manifest{MediaType: mtOCIIndex, Digest: digest.Digest("sha256:" + ih), Raw: idxRaw,
			Manifests: []layout.Descriptor{{MediaType: a.MediaType, Digest: digest.Digest(a.Digest), Size: int64(a.Size),
				Platform: &layout.Platform{OS: "linux", Architecture: "amd64"}}}}
		img, mh = &layout.Image{Manifest: idx, Children: []*layout.Manifest{truth}}, ih
	}
	if t == nil {
		return nil, mh
	}
	c := catalog.New()
	c.Add("liar", "latest", img, nil)
	c.Meta.Created = wantCreated
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := archive.Write(context.Background(), &buf, c, fx.store, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mh
}

// quietTB is a testing.TB for pure computations outside a test; any failure panics.
type quietTB struct{ testing.TB }

func (quietTB) Helper()                   {}
func (quietTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (quietTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// TestUnpackHostile unpacks malformed and hostile bundles: each must fail with an error of
// the right kind that names the offending entry, must not panic, and must leave the target
// without a tag pointing at missing content, without temporary files, and nothing outside it.
func TestUnpackHostile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the reader's catalog temp file goes here: it must not stay
	g := newGenuine(t)
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			bundle := tc.bundle(t, g)
			mention := ""
			if tc.mention != nil {
				mention = tc.mention(g)
			}
			checkRefused(t, bundle, tc.want, mention)
			checkNoCatalogTemp(t, tmp)
		})
	}
}

// checkRefused unpacks bundle into a fresh target and checks that it fails cleanly.
func checkRefused(t *testing.T, bundle []byte, want []error, mention string) {
	t.Helper()
	for _, via := range []string{"stream", "file"} {
		parent, dst := newTarget(t)
		var err error
		var panicked string
		if via == "stream" {
			_, panicked, err = safeUnpack(bundle, dst)
		} else {
			_, panicked, err = safeUnpackFile(t, bundle, dst)
		}
		switch {
		case panicked != "":
			t.Errorf("Unpack (%s) panicked: %s", via, panicked)
		case err == nil:
			t.Errorf("Unpack (%s) succeeded", via)
		default:
			ok := false
			for _, w := range want {
				ok = ok || errors.Is(err, w)
			}
			switch {
			case !ok:
				t.Errorf("Unpack (%s): %v\nwant errors.Is one of %v", via, err, want)
			case mention != "" && !strings.Contains(err.Error(), mention):
				t.Errorf("Unpack (%s): %v\nthe error does not name %q", via, err, mention)
			default:
				t.Logf("Unpack (%s): %v", via, err)
			}
		}
		checkTagsComplete(t, dst.Root())
		checkNoTemp(t, dst.Root())
		checkOnlyTarget(t, parent)
	}
}

func checkNoCatalogTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "bale-") {
			t.Errorf("temporary file left in TMPDIR: %s", e.Name())
		}
	}
}

// TestUnpackTruncated cuts the genuine bundle at ten offsets spread over the file.
func TestUnpackTruncated(t *testing.T) {
	g := newGenuine(t)
	n := len(g.bundle)
	for k := 1; k <= 10; k++ {
		cut := n * k / 11
		t.Run(fmt.Sprintf("at %d of %d", cut, n), func(t *testing.T) {
			checkRefused(t, g.bundle[:cut], wantDamage, "")
		})
	}
	t.Run("last byte", func(t *testing.T) { checkRefused(t, g.bundle[:n-1], wantDamage, "") })
}

// TestUnpackTruncatedBlob cuts a bundle inside a large blob's compressed data.
func TestUnpackTruncatedBlob(t *testing.T) {
	fx := bigFixture(t, 1<<20)
	b := fx.bundle(t)
	for _, cut := range []int{len(b) / 2, len(b) * 3 / 4} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) { checkRefused(t, b[:cut], wantDamage, "") })
	}
}

// TestUnpackFlipped flips bytes inside the compressed stream: the zstd checksum, the tar
// reader or the digest check must catch it.
func TestUnpackFlipped(t *testing.T) {
	fx := bigFixture(t, 64<<10)
	b := fx.bundle(t)
	n := len(b)
	for k := 1; k <= 8; k++ {
		off := n * k / 9
		t.Run(fmt.Sprintf("at %d of %d", off, n), func(t *testing.T) {
			bad := bytes.Clone(b)
			bad[off] ^= 0x55
			bad[off+1] ^= 0xaa
			checkRefused(t, bad, wantDamage, "")
		})
	}
	t.Run("checksum", func(t *testing.T) {
		// The last 4 bytes of the last frame before the seek table are its content checksum.
		bad := bytes.Clone(b)
		bad[n-seekTableSize(t, b)-2] ^= 0xff
		checkRefused(t, bad, wantDamage, "")
	})
}
