// Package dockerarchive reads and writes docker-archive files, the `docker save` format that
// `docker load`, `podman load`, `ctr images import` and skopeo's docker-archive: transport
// take. One file holds many images, one platform each:
//
//	manifest.json        [{"Config":"<hex>.json",
//	                       "RepoTags":["docker.io/library/busybox:1.36.1", ...],
//	                       "Layers":["<diffid hex>.tar", ...]}, ...]          the last member
//	<hex>.json           each image's config; hex is its sha256, the image id
//	<diffid hex>.tar     each layer once, uncompressed; hex is its sha256, the diff id
//
// bale writes that (MemberName names the members): configs, then layers, each as the first
// image that needs it arrives, manifest.json at Commit. Layers are written uncompressed, as
// docker save and skopeo write them, since containerd 1.6 labels any compressed layer of a
// docker-archive as gzip (images/archive/importer.go, resolveLayers); each is decompressed
// into a temporary file beside the archive, its compressed bytes checked against the blob
// digest and its uncompressed bytes against the config's diff_id, before it goes in. No
// legacy <id>/layer.tar directories or repositories file are written (docker load has read
// manifest.json since Docker 1.10). RepoTags are runtime names (layout.RuntimeName).
//
// The format has no manifests: a runtime makes one when it loads the file, so manifest digests
// do not survive a docker-archive, while image ids (config digests) and diff ids do. Referrers
// (signatures, SBOMs) and artifacts cannot be held at all: PutImage leaves them out and
// Skipped lists them.
//
// Reading, manifest.json is parsed (ParseManifestJSON), every member it names is looked up in
// the tar (links inside the archive followed, as docker save writes a layer saved twice), and
// each image gets a Docker schema2 manifest made the way containerd's importer makes it (same
// fields, same order, so `ctr images import` of the same file gives the same digest): config
// application/vnd.docker.container.image.v1+json, and each layer as the archive holds it, an
// uncompressed tar (application/vnd.docker.image.rootfs.diff.tar, its digest the diff id) or
// gzip (…tar.gzip, hashed, and its diff id checked, at Open). Stored that way, a vendor's
// archive packed twice gives the same digests, so a patch carries only what changed, and the
// bundle's zstd compresses the tars better than gzip would. RepoTags lose their registry host
// as in image lists (docker.io/library/busybox:1.36.1 is library/busybox:1.36.1).
package dockerarchive
