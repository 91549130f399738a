package s3store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/bale-project/bale/layout/registry"
)

// A bucket has no flock. One unpack at a time holds a Store through its lock object,
// <root>/.bale.lock: written with a conditional PUT (If-None-Match, or If-Match over a
// stale one), rewritten every LockTTL/4 while the unpack runs (its heartbeat), and deleted
// at the end. A lock whose heartbeat is older than LockTTL, or whose bale ran on this host
// and is gone (kill -9), is stale and taken over, so a killed unpack run again proceeds.
const (
	// LockName is the lock object's name below the root directory.
	LockName = ".bale.lock"
	// LockTTL is how long a lock without a heartbeat holds.
	LockTTL = 60 * time.Second
)

// lockInfo is the lock object's content.
type lockInfo struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

// lockKey is the lock object's key.
func (s *Store) lockKey() string { return s.prefix + LockName }

// Lock takes the Store's lock object for one unpack (see LockName) and returns the function
// that releases it; ErrLocked names the bale that holds it.
func (s *Store) Lock() (func(), error) {
	key := s.lockKey()
	host, _ := os.Hostname()
	me := lockInfo{Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
	in := &s3.PutObjectInput{Bucket: &s.cfg.Bucket, Key: &key, IfNoneMatch: aws.String("*")}
	if out, err := s.client.GetObject(s.ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key}); err == nil {
		var held lockInfo
		derr := json.NewDecoder(out.Body).Decode(&held)
		out.Body.Close()
		if derr == nil && !held.stale(host, time.Now()) {
			return nil, fmt.Errorf("s3://%s/%s: bale (pid %d on %s, started %s) is unpacking into %s, its last sign of life %s ago; wait for it, or, if it is gone, delete that object or wait %s: %w",
				s.cfg.Bucket, key, held.PID, held.Host, held.Started.Format(time.RFC3339), s, time.Since(held.Heartbeat).Round(time.Second), LockTTL, ErrLocked)
		}
		in.IfNoneMatch, in.IfMatch = nil, out.ETag
	} else if err := s.explain("reading", key, err); !isNotFound(err) {
		return nil, err
	}
	me.Heartbeat = time.Now().UTC()
	if err := s.putLock(in, me); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(s.ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(LockTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				me.Heartbeat = time.Now().UTC()
				_ = s.putLock(&s3.PutObjectInput{Bucket: &s.cfg.Bucket, Key: &key}, me)
			}
		}
	}()
	return func() {
		stop()
		<-done
		_, _ = s.client.DeleteObject(context.WithoutCancel(s.ctx), &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	}, nil
}

// putLock writes the lock object; a failed precondition means another bale took it first.
func (s *Store) putLock(in *s3.PutObjectInput, me lockInfo) error {
	b, _ := json.Marshal(me)
	in.Body, in.ContentLength = strings.NewReader(string(b)), aws.Int64(int64(len(b)))
	_, err := s.client.PutObject(context.WithoutCancel(s.ctx), in)
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("s3://%s/%s: another bale took the lock at the same moment: %w", s.cfg.Bucket, *in.Key, ErrLocked)
		case "NotImplemented":
			// A server without conditional writes: the lock is then only advisory.
			in.IfMatch, in.IfNoneMatch = nil, nil
			_, err = s.client.PutObject(context.WithoutCancel(s.ctx), in)
		}
	}
	return s.explain("writing the lock object", *in.Key, err)
}

// stale reports whether a lock held by l is no longer held at now: no heartbeat for LockTTL,
// or its bale ran on this host and is gone.
func (l lockInfo) stale(host string, now time.Time) bool {
	if now.Sub(l.Heartbeat) > LockTTL {
		return true
	}
	return l.Host == host && l.PID > 0 && !processAlive(l.PID)
}

// processAlive reports whether process pid exists on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Sweep aborts the multipart uploads of blobs that an interrupted unpack left in the bucket
// (bale uploads blobs straight to their keys under blobs/; a registry uploads under a
// repository's _uploads/). It is called holding the lock, before any upload of this run.
func (s *Store) Sweep() (int, error) {
	blobs, err := s.key(registry.Blobs{})
	if err != nil {
		return 0, err
	}
	prefix := blobs + "/"
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: &prefix}
	for {
		out, err := s.client.ListMultipartUploads(s.ctx, in)
		if err != nil {
			return n, s.explain("listing the multipart uploads under", prefix, err)
		}
		for _, u := range out.Uploads {
			if _, ok := parseKey(s.prefix, aws.ToString(u.Key)); !ok {
				continue
			}
			_, err := s.client.AbortMultipartUpload(s.ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil && !isNotFound(s.explain("aborting the upload of", aws.ToString(u.Key), err)) {
				return n, s.explain("aborting the upload of", aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Prepare readies the Store for an unpack: it takes the lock, aborts the uploads an
// interrupted run left, and lists the blobs the bucket holds (StatBlob answers from that
// list while the lock is held); the returned function releases the lock.
func (s *Store) Prepare() (func(), error) {
	unlock, err := s.Lock()
	if err != nil {
		return nil, err
	}
	if _, err := s.Sweep(); err != nil {
		unlock()
		return nil, err
	}
	if err := s.listBlobs(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}
