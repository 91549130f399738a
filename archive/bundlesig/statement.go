// Package bundlesig signs bale bundles and verifies their signatures, offline.
//
// What is signed is a statement (an in-toto Statement v1, canonical JSON) that bale rebuilds
// from a bundle's catalog alone: the bundle id (which binds every tag, manifest and blob
// digest and size, docs/bundle-format.md §6), a patch's bases' ids in order, the sizes and
// sha256 of a split bundle's volumes, and (format 5) the size and sha256 of its list member,
// from which bale list rebuilds the same statement without the catalog. Nothing else is read,
// so a 50 GB bundle is signed in a second. The signature is a sigstore bundle v0.3 whose messageSignature is over the statement
// bytes: what `cosign sign-blob --new-bundle-format --bundle OUT statement.json` writes, and
// what `cosign verify-blob --new-bundle-format` checks. The formats and the cryptography are
// sigstore's (github.com/sigstore/sigstore-go and github.com/sigstore/sigstore); keys are
// cosign's key files or PEM private keys.
//
// bale pack --sign-key writes its signature inside the bundle, as the member
// bale/signatures/1.sigstore.json after the catalog (archive.SignatureName). A signature made
// later lives beside the bundle, in <bundle>.sigstore.json (more signers:
// <bundle>.<n>.sigstore.json); for a split bundle, beside its first volume.
package bundlesig

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	jsoncanonicalizer "github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"

	"github.com/bale-project/bale/catalog"
)

// The statement's fixed fields.
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType names bale's predicate: what a bundle holds, as its catalog records it.
	PredicateType = "https://github.com/bale-project/bale/bundle/v1"
	// SubjectName is the name of the statement's one subject, the bundle.
	SubjectName = "bale-bundle"
)

// statement is an in-toto Statement v1 over a bundle.
type statement struct {
	Type          string    `json:"_type"`
	Subject       []subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is what a statement says of the bundle besides its id.
type Predicate struct {
	// Format is the catalog's format version (meta/format).
	Format int `json:"format"`
	// Bases are a patch's bases' ids, in the order they are applied; empty for a full bundle.
	Bases []string `json:"bases"`
	// Volumes are a split bundle's data volumes, as meta/volumes records them; empty otherwise.
	Volumes []catalog.Volume `json:"volumes"`
	// List is the list member of a format-5 bundle (bale/list.jsonl), as meta/list records
	// it; absent for older formats, whose statements stay as they were. bale list checks the
	// signatures against it before it prints the member's rows.
	List *List `json:"list,omitempty"`
}

// List is the sha256 and size of a bundle's list member.
type List struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Covers is what a statement binds: the bundle id and the predicate.
type Covers struct {
	ID string `json:"id"`
	Predicate
}

// CoversOf is what the statement of catalog c binds.
func CoversOf(c *catalog.Catalog) Covers {
	bases := append([]catalog.Base(nil), c.Bases...)
	sort.SliceStable(bases, func(i, j int) bool { return bases[i].Order < bases[j].Order })
	cv := Covers{ID: c.Meta.ID, Predicate: Predicate{Format: c.Meta.Format, Bases: []string{}, Volumes: []catalog.Volume{}}}
	for _, b := range bases {
		cv.Bases = append(cv.Bases, b.ID)
	}
	cv.Volumes = append(cv.Volumes, c.Meta.Volumes...)
	if l := c.Meta.List; l != nil {
		cv.List = &List{Digest: string(l.Digest), Size: l.Size}
	}
	return cv
}

// Statement returns the statement of the bundle whose catalog is c (StatementOf its
// CoversOf).
func Statement(c *catalog.Catalog) ([]byte, error) { return StatementOf(CoversOf(c)) }

// StatementOf returns the statement that binds cv: RFC 8785 canonical JSON (keys sorted, no
// spaces), so that every bale rebuilds the same bytes, from a bundle's catalog (Statement) or
// from its list member's header and digest (bale list). Nil Bases and Volumes are empty.
func StatementOf(cv Covers) ([]byte, error) {
	if cv.Bases == nil {
		cv.Bases = []string{}
	}
	if cv.Volumes == nil {
		cv.Volumes = []catalog.Volume{}
	}
	hex, err := idHex(cv.ID)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(statement{
		Type:          StatementType,
		Subject:       []subject{{Name: SubjectName, Digest: map[string]string{"sha256": hex}}},
		PredicateType: PredicateType,
		Predicate:     cv.Predicate,
	})
	if err != nil {
		return nil, fmt.Errorf("statement of bundle %s: %w", cv.ID, err)
	}
	out, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("statement of bundle %s: canonical JSON: %w", cv.ID, err)
	}
	return out, nil
}

// idHex is the hex of bundle id "sha256:<hex>".
func idHex(id string) (string, error) {
	const prefix = "sha256:"
	if len(id) != len(prefix)+2*sha256.Size || id[:len(prefix)] != prefix {
		return "", fmt.Errorf("bundle id %s is not sha256:<64 hex digits>", strconv.Quote(id))
	}
	for _, r := range id[len(prefix):] {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return "", fmt.Errorf("bundle id %s is not sha256:<64 hex digits>", strconv.Quote(id))
		}
	}
	return id[len(prefix):], nil
}
