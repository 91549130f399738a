package imagesig

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/bale-project/bale/layout"
)

// The media types and annotations of cosign's two signature forms.
const (
	// SimpleSigningType is the media type of a layer of a cosign .sig manifest.
	SimpleSigningType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds, base64, the signature of a simple-signing layer.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// BundleTypePrefix starts the artifact type of a sigstore bundle referrer
	// (application/vnd.dev.sigstore.bundle.v0.3+json).
	BundleTypePrefix = "application/vnd.dev.sigstore.bundle"
	// SignPredicateType is the in-toto predicate type of cosign sign --new-bundle-format.
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// isBundleType reports whether artifact type at is a sigstore bundle's.
func isBundleType(at string) bool {
	return strings.HasPrefix(at, BundleTypePrefix+".") || strings.HasPrefix(at, BundleTypePrefix+"+json")
}

// checkSimpleSigning verifies the layers of cosign .sig manifest sig against image d: the
// first layer whose signature verifies with a key, and whose payload names d, signs it. It
// returns that key's name, or a *badSignature saying why none did.
func (k *Keys) checkSimpleSigning(src layout.Source, repo string, d digest.Digest, sig *layout.Image) (string, error) {
	var why []string
	for _, l := range sig.Manifest.Layers {
		if l.MediaType != SimpleSigningType {
			continue
		}
		b64, ok := l.Annotations[SignatureAnnotation]
		if !ok {
			why = append(why, fmt.Sprintf("layer %s has no %s annotation", l.Digest, SignatureAnnotation))
			continue
		}
		sigBytes, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			why = append(why, fmt.Sprintf("layer %s: signature annotation: %v", l.Digest, err))
			continue
		}
		raw, err := readSmall(src, repo, l)
		var bad *badSignature
		if errors.As(err, &bad) {
			why = append(why, bad.Error())
			continue
		} else if err != nil {
			return "", err
		}
		name := ""
		for _, kk := range k.keys {
			if kk.verifySignature(sigBytes, raw) {
				name = kk.name
				break
			}
		}
		if name == "" && k.keyless != nil {
			if err := k.keyless.checkLayer(l, sigBytes, raw); err != nil {
				why = append(why, fmt.Sprintf("layer %s: %s: %v", l.Digest, k.keyless.name, err))
			} else {
				name = k.keyless.name
			}
		}
		if name == "" {
			if len(k.keys) > 0 {
				why = append(why, fmt.Sprintf("layer %s: the signature verifies with none of the keys", l.Digest))
			}
			continue
		}
		// Only a payload whose signature verified is parsed.
		if err := ParsePayload(raw, d); err != nil {
			why = append(why, fmt.Sprintf("layer %s: %v", l.Digest, err))
			continue
		}
		return name, nil
	}
	if len(why) == 0 {
		return "", refused("no simple-signing layer")
	}
	return "", refused("%s", strings.Join(why, "; "))
}

// ParsePayload parses a cosign simple-signing payload and checks that it is a cosign container
// image signature of image d (critical.image.docker-manifest-digest). It checks no signature:
// the caller has verified the payload's.
func ParsePayload(raw []byte, d digest.Digest) error {
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("simple-signing payload: %w", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return fmt.Errorf("simple-signing payload of type %q, not %q", p.Critical.Type, payload.CosignSignatureType)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != d.String() {
		return fmt.Errorf("the payload signs %q, not %s", got, d)
	}
	return nil
}

// checkBundle verifies the sigstore bundle of referrer ref against image d with each key
// (sigstore-go's verifier: the DSSE signature, and the in-toto statement's subject is d), and
// that the statement is cosign's image signature, not another attestation.
func (k *Keys) checkBundle(src layout.Source, repo string, d digest.Digest, ref *layout.Image) (string, error) {
	var layer *layout.Descriptor
	for i, l := range ref.Manifest.Layers {
		if isBundleType(l.MediaType) {
			layer = &ref.Manifest.Layers[i]
			break
		}
	}
	if layer == nil {
		return "", refused("no sigstore bundle layer")
	}
	raw, err := readSmall(src, repo, *layer)
	if err != nil {
		return "", err
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return "", refused("sigstore bundle %s: %v", layer.Digest, err)
	}
	sum, err := hex.DecodeString(d.Encoded())
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", refused("image digest %s: not sha256", d)
	}
	policy := verify.NewPolicy(verify.WithArtifactDigest("sha256", sum), verify.WithKey())
	var why []string
	for _, kk := range k.keys {
		res, err := kk.verifyBundle(&b, policy)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", kk.name, err))
			continue
		}
		return kk.name, checkSignStatement(res, layer.Digest)
	}
	if k.keyless != nil {
		res, err := k.keyless.verify(&b, verify.WithArtifactDigest("sha256", sum))
		if err == nil {
			return k.keyless.name, checkSignStatement(res, layer.Digest)
		}
		why = append(why, fmt.Sprintf("%s: %v", k.keyless.name, err))
	}
	return "", refused("sigstore bundle %s verifies with none of the signers (%s)", layer.Digest, strings.Join(why, "; "))
}

// checkSignStatement refuses a verified sigstore bundle (layer d) whose statement is not
// cosign's image signature but another attestation.
func checkSignStatement(res *verify.VerificationResult, d digest.Digest) error {
	if res.Statement == nil || res.Statement.PredicateType != SignPredicateType {
		pt := ""
		if res.Statement != nil {
			pt = res.Statement.PredicateType
		}
		return refused("sigstore bundle %s is an attestation of type %q, not a cosign signature (%s)", d, pt, SignPredicateType)
	}
	return nil
}
