// Package ocidir reads and writes an OCI image layout (opencontainers/image-spec
// image-layout.md) holding many images:
//
//	<root>/oci-layout              {"imageLayoutVersion":"1.0.0"}
//	<root>/index.json              an OCI index; one descriptor per tag
//	<root>/blobs/sha256/<hex>      every manifest, index, config and layer, once
//
// Tags are the org.opencontainers.image.ref.name annotation of index.json descriptors, as
// `skopeo copy ... oci:PATH:REF` writes and reads them. bale writes REF as "<repo>:<tag>"
// (for example kubesphere/kube-apiserver:v1.20.6, so `skopeo copy
// oci:PATH:kubesphere/kube-apiserver:v1.20.6 ...` reads it) and "<repo>@sha256:<hex>" for an
// image named by digest only. Reading, a ref name without ':' or '@' (what `skopeo copy ...
// oci:PATH:v1` writes) is tag v1 of the repository named after the layout's directory.
// Manifests are stored byte for byte, Docker schema2 ones included, so digests never change.
//
// OpenFS reads the same layout out of an fs.FS instead of a directory (the members of an
// oci-archive, layout/ociarchive, which names its images by its own rules through
// Options.Ref); BlobName names a blob inside a layout, for both.
package ocidir
