package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// smallBlob is the size below which a blob gets a buffer of its own rather than a pooled
// part buffer.
const smallBlob = 1 << 20

// acquire takes one of the Store's request slots; release gives it back.
func (s *Store) acquire() { s.sem <- struct{}{} }
func (s *Store) release() { <-s.sem }

// buffer takes a part buffer from the pool (waiting while every one is in use).
func (s *Store) buffer() []byte {
	b := <-s.bufs
	if b == nil {
		b = make([]byte, s.cfg.partSize())
	}
	return b
}

func (s *Store) putBuffer(b []byte) { s.bufs <- b[:cap(b)] }

// WriteBlob uploads blob d from r straight to its key, verifying it: r is read to EOF (a
// layout.Verifier fails there on a wrong size or digest), and the object appears only if
// it matched. A blob up to the part size is one PUT; a larger one a multipart upload whose
// parts go up several at once, aborted on any error.
func (s *Store) WriteBlob(d layout.Descriptor, r io.Reader) error {
	key, err := s.key(registry.BlobData{Digest: d.Digest})
	if err != nil {
		return err
	}
	v := layout.NewVerifier(r, d)
	if d.Size <= s.cfg.partSize() {
		var buf []byte
		if d.Size < smallBlob {
			buf = make([]byte, d.Size)
		} else {
			buf = s.buffer()
			defer s.putBuffer(buf)
		}
		buf = buf[:d.Size]
		if err := readPart(v, buf, true); err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		s.acquire()
		defer s.release()
		if err := s.put(key, buf); err != nil {
			return err
		}
		s.wroteBlob(d)
		return nil
	}
	if err := s.multipart(key, d, v); err != nil {
		return err
	}
	s.wroteBlob(d)
	return nil
}

// readPart fills buf from r; with last, it then checks that r is at its end (which is where
// a Verifier reports a mismatch).
func readPart(r io.Reader, buf []byte, last bool) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return fmt.Errorf("short blob: %w", layout.ErrDigestMismatch)
		}
		return err
	}
	if !last {
		return nil
	}
	var one [1]byte
	if n, err := r.Read(one[:]); n > 0 || (err != nil && err != io.EOF) {
		if err == nil {
			err = fmt.Errorf("blob longer than its size: %w", layout.ErrDigestMismatch)
		}
		return err
	}
	return nil
}

// multipart uploads blob d from the verifying reader v to key in parts of the part size, up
// to Jobs of them at once, and completes the upload only once v has verified the last byte.
func (s *Store) multipart(key string, d layout.Descriptor, v io.Reader) (err error) {
	up, err := s.client.CreateMultipartUpload(s.ctx, &s3.CreateMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return s.explain("starting the upload of", key, err)
	}
	defer func() {
		if err != nil {
			// A new context: the upload is aborted even when s.ctx was cancelled.
			_, _ = s.client.AbortMultipartUpload(context.WithoutCancel(s.ctx), &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: up.UploadId})
		}
	}()
	size := s.cfg.partSize()
	n := int((d.Size + size - 1) / size)
	parts := make([]types.CompletedPart, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return len(errs) > 0 }
	for i := range n {
		if failed() {
			break
		}
		buf := s.buffer()[:min(size, d.Size-int64(i)*size)]
		if err := readPart(v, buf, i == n-1); err != nil {
			s.putBuffer(buf)
			mu.Lock()
			errs = append(errs, fmt.Errorf("blob %s: %w", d.Digest, err))
			mu.Unlock()
			break
		}
		s.acquire()
		wg.Go(func() {
			defer s.release()
			defer s.putBuffer(buf)
			num := int32(i + 1)
			out, err := s.client.UploadPart(s.ctx, &s3.UploadPartInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: &num, Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf)))})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, s.explain(fmt.Sprintf("uploading part %d of", num), key, err))
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	_, err = s.client.CompleteMultipartUpload(s.ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return s.explain("completing the upload of", key, err)
}

