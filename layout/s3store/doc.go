// Package s3store is Docker Distribution registry v2 storage in an S3 bucket, laid out as
// Distribution's s3 storage driver lays it out, so that registries running with
// storage.s3 on the same bucket serve what bale writes there, and bale reads what they
// wrote. A location is s3://BUCKET[/ROOTDIRECTORY] (ParseURL); every key is ROOTDIRECTORY
// (the driver's rootdirectory, without its leading "/") followed by a path of
// registry.PathFor, and no key is built any other way:
//
//	<rootdirectory>/
//	├── .bale.lock                                           the lock object of an unpack
//	└── docker/registry/v2/                                  registry.PathFor from here on
//	    ├── blobs/sha256/<hex[0:2]>/<hex>/data               blob content, written once
//	    │                                                    (a PUT, or a multipart upload)
//	    └── repositories/<name>/
//	        ├── _layers/sha256/<hex>/link                    "sha256:<hex>", 71 bytes
//	        └── _manifests/
//	            ├── revisions/sha256/<hex>/link
//	            └── tags/<tag>/{current/link, index/sha256/<hex>/link}
//
// A bucket has no directories, no hard links and no rename: an object appears whole when its
// PUT or the completion of its multipart upload succeeds, and not before. So a blob is
// uploaded straight to its final key, verified while it streams: a blob that fails its
// digest is aborted and never appears. The layout itself stores each blob once (every
// repository links to the one blobs/ key). A blob already at its key with the right size is
// not uploaded again. Links are written after their blobs and tags last, as on disk.
//
// A Store is a layout.Source (with layout.TagLister and layout.ReferrerLister) and a
// layout.ConcurrentSink (with layout.ReferrerTagger and layout.Remover), and has what
// archive's unpack needs of a target. Its configuration comes the AWS way (environment,
// ~/.aws files, flags; Config) or from a registry's own config.yml (ParseRegistryConfig).
package s3store
