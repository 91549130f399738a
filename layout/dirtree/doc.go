// Package dirtree reads and writes a tree of skopeo dir: images, the layout that
// `skopeo sync --src docker --dest dir` writes and `skopeo sync --src dir` reads:
//
//	<root>/<repo>:<tag>/              one image; a nested repo is nested folders:
//	                                  <root>/kubesphere/kube-apiserver:v1.20.6/
//	<root>/<repo>@sha256:<hex>/       an image named by digest only
//	    version                       "Directory Transport Version: 1.1\n"
//	    manifest.json                 the top-level manifest (an index for multi-arch images)
//	    <hex>.manifest.json           each child manifest of an index
//	    <hex>                         every config and layer blob of every instance
//
// Writing a Tree hard-links blobs from a file-backed source, so one blob shared by many images
// is stored once on disk.
package dirtree
