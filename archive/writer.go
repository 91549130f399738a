package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// WriteOptions tune Write.
type WriteOptions struct {
	// Level is the zstd level; zero means zstd.SpeedDefault (about zstd -3).
	Level zstd.EncoderLevel
	// Begin, if set, is given the catalog before the first blob is written.
	Begin func(c *catalog.Catalog)
	// Progress, if set, is called after each blob with its digest and size.
	Progress func(d digest.Digest, size int64)
	// VolumeSize, when positive, makes WriteFile split the bundle into volumes of at most
	// that many bytes (PATH.001, PATH.002, ...; see FirstVolume).
	VolumeSize int64
	// Sign, if set, is given the finished catalog before anything is written and returns the
	// signatures (sigstore bundles over its statement, bundlesig.SignCatalog) written as the
	// members bale/signatures/<n>.sigstore.json right after the catalog, whose meta records
	// their sizes. A split bundle cannot carry them (its statement names the volumes' sha256,
	// known only at the end): with VolumeSize, Write refuses Sign.
	Sign func(c *catalog.Catalog) ([][]byte, error)
}

// WriteFile writes the bundle of c to path through a temporary file in the same directory; on
// any error nothing is left at path or beside it.
func WriteFile(ctx context.Context, path string, c *catalog.Catalog, src layout.Source, opt WriteOptions) (err error) {
	if opt.VolumeSize > 0 {
		if opt.Sign != nil {
			return fmt.Errorf("%s: a bundle split into volumes is signed beside its first volume (bale sign), not inside it", path)
		}
		return writeVolumes(ctx, path, c, src, opt)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".bale-tmp-*")
	if err != nil {
		return fmt.Errorf("creating bundle: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := Write(ctx, f, c, src, opt); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Write streams the bundle of c to w: the catalog, every blob it carries (all of them, unless
// c is a patch) read from src and verified, the repository links, the tags. c must be finished (catalog.Finish). A cancelled ctx stops it
// between blobs.
func Write(ctx context.Context, w io.Writer, c *catalog.Catalog, src layout.Source, opt WriteOptions) (err error) {
	list, err := listMember(c)
	if err != nil {
		return err
	}
	sigs, err := signatures(c, opt)
	if err != nil {
		return err
	}
	cf, err := writeCatalogFile(c)
	if err != nil {
		return err
	}
	defer cf.Close()
	fw, err := newFrameWriter(w, levelOf(opt))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
	}()
	mw := newMemberWriter(fw, c)
	if err := mw.catalog(cf); err != nil {
		return err
	}
	if err := mw.list(list); err != nil {
		return err
	}
	for i, sig := range sigs {
		if err := mw.file(SignatureName(i+1), 0o444, sig); err != nil {
			return err
		}
	}
	return writeData(ctx, mw, c, src, opt)
}

// signatures makes the signature members of c with opt.Sign and records their sizes in c's
// meta (none without Sign: a catalog read from a signed bundle and written again carries no
// signature members).
func signatures(c *catalog.Catalog, opt WriteOptions) ([][]byte, error) {
	c.Meta.Signatures = nil
	if opt.Sign == nil {
		return nil, nil
	}
	if c.Meta.Format < catalog.FormatCatalog {
		return nil, fmt.Errorf("signing bundle %s: a format-%d catalog cannot carry signature members (format %d can)", c.Meta.ID, c.Meta.Format, catalog.FormatCatalog)
	}
	sigs, err := opt.Sign(c)
	if err != nil {
		return nil, fmt.Errorf("signing bundle %s: %w", c.Meta.ID, err)
	}
	if len(sigs) > catalog.MaxSignatures {
		return nil, fmt.Errorf("signing bundle %s: %d signatures, at most %d", c.Meta.ID, len(sigs), catalog.MaxSignatures)
	}
	for _, s := range sigs {
		if len(s) == 0 || len(s) > catalog.MaxSignatureSize {
			return nil, fmt.Errorf("signing bundle %s: a signature of %d bytes, want 1 to %d", c.Meta.ID, len(s), catalog.MaxSignatureSize)
		}
		c.Meta.Signatures = append(c.Meta.Signatures, int64(len(s)))
	}
	return sigs, nil
}

// listMember makes c, a catalog of format 4, the catalog of a format-5 bundle: it renders the
// list member (listing.Render) and records its size and sha256 in c's meta (meta/list),
// which the catalog member then holds. A catalog of an older format is written as it is,
// without the member (nil).
func listMember(c *catalog.Catalog) ([]byte, error) {
	c.Meta.List = nil
	if c.Meta.Format < catalog.FormatCatalog {
		return nil, nil
	}
	c.Meta.Format = catalog.FormatVersion
	b, err := listing.Render(c)
	if err != nil {
		return nil, err
	}
	if len(b) > catalog.MaxListSize {
		return nil, fmt.Errorf("list member of bundle %s: %d bytes, at most %d", c.Meta.ID, len(b), catalog.MaxListSize)
	}
	c.Meta.List = &catalog.ListMember{Size: int64(len(b)), Digest: digest.FromBytes(b)}
	return b, nil
}

// newMemberWriter writes tar members into fw with c's mtime.
func newMemberWriter(fw *frameWriter, c *catalog.Catalog) memberWriter {
	return memberWriter{tw: tar.NewWriter(fw), fw: fw, mtime: c.Meta.Created.UTC().Truncate(time.Second)}
}

// writeData writes what follows the catalog: every carried blob, read from src and verified,
// the links, the tags and the end-of-archive marker. A cancelled ctx stops it between blobs.
func writeData(ctx context.Context, mw memberWriter, c *catalog.Catalog, src layout.Source, opt WriteOptions) error {
	repoOf := c.BlobRepos()
	if opt.Begin != nil {
		opt.Begin(c)
	}
	for i, d := range c.CarriedBlobs() {
		if err := ctx.Err(); err != nil {
			return err
		}
		desc, _ := c.Descriptor(d)
		if i == 0 || desc.Size >= cutSize {
			if err := mw.cut(); err != nil {
				return err
			}
		}
		if err := mw.blob(src, repoOf[d], desc); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(d, desc.Size)
		}
	}
	if err := mw.cut(); err != nil {
		return err
	}
	for _, spec := range Links(c) {
		if err := mw.link(spec, linkTarget(c, spec)); err != nil {
			return err
		}
	}
	return mw.tw.Close()
}

// catalogFile is the catalog member of a bundle, written to a temporary file and copied into
// the member from there: a bundle's catalog is not held in memory while it is written (32 MB
// at 20,000 tags, #19).
type catalogFile struct {
	dir  string
	f    *os.File
	size int64
}

// writeCatalogFile writes c to a temporary file and opens it, its name already removed where
// the system allows; Close closes it (and removes it if its name is left).
func writeCatalogFile(c *catalog.Catalog) (cf *catalogFile, err error) {
	dir, err := os.MkdirTemp("", "bale-catalog-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	p := filepath.Join(dir, "catalog.db")
	if err := catalog.Write(p, c); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() > MaxCatalogSize {
		f.Close()
		return nil, fmt.Errorf("catalog of %d bytes exceeds %d", fi.Size(), MaxCatalogSize)
	}
	// From here on only the open file is read: its name goes now, so that a bundle write
	// that is killed leaves nothing in $TMPDIR (an open file outlives its name). Where a
	// file cannot be removed while it is open, Close removes it.
	if os.RemoveAll(dir) == nil {
		dir = ""
	}
	return &catalogFile{dir: dir, f: f, size: fi.Size()}, nil
}

// Close closes the file, and removes it if writeCatalogFile could not.
func (cf *catalogFile) Close() error {
	cf.f.Close() // opened read-only: nothing is lost
	if cf.dir == "" {
		return nil
	}
	return os.RemoveAll(cf.dir)
}

// Links lists the link files of a bundle in member order: for each repository its _layers
// links then its revision links, then for each tag its index link and its current link (the
// rules of registry.LayerLinks, RevisionLinks and TagLinks; a blob recorded notCarried has
// no _layers link, as registry.ImageLinks leaves out an absent non-distributable layer).
func Links(c *catalog.Catalog) []registry.PathSpec {
	var links []registry.Link
	for _, name := range c.RepoNames() {
		links = append(links, registry.LayerLinks(name, c.RepoLayers(name))...)
		links = append(links, registry.RevisionLinks(name, c.Repos[name].Manifests)...)
	}
	for _, e := range c.Entries() {
		if e.Tag != "" {
			links = append(links, registry.TagLinks(e.Repo, e.Tag, e.Digest)...)
		}
	}
	specs := make([]registry.PathSpec, len(links))
	for i, l := range links {
		specs[i] = l.Spec
	}
	return specs
}

// linkTarget is the digest the link file of spec holds according to c.
func linkTarget(c *catalog.Catalog, spec registry.PathSpec) digest.Digest {
	if t, ok := spec.(registry.TagCurrent); ok {
		if r := c.Repos[t.Repo]; r != nil {
			return r.Tags[t.Tag]
		}
		return ""
	}
	return registry.LinkDigest(spec)
}

type memberWriter struct {
	tw    *tar.Writer
	fw    *frameWriter // nil: no frame cuts
	mtime time.Time
}

// cut ends the zstd frame after the previous member's padding, so the next member's header
// starts a frame.
func (m memberWriter) cut() error {
	if err := m.tw.Flush(); err != nil {
		return err
	}
	if m.fw != nil {
		m.fw.Cut()
	}
	return nil
}

func (m memberWriter) header(name string, mode int64, size int64) error {
	return m.tw.WriteHeader(memberHeader(name, mode, size, m.mtime))
}

// memberHeader is the tar header of every bundle member.
func memberHeader(name string, mode, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: mtime}
}

func (m memberWriter) file(name string, mode int64, b []byte) error {
	if err := m.header(name, mode, int64(len(b))); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := m.tw.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// catalog writes the catalog member, copied from cf.
func (m memberWriter) catalog(cf *catalogFile) error {
	if err := m.header(CatalogName, 0o444, cf.size); err != nil {
		return fmt.Errorf("writing %s: %w", CatalogName, err)
	}
	if _, err := io.Copy(m.tw, io.NewSectionReader(cf.f, 0, cf.size)); err != nil {
		return fmt.Errorf("writing %s: %w", CatalogName, err)
	}
	return nil
}

// list writes the list member b (none when nil) in a frame of its own: the frame is cut
// right before its header, so that bale list decodes it without the catalog (§2.1).
func (m memberWriter) list(b []byte) error {
	if b == nil {
		return nil
	}
	if err := m.cut(); err != nil {
		return err
	}
	return m.file(ListName, 0o444, b)
}

func (m memberWriter) blob(src layout.Source, repo string, d layout.Descriptor) error {
	name, err := registry.PathFor(registry.BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	if err := m.header(name, 0o444, d.Size); err != nil {
		return err
	}
	if _, err := io.Copy(m.tw, layout.NewVerifier(rc, d)); err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	return nil
}

func (m memberWriter) link(spec registry.PathSpec, d digest.Digest) error {
	name, err := registry.PathFor(spec)
	if err != nil {
		return err
	}
	return m.file(name, 0o644, []byte(d))
}

// PredictSize predicts the size of the bundle file of c without reading any blob: the catalog
// and the link members compressed as Write would, plus each carried blob's bytes and tar
// header. Compressed layers do not shrink, so for them the prediction is close; uncompressed
// layers make the real bundle smaller.
func PredictSize(c *catalog.Catalog) (int64, error) {
	c = c.Clone()
	list, err := listMember(c)
	if err != nil {
		return 0, err
	}
	cf, err := writeCatalogFile(c)
	if err != nil {
		return 0, err
	}
	defer cf.Close()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(zw)
	mw := memberWriter{tw: tw, mtime: c.Meta.Created.UTC().Truncate(time.Second)}
	if err := mw.catalog(cf); err != nil {
		return 0, err
	}
	if err := mw.list(list); err != nil {
		return 0, err
	}
	// Blob members with their headers but no content: the content is counted at full size.
	var content int64
	for _, d := range c.CarriedBlobs() {
		name, err := registry.PathFor(registry.BlobData{Digest: d})
		if err != nil {
			return 0, err
		}
		if err := mw.header(name, 0o444, 0); err != nil {
			return 0, err
		}
		content += (c.Blobs[d].Size + tarBlock - 1) / tarBlock * tarBlock
	}
	for _, spec := range Links(c) {
		if err := mw.link(spec, linkTarget(c, spec)); err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(buf.Len()) + content, nil
}

// tarBlock is the unit a tar stream pads every member to.
const tarBlock = 512