// WriteLink writes the link object of spec holding d. S3 writes an object whole, so a link
// is written in place; one that already holds d is written again with the same bytes.
func (s *Store) WriteLink(spec registry.PathSpec, d digest.Digest) error {
	if err := layout.ValidateDigest(d); err != nil {
		return err
	}
	key, err := s.key(spec)
	if err != nil {
		return err
	}
	s.acquire()
	defer s.release()
	return s.put(key, []byte(d))
}

// EnsureRepo does nothing: a bucket has no directories, and a repository appears to the
// registry (its catalog and garbage collector) through its _layers link objects, which
// every image has.
func (s *Store) EnsureRepo(repo string) error { return layout.ValidateRepo(repo) }

// Tag points repo:tag at manifest d: the tag's index entry first, then its current link
// (registry.TagIn).
func (s *Store) Tag(repo, tag string, d digest.Digest) error {
	return registry.TagIn(s, repo, tag, d)
}

// Untag removes repo:tag if it still points at d (its current link first, then its index
// entries), and reports whether it did. Manifests and blobs stay.
func (s *Store) Untag(repo, tag string, d digest.Digest) (bool, error) {
	cur, err := s.ReadLink(registry.TagCurrent{Repo: repo, Tag: tag})
	if errors.Is(err, layout.ErrNotFound) || (err == nil && cur != d) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	curKey, err := s.key(registry.TagCurrent{Repo: repo, Tag: tag})
	if err != nil {
		return false, err
	}
	if err := s.delete(curKey); err != nil {
		return false, err
	}
	dir, err := s.key(registry.TagDir{Repo: repo, Tag: tag})
	if err != nil {
		return false, err
	}
	var rest []string
	if err := s.list(dir+"/", func(key string, _ int64) error { rest = append(rest, key); return nil }); err != nil {
		return true, err
	}
	for _, k := range rest {
		if err := s.delete(k); err != nil {
			return true, err
		}
	}
	return true, nil
}

func (s *Store) delete(key string) error {
	_, err := s.client.DeleteObject(s.ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	return s.explain("deleting", key, err)
}

// LinkImage writes the repository links of img in repo (registry.LinkImageIn; a bucket has no
// directories to make first). The blobs must already be stored.
func (s *Store) LinkImage(repo string, img *layout.Image) error {
	s.subjects.Drop(repo)
	return registry.LinkImageIn(s, repo, img)
}

// ConcurrentPut reports that PutImage calls for different refs may overlap: each object is
// written whole, with the content its key names.
func (s *Store) ConcurrentPut() bool { return true }

// PutImage stores img in repo: every manifest and blob not yet in the bucket (read from src
// and verified while it uploads), then the repository links, then the tag if ref has one.
func (s *Store) PutImage(ref layout.Ref, img *layout.Image, src layout.Source) error {
	return registry.PutImageIn(s, ref, img, src, func(d layout.Descriptor) error { return s.placeOnce(d, ref.Repo, src) })
}

// placeOnce uploads blob d from src unless it is there; a blob that several overlapping
// PutImage calls share is uploaded once, the others wait for it.
func (s *Store) placeOnce(d layout.Descriptor, repo string, src layout.Source) error {
	return s.placing.Do(d.Digest, func() bool { return s.StatBlob(d) }, func() error { return s.place(d, repo, src) })
}

func (s *Store) place(d layout.Descriptor, repo string, src layout.Source) error {
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("blob %s of %s: %w", d.Digest, repo, err)
	}
	defer rc.Close()
	return s.WriteBlob(d, rc)
}

// RemoveImage removes the tag of ref if it still points at d (see Untag).
func (s *Store) RemoveImage(ref layout.Ref, d digest.Digest) (bool, error) {
	if ref.Tag == "" {
		return false, nil
	}
	return s.Untag(ref.Repo, ref.Tag, d)
}

// Sync does nothing: S3 acknowledges a write once it is durable.
func (s *Store) Sync() error { return nil }

// SeedBlob uploads blob d from the file path of another layout, verifying it.
func (s *Store) SeedBlob(d layout.Descriptor, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.WriteBlob(d, f)
}

var (
	_ registry.ImageStorage  = (*Store)(nil)
	_ registry.ServedStorage = (*Store)(nil)
)
