package layout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
)

// Verifier is a reader that hashes what passes through it and, at EOF, fails with
// ErrDigestMismatch unless exactly Size bytes with the expected sha256 were read.
type Verifier struct {
	src  io.Reader // as given
	r    io.Reader // src, limited to Size+1 bytes
	want Descriptor
	h    hash.Hash
	n    int64
	err  error
}

// NewVerifier wraps r so that reading it to EOF verifies it against d. It never reads more
// than d.Size+1 bytes from r.
func NewVerifier(r io.Reader, d Descriptor) *Verifier {
	return &Verifier{src: r, r: io.LimitReader(r, d.Size+1), want: d, h: sha256.New()}
}

// copyBufSize is the buffer of WriteTo: few large writes (one syscall a MiB into a file).
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// WriteTo writes the rest of the content to w, verifying it as Read does, in large writes (so
// io.Copy into a file makes one write a MiB). A source that is an io.WriterTo other than a
// file (whose WriteTo copies 32 KiB at a time) hands over its own buffers, uncopied.
func (v *Verifier) WriteTo(w io.Writer) (int64, error) {
	if v.err != nil {
		return 0, v.err
	}
	vw := &verifyWriter{v: v, w: w}
	var err error
	if wt, ok := v.src.(io.WriterTo); ok && v.n == 0 && !isFile(v.src) {
		_, err = wt.WriteTo(vw)
	} else {
		bp := copyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(vw, struct{ io.Reader }{v.r}, *bp)
		copyBufs.Put(bp)
	}
	if err == nil {
		err = v.check()
	}
	if err != nil {
		v.err = err
	}
	return vw.written, err
}

func isFile(r io.Reader) bool {
	_, ok := r.(*os.File)
	return ok
}

// verifyWriter hashes and counts what it passes on to w, refusing more than the blob's size.
type verifyWriter struct {
	v       *Verifier
	w       io.Writer
	written int64
}

func (vw *verifyWriter) Write(p []byte) (int, error) {
	v := vw.v
	if int64(len(p)) > v.want.Size-v.n {
		return 0, fmt.Errorf("blob %s: more than the expected %d bytes: %w", v.want.Digest, v.want.Size, ErrDigestMismatch)
	}
	v.h.Write(p)
	v.n += int64(len(p))
	n, err := vw.w.Write(p)
	vw.written += int64(n)
	return n, err
}

// Read implements io.Reader.
func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want.Size {
		v.err = fmt.Errorf("blob %s: more than the expected %d bytes: %w", v.want.Digest, v.want.Size, ErrDigestMismatch)
		return n, v.err
	}
	if err == io.EOF {
		if err := v.check(); err != nil {
			v.err = err
			return n, err
		}
	}
	return n, err
}

