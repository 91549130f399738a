// Package fileart keeps files and directories as OCI artifacts in registry storage, the way
// `oras push` writes them, so that `oras pull` gives them back: Stage writes one into
// files/<name>:<tag>, and Writer (the files:DIR location) writes every such artifact of a
// source back out as DIR/<name>/<file>.
//
// An artifact is an OCI 1.1 image manifest with artifactType ArtifactType, the empty config
// (application/vnd.oci.empty.v1+json, "{}") and one layer per file, titled with
// org.opencontainers.image.title. A file's layer is the file's bytes
// (application/vnd.oci.image.layer.v1.tar, as oras names any file); a directory's is a
// tar+gzip of it (application/vnd.oci.image.layer.v1.tar+gzip) whose entries start with the
// title, annotated with io.deis.oras.content.digest (the tar's sha256) and
// io.deis.oras.content.unpack "true", which make oras pull extract it. bale adds
// AnnotationMode, the permission bits of the file or directory.
package fileart
