// Package archive writes and reads bale bundles: one tar stream, compressed with zstd, that is
// at once a Docker Distribution registry v2 storage root (extract it with `tar --zstd -xf` and
// serve it) and a catalog-led stream bale can verify while it unpacks.
//
// Members, in this order (format version 1; docs/bundle-format.md is the full specification):
//
//	bale/catalog.db                                          the bbolt catalog (package catalog)
//	bale/list.jsonl                                          format 5: what bale list prints (package listing)
//	bale/signatures/<n>.sigstore.json                        bale pack --sign-key: signatures
//	docker/registry/v2/blobs/sha256/<hex[:2]>/<hex>/data      every blob once, by digest
//	docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link          by repo, digest
//	docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
//	docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
//	docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link  tags last
//
// Every member is a regular file owned by 0:0 with the catalog's creation time; blobs and the
// catalog have mode 0444, links 0644. Paths come from registry.PathFor only; the reader maps each
// name back with registry.ParsePath and refuses anything else.
//
// The zstd stream is independent frames of at most FrameSize bytes of tar, cut at the catalog,
// before the list member (so bale list finds it from the seek table, OpenListHead), before every blob of 64 KiB or more and at the links, then a seek table in the zstd seekable
// format (a skippable frame, which zstd -dc passes over):
//
//	frame 0 | frame 1 | ... | frame n-1 | skippable: n x (compressed u32, size u32), n u32, 0, 0x8F92EAB1
//
// NewFileReader decodes the frames on every core; NewReader streams. Unpack verifies and
// writes several blobs at once (the blob pipeline) while the next member is read.
package archive

import (
	"errors"
	"strconv"

	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// CatalogName is the tar name of the catalog, always the first member.
const CatalogName = "bale/catalog.db"

// ListName is the tar name of the list member of a format-5 bundle: what bale list prints,
// rendered from the catalog (archive/listing), right after the catalog member and before
// the signature members; the catalog records its size and sha256 (catalog.Meta.List).
const ListName = "bale/list.jsonl"

// SignatureName is the tar name of signature member n (from 1): a sigstore bundle over the
// bundle's statement, written by bale pack --sign-key right after the catalog, whose meta
// records each signature member's size (catalog.Meta.Signatures).
func SignatureName(n int) string {
	return "bale/signatures/" + strconv.Itoa(n) + ".sigstore.json"
}

// MaxCatalogSize bounds the catalog a reader accepts.
const MaxCatalogSize = 256 << 20

// ErrBundle reports a bundle that is malformed: wrong member order or type, unexpected names,
// members that contradict the catalog.
var ErrBundle = errors.New("malformed bundle")

// Damaged reports whether err says that what bale read is damaged: a digest that does not
// match, a malformed bundle, volume or catalog (bale's exit code 4).
func Damaged(err error) bool {
	return errors.Is(err, layout.ErrDigestMismatch) || errors.Is(err, ErrBundle) || errors.Is(err, ErrVolume) ||
		errors.Is(err, catalog.ErrInconsistent) || errors.Is(err, catalog.ErrFormat) || errors.Is(err, layout.ErrInvalid)
}
