// Package catalog is the index of what a bundle (or any layout) holds: tags, manifests and
// blobs. In memory it is a Catalog; on disk it is a bbolt database, the first member of every
// bundle, so that listing a bundle reads only the head of the file.
//
// The database schema (bucket v1; format versions 1 to 4, specified in docs/bundle-format.md).
// Formats 1 to 3 keep a bucket per repository:
//
//	v1/                                   bucket
//	├── meta/                             bucket
//	│   ├── format   -> "1", "2" or "3"   ASCII decimal format version; readers refuse others
//	│   ├── created  -> RFC 3339 UTC time
//	│   ├── bale     -> version of the bale that wrote it
//	│   └── id       -> "sha256:<hex>"    bundle id, a digest of the content (see ID)
//	├── repos/                            bucket
//	│   └── <repo>/                       bucket per repository name ("a/b/c" is one key)
//	│       ├── tags/      <tag>    -> "sha256:<hex>"  manifest the tag points at
//	│       ├── pinned/    <digest> -> ""              top-level manifests named by digest only
//	│       ├── manifests/ <digest> -> ""              every manifest of the repo (revision links)
//	│       ├── removed/   <tag>    -> "sha256:<hex>"  patches only: tags the patch removes, if
//	│       │                                          they still point at that manifest
//	│       └── referrers/ <digest> -> JSON ReferrerRecord  format 3: manifests carried because
//	│                                                  their subject is carried (OCI 1.1)
//	├── bases/      <id>     -> JSON Base          patches only: the bundles patched against
//	├── manifests/  <digest> -> JSON ManifestRecord
//	└── blobs/      <digest> -> JSON BlobRecord    every blob of the images, manifests included;
//	                                               "base" set when a patch does not carry it
//
// Format 4, which bale writes, keeps meta, manifests, blobs and bases and lays the
// repositories out flat, one bucket per kind keyed <repo>\x00<tag or digest> (flat.go):
//
//	v1/
//	├── revisions/ <repo>\x00<digest> -> ""                every manifest of the repo
//	├── pinned/    <repo>\x00<digest> -> ""
//	├── tags/      <repo>\x00<tag>    -> "sha256:<hex>"
//	├── removed/   <repo>\x00<tag>    -> "sha256:<hex>"    patches only, optional
//	└── referrers/ <repo>\x00<digest> -> JSON ReferrerRecord  optional
//
// Every read is one View and every write one Update; values are decoded inside the
// transaction.
package catalog
