// Package registry reads and writes Docker Distribution registry v2 filesystem storage, the
// directory that registry:2 (and Debian's docker-registry) serves; see PathFor for the tree.
//
// A Store is both a layout.Source and the target of writes. Writes follow the registry's own
// order and bale's safety rules: blob data first (verified, through a temporary name and a
// rename), then the repository's _layers and revision links, tags last, so a reader never sees
// a tag whose content is missing.
package registry
