// Package ociarchive reads and writes oci-archive files: a tar of one OCI image layout
// (layout/ocidir) holding many images, what skopeo's oci-archive: transport reads, containerd's
// `ctr images import` imports and k3s and RKE2 import from their images directory
// (/var/lib/rancher/{k3s,rke2}/agent/images/):
//
//	oci-layout                {"imageLayoutVersion":"1.0.0"}               the first member
//	blobs/sha256/<hex>        every manifest, index, config and layer, once (ocidir.BlobName)
//	index.json                one descriptor per image, named in two annotations:   the last
//	    io.containerd.image.name            docker.io/library/busybox:1.36.1
//	    org.opencontainers.image.ref.name   docker.io/library/busybox:1.36.1
//	                          a referrer's or an artifact's in one of bale's own:
//	    com.github.bale-project.ref.name    docker.io/library/busybox@sha256:<hex>
//
// The name is what a runtime calls the image (layout.RuntimeName): HOST/REPO:TAG, normalized
// as Docker does unless a name prefix is given. containerd 1.6 names an imported image by
// io.containerd.image.name, and only without it by the ref name, unnormalized (Client.Import,
// import.go imageName; `ctr images import` makes a bare tag import-DATE:TAG, and with
// --base-name drops names outside it); skopeo finds an image by its ref name (`skopeo copy
// oci-archive:FILE:docker.io/library/busybox:1.36.1 ...`). So both hold the full name. A
// referrer (a signature, an SBOM: a manifest with a subject, or a cosign tag) or another
// artifact (a Helm chart: anything layout.IsRunnable says no to) is named in bale's annotation
// only (ReferrerNameKey: NAME@sha256:<hex>, NAME:sha256-<hex>.sig, NAME:TAG): containerd would
// make an image of any name it finds, and then fail the whole import unpacking it ("mismatched
// image rootfs and manifest layers"); bale, reading the archive, carries it as an OCI layout
// does, a referrer with its subject.
//
// Manifests are stored byte for byte, so every digest is the registry's; multi-arch images are
// whole, or the platforms chosen. A name ending in .tar.gz (or .tgz) or .tar.zst writes a
// compressed archive, which k3s and RKE2 take as it is (`ctr images import` of containerd 1.6
// takes only a plain tar: `zstd -dc FILE.tar.zst | ctr images import -`).
//
// Reading, a descriptor's name is io.containerd.image.name, else its ref name; a full name
// loses its registry host as image lists do (docker.io/library/busybox:1.36.1 is
// library/busybox:1.36.1), and a ref name that is only a tag (what `ctr images export` writes
// there) is a tag of the repository named after the archive's file.
package ociarchive
