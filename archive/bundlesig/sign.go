package bundlesig

import (
	"context"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bale-project/bale/catalog"
)

// BundleMediaType is the media type of the sigstore bundles bale writes.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// Sign signs the statement stmt with s and returns the signature: the JSON of a sigstore
// bundle v0.3 whose messageSignature is over stmt, with s's public key hint, no certificate,
// no transparency-log entry and no timestamp (nothing is asked of any service). This is the
// bundle `cosign sign-blob --key K --tlog-upload=false --new-bundle-format --bundle OUT`
// writes, built as cosign builds it: sigstore's protobuf types (protobuf-specs), protojson.
// (sigstore-go's pkg/sign cannot be used: it imports rekor's PGP support, which needs the
// golang.org/x/crypto/openpgp that x/crypto no longer has.) Before it is returned, sigstore-go
// parses the bundle and verifies it with s's public key, as bale verify does.
func Sign(ctx context.Context, s *Signer, stmt []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sig, sum, err := s.sign(stmt)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	pb := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: string(s.hint)},
			},
		},
		Content: &protobundle.Bundle_MessageSignature{
			MessageSignature: &protocommon.MessageSignature{
				MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum},
				Signature:     sig,
			},
		},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	k, err := newTrustedKey(s.name, s.pub)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	if _, err := k.verify(b, stmt, nil); err != nil {
		return nil, fmt.Errorf("signing with %s: the signature made does not verify: %w", s.name, err)
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.name, err)
	}
	return out, nil
}

// SignCatalog signs the statement of the bundle whose catalog is c with s.
func SignCatalog(ctx context.Context, s *Signer, c *catalog.Catalog) ([]byte, error) {
	stmt, err := Statement(c)
	if err != nil {
		return nil, err
	}
	return Sign(ctx, s, stmt)
}
