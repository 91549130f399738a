// Package layout is bale's image model and the common shape of every on-disk image layout.
//
// An image is a graph of content-addressed blobs: a top-level manifest (an image manifest, or an
// index / manifest list whose children are image manifests), each image manifest naming one config
// blob and its layer blobs. Package layout parses that graph (Docker schema2, Docker manifest list,
// OCI manifest, OCI index; schema1 is refused), walks it, and defines the two sides that every bale
// command composes:
//
//   - a Source lists references (repo:tag, repo@digest) and opens manifests and blobs by digest;
//   - a Sink receives blobs, manifests and tags, blobs first and tags last.
//
// The concrete layouts live in sub-packages: layout/registry (Docker Distribution registry v2
// storage) and layout/dirtree (a tree of skopeo dir: images).
package layout
