package layout

import (
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// RuntimeName is the full name a container runtime (containerd, podman, docker) gives ref
// once loaded from an image archive, the name a pod or `podman run` asks for: with a prefix
// (HOST[/PATH], bale's --name-prefix), PREFIX/REPO:TAG; without, REPO:TAG normalized as Docker
// does (busybox:1.36.1 is docker.io/library/busybox:1.36.1, kubesphere/ks:v1 is
// docker.io/kubesphere/ks:v1, and a repository whose first component is a host, such as
// quay.io/x/y, keeps it). An image named by digest is NAME@sha256:<hex>.
func RuntimeName(prefix string, ref Ref) (string, error) {
	full := ref.Repo
	if prefix != "" {
		full = strings.TrimSuffix(prefix, "/") + "/" + ref.Repo
	}
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return "", fmt.Errorf("image name %q: %v: %w", full, err, ErrInvalid)
	}
	switch {
	case ref.Tag != "":
		t, err := reference.WithTag(named, ref.Tag)
		if err != nil {
			return "", fmt.Errorf("image name %q, tag %q: %v: %w", full, ref.Tag, err, ErrInvalid)
		}
		return t.String(), nil
	case ref.Digest != "":
		d, err := reference.WithDigest(named, ref.Digest)
		if err != nil {
			return "", fmt.Errorf("image name %q, digest %q: %v: %w", full, ref.Digest, err, ErrInvalid)
		}
		return d.String(), nil
	}
	return named.String(), nil
}

// ValidateNamePrefix checks a --name-prefix: HOST[:PORT][/PATH], lower case, as image names
// are written.
func ValidateNamePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if _, err := RuntimeName(prefix, Ref{Repo: "x", Tag: "latest"}); err != nil {
		return fmt.Errorf("name prefix %q: want HOST[:PORT][/PATH], e.g. registry.site:5000/library: %w", prefix, err)
	}
	return nil
}

// IsReferrer reports whether ref is a referrer of another image rather than an image to run:
// an image named by digest whose manifest has a subject, or a cosign or referrers tag
// (sha256-<hex>.sig, sha256-<hex>). Runtimes have no use for them as images.
func IsReferrer(ref Ref, img *Image) bool {
	if ref.Tag == "" {
		return img.Manifest.Subject != nil
	}
	_, _, ok := ParseReferrerTag(ref.Tag)
	return ok
}

// IsRunnable reports whether img is an image a container runtime can run: every image
// manifest of it has an image config (Docker's or OCI's) and only filesystem layers, and
// names no subject. An archive names nothing else for runtimes: they make an image of every
// name they import, and containerd then fails the import unpacking it. The attestation
// manifests of an index (IsAttestation) are part of the image and not asked: runtimes never
// pick them, whatever their layers.
func IsRunnable(img *Image) bool {
	attestations := img.attestations()
	for _, m := range img.Manifests() {
		if m.Subject != nil {
			return false
		}
		if m.IsIndex() || attestations[m.Digest] {
			continue
		}
		if m.Config.MediaType != MediaTypeDockerConfig && m.Config.MediaType != MediaTypeOCIConfig {
			return false
		}
		for _, l := range m.Layers {
			if !IsLayerType(l.MediaType) {
				return false
			}
		}
	}
	return true
}

// IsLayerType reports whether mt is a filesystem layer, Docker's or OCI's, of any compression
// (non-distributable and foreign ones included).
func IsLayerType(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.") || strings.HasPrefix(mt, "application/vnd.oci.image.layer.")
}

// NameRefs records, for each runtime name an archive writer gives images, the refs it was given
// for, in the order they came: more than one ref for a name means that several refs merged
// into it (alpine:3.14 and library/alpine:3.14 are both docker.io/library/alpine:3.14).
type NameRefs map[string][]Ref

// Add records that name was given for ref.
func (n NameRefs) Add(name string, ref Ref) {
	if !slices.Contains(n[name], ref) {
		n[name] = append(n[name], ref)
	}
}

// Merged returns each name given for more than one ref, with those refs sorted.
func (n NameRefs) Merged() map[string][]Ref {
	out := map[string][]Ref{}
	for name, refs := range n {
		if len(refs) > 1 {
			out[name] = slices.SortedFunc(slices.Values(refs), func(a, b Ref) int { return strings.Compare(a.String(), b.String()) })
		}
	}
	return out
}
