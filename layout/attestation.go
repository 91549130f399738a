package layout

import (
	"github.com/opencontainers/go-digest"
)

// BuildKit's attestation storage: `docker buildx build` (provenance on by default, so every
// Docker official image) lists, after the platform images of an index, one attestation
// manifest per image: platform unknown/unknown, and these two annotations on its descriptor.
const (
	// AnnotationReferenceType marks an attestation manifest's descriptor in an index.
	AnnotationReferenceType = "vnd.docker.reference.type"
	// ReferenceTypeAttestation is AnnotationReferenceType's value for an attestation manifest.
	ReferenceTypeAttestation = "attestation-manifest"
	// AnnotationReferenceDigest names the image of the same index the attestation is about.
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
)

// IsAttestation reports whether d, a child of an index, is an attestation manifest that
// BuildKit lists beside the image it describes. It is part of the image, never a platform to
// pick or run, and no reason to treat the index as an artifact. This is the one place bale
// tells an attestation child from an image child.
func IsAttestation(d Descriptor) bool {
	return d.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation
}

// AttestationSubject is the digest of the image attestation child d describes, and whether d
// is an attestation that names a valid one.
func AttestationSubject(d Descriptor) (digest.Digest, bool) {
	if !IsAttestation(d) {
		return "", false
	}
	s := digest.Digest(d.Annotations[AnnotationReferenceDigest])
	return s, s.Validate() == nil
}

// IsUnknownPlatform reports whether p says nothing of a platform (nil, or unknown/unknown as
// BuildKit gives attestation manifests): no platform to show or to choose.
func IsUnknownPlatform(p *Platform) bool {
	return p == nil || (p.OS == "unknown" && p.Architecture == "unknown")
}

// attestations returns the digests of the attestation children of img's indexes, at any
// depth.
func (img *Image) attestations() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, m := range img.Manifests() {
		for _, d := range m.Manifests {
			if IsAttestation(d) {
				out[d.Digest] = true
			}
		}
	}
	return out
}

// isImageChild reports whether d, a child of an index, is a platform image to choose: not an
// index, not an attestation, with a platform that says something.
func isImageChild(d Descriptor) bool {
	return !IsIndexType(d.MediaType) && !IsAttestation(d) && !IsUnknownPlatform(d.Platform)
}