func (v *Verifier) check() error {
	if v.n != v.want.Size {
		return fmt.Errorf("blob %s: read %d bytes, expected %d: %w", v.want.Digest, v.n, v.want.Size, ErrDigestMismatch)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Digest.Encoded() {
		return fmt.Errorf("blob %s: content hashes to sha256:%s: %w", v.want.Digest, got, ErrDigestMismatch)
	}
	return nil
}

// VerifyBytes checks b against d.
func VerifyBytes(b []byte, d Descriptor) error {
	if int64(len(b)) != d.Size {
		return fmt.Errorf("blob %s: %d bytes, expected %d: %w", d.Digest, len(b), d.Size, ErrDigestMismatch)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return fmt.Errorf("blob %s: content hashes to %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return nil
}

// BlobAudit wraps a copy's source to record, and with hashing enforce, what is checked of
// each blob: a blob read through OpenBlob is verified by the sink as it reads it (every sink
// reads through a Verifier); a blob handed out by path (BlobPath) is hard-linked unread,
// unless the audit hashes the file first and refuses it (ErrDigestMismatch) when it does not
// match, so that the sink never links it.
type BlobAudit struct {
	hash  bool
	paths sync.Map // digest -> *pathCheck: blobs handed out by path
	reads sync.Map // digest -> true: blobs opened for reading
}

type pathCheck struct {
	once sync.Once
	err  error
}

// Audit wraps src for a copy; hash makes it hash every file before handing out its path.
func Audit(src Source, hash bool) (Source, *BlobAudit) {
	a := &BlobAudit{hash: hash}
	if fs, ok := src.(FileSource); ok {
		return auditFileSource{auditSource{src, a}, fs}, a
	}
	return auditSource{src, a}, a
}

// Verify hashes blob d of repo in src (src as Audit was given it, or the wrapper) once, with
// the file when src is a FileSource; later calls and BlobPath return the same result.
func (a *BlobAudit) Verify(src Source, repo string, d Descriptor) error {
	v, _ := a.paths.LoadOrStore(d.Digest, &pathCheck{})
	pc := v.(*pathCheck)
	pc.once.Do(func() { pc.err = hashBlob(src, repo, d) })
	return pc.err
}

func hashBlob(src Source, repo string, d Descriptor) error {
	if fs, ok := src.(FileSource); ok {
		p, err := fs.BlobPath(repo, d)
		if err == nil {
			err = VerifyFile(p, d) // a regular file only, as every other reader asks
		}
		if err != nil {
			return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
		}
		return nil
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, NewVerifier(rc, d)); err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	return nil
}

// Counts reports how many distinct blobs were hashed by the audit (Verify, or BlobPath with
// hashing), handed out by path unhashed (hard-linked, not re-hashed, unless a read of them
// followed), and opened for reading (verified by the sink that read them).
func (a *BlobAudit) Counts() (hashed, linked, read int) {
	a.paths.Range(func(k, v any) bool {
		pc := v.(*pathCheck)
		switch _, r := a.reads.Load(k); {
		case a.hash && pc.err == nil:
			hashed++
		case !a.hash && !r:
			linked++
		}
		return true
	})
	a.reads.Range(func(k, _ any) bool {
		if _, byPath := a.paths.Load(k); !byPath || !a.hash {
			read++
		}
		return true
	})
	return hashed, linked, read
}

type auditSource struct {
	Source
	a *BlobAudit
}

func (s auditSource) OpenBlob(repo string, d Descriptor) (io.ReadCloser, error) {
	rc, err := s.Source.OpenBlob(repo, d)
	if err == nil {
		s.a.reads.Store(d.Digest, true)
	}
	return rc, err
}

// Unwrap returns the audited source (Wrapper), which referrer discovery asks directly.
func (s auditSource) Unwrap() Source { return s.Source }

// Check forwards the access check of a live registry (Checker).
func (s auditSource) Check(repo string, push bool) error {
	if ch, ok := s.Source.(Checker); ok {
		return ch.Check(repo, push)
	}
	return nil
}

type auditFileSource struct {
	auditSource
	fs FileSource
}

// BlobPath hands out the file of blob d; with hashing, only once it has hashed to d.
func (s auditFileSource) BlobPath(repo string, d Descriptor) (string, error) {
	if s.a.hash {
		if err := s.a.Verify(s.fs, repo, d); err != nil {
			return "", err
		}
		return s.fs.BlobPath(repo, d)
	}
	p, err := s.fs.BlobPath(repo, d)
	if err == nil {
		s.a.paths.LoadOrStore(d.Digest, &pathCheck{})
	}
	return p, err
}

// VerifyImages hashes every blob and manifest of images in src (as Audit was given it),
// several at once, each once: the files of a FileSource, which a copy would hard-link
// unread. It returns every blob that does not match, with the images that need it
// (ErrDigestMismatch), or that is missing (ErrNotFound); a non-distributable layer src does
// not hold is skipped, as the copy skips it.
func (a *BlobAudit) VerifyImages(ctx context.Context, src Source, images []Resolved, workers int) error {
	type blob struct {
		repo string
		d    Descriptor
	}
	var blobs []blob
	users := map[digest.Digest][]string{}
	for _, r := range images {
		for _, d := range r.Image.Descriptors() {
			if SkipAbsent(src, r.Ref.Repo, d) {
				continue
			}
			if users[d.Digest] == nil {
				blobs = append(blobs, blob{r.Ref.Repo, d})
			}
			users[d.Digest] = append(users[d.Digest], r.Ref.String())
		}
	}
	return par.Each(ctx, len(blobs), workers, func(i int) error {
		b := blobs[i]
		if err := a.Verify(src, b.repo, b.d); err != nil {
			return fmt.Errorf("needed by %s: %w", strings.Join(users[b.d.Digest], ", "), err)
		}
		return nil
	})
}
