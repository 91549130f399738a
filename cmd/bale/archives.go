package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/dockerarchive"
	"github.com/bale-project/bale/layout/ociarchive"
)

// Kinds of location that are the image archives of container runtimes.
const (
	kindOCIArchive    = "oci-archive"    // oci-archive:FILE, a tar of an OCI layout
	kindDockerArchive = "docker-archive" // docker-archive:FILE, the docker save format
)

// namePrefixFlag sets the names of the images in an archive destination.
var namePrefixFlag = &cli.StringFlag{Name: "name-prefix", Usage: "name the images of an oci-archive: or docker-archive: destination `HOST[:PORT][/PATH]`/REPO:TAG (default: as Docker does, docker.io/library/busybox:1.36.1)"}

// isTarFile reports whether the file at p starts as a plain tar (ustar magic) or a gzip
// stream: an image archive given without its oci-archive: or docker-archive: prefix.
func isTarFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 263)
	n, _ := io.ReadFull(f, head)
	return (n >= 263 && bytes.Equal(head[257:262], []byte("ustar"))) || bytes.HasPrefix(head[:n], []byte{0x1f, 0x8b})
}

// openArchiveSource opens an oci-archive:, docker-archive: or bundle location for reading.
func openArchiveSource(l location) (layout.Source, error) {
	switch l.Kind {
	case kindOCIArchive:
		return ociarchive.Open(l.Path, ociarchive.OpenOptions{})
	case kindDockerArchive:
		return dockerarchive.Open(l.Path, dockerarchive.OpenOptions{})
	case kindBundle:
		return archive.OpenSource(context.Background(), []string{l.Path})
	}
	return nil, usagef("%s is not an image archive or a bundle", l)
}

// archiveDestination is a destination written whole: nothing appears at its path until Commit.
type archiveDestination interface {
	destination
	Commit() error
	Abort()
}

var (
	_ archiveDestination = (*ociarchive.Writer)(nil)
	_ archiveDestination = (*dockerarchive.Writer)(nil)
)

// openDestinationFlags names a location to write, as openDestination does; an archive is
// created with --name-prefix and, for a docker-archive, the one --platform it holds.
func openDestinationFlags(cx *cli.Context, l location, platforms []layout.Platform) (destination, error) {
	prefix := cx.String("name-prefix")
	if err := layout.ValidateNamePrefix(prefix); err != nil {
		return nil, usageError{err}
	}
	switch l.Kind {
	case kindOCIArchive:
		return ociarchive.Create(l.Path, ociarchive.Options{NamePrefix: prefix})
	case kindDockerArchive:
		if len(platforms) > 1 {
			return nil, usagef("a docker-archive holds one platform of each image: give one --platform, not %d", len(platforms))
		}
		opt := dockerarchive.Options{NamePrefix: prefix}
		if len(platforms) == 1 {
			opt.Platform = &platforms[0]
		}
		return dockerarchive.Create(l.Path, opt)
	}
	if prefix != "" {
		return nil, usagef("--name-prefix names the images of an oci-archive: or docker-archive: destination, not of %s", l)
	}
	return openDestination(cx, l)
}

// finishArchives commits every archive among sinks when err is nil and aborts them
// otherwise, so that a failed command leaves no archive behind; it says what a
// docker-archive left out. It returns err, or the first commit error.
func finishArchives(cx *cli.Context, sinks []layout.Sink, err error) error {
	for _, s := range sinks {
		a, ok := s.(archiveDestination)
		if !ok {
			continue
		}
		if err != nil {
			a.Abort()
			continue
		}
		if err = a.Commit(); err != nil {
			continue
		}
		if na, ok := s.(namingArchive); ok {
			merged := na.Merged()
			for _, name := range slices.Sorted(maps.Keys(merged)) {
				fmt.Fprintf(cx.App.ErrWriter, "note: %s are one name in %s: %s\n", joinRefs(merged[name]), na.Path(), name)
			}
		}
		if d, ok := s.(*dockerarchive.Writer); ok {
			if skipped := d.Skipped(); len(skipped) > 0 {
				fmt.Fprintf(cx.App.ErrWriter, "note: %s holds no referrers or artifacts; left out %d:\n", d.Path(), len(skipped))
				for _, k := range skipped {
					fmt.Fprintf(cx.App.ErrWriter, "  %s: %s\n", k.Ref, k.Reason)
				}
			}
		}
	}
	return err
}

// namingArchive is an archive that names its images as runtimes will know them, which can give
// several refs one name (alpine:3.14 and library/alpine:3.14 are both
// docker.io/library/alpine:3.14).
type namingArchive interface {
	Path() string
	Merged() map[string][]layout.Ref
	Names() int
}

var (
	_ namingArchive = (*ociarchive.Writer)(nil)
	_ namingArchive = (*dockerarchive.Writer)(nil)
)

// joinRefs writes refs as "a and b", "a, b and c".
func joinRefs(refs []layout.Ref) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// namesNote is what a summary of n images written into s adds when s is an archive that gave
// them fewer names: " under 6 names" (finishArchives said which merged), or "".
func namesNote(s layout.Sink, n int) string {
	na, ok := s.(namingArchive)
	if !ok || len(na.Merged()) == 0 || na.Names() == n {
		return ""
	}
	return fmt.Sprintf(" under %d names", na.Names())
}

// abortArchives aborts every archive among sinks not committed yet (Abort after Commit does
// nothing): deferred, so that no early return leaves a temporary file behind.
func abortArchives(sinks *[]layout.Sink) {
	for _, s := range *sinks {
		if a, ok := s.(archiveDestination); ok {
			a.Abort()
		}
	}
}

// stageArchive has pack stage an oci-archive or docker-archive source (as registry storage
// beside out, unless --stage names a place) and remove the stage after a failure too: unlike
// a pull, reading an archive again costs nothing, and a damaged archive must leave no output.
func stageArchive(loc location, out string, opt *archive.PackOptions) {
	if loc.Kind != kindOCIArchive && loc.Kind != kindDockerArchive {
		return
	}
	if opt.Stage == "" {
		opt.Stage = out + ".bale-stage"
	}
	opt.DropStage = true
}
