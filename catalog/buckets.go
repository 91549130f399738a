package catalog

// Bucket and key names of the catalog database (see the package doc for the tree).
var (
	bucketV1        = []byte("v1")
	bucketMeta      = []byte("meta")
	bucketRepos     = []byte("repos")
	bucketTags      = []byte("tags")
	bucketPinned    = []byte("pinned")
	bucketManifests = []byte("manifests")
	bucketBlobs     = []byte("blobs")
	bucketBases     = []byte("bases")
	bucketRemoved   = []byte("removed")
	bucketReferrers = []byte("referrers")
	// bucketRevisions holds, from format 4, every repository's manifests (repos/<repo>/manifests
	// of formats 1 to 3), keyed <repo>\x00<digest>.
	bucketRevisions = []byte("revisions")

	keyFormat  = []byte("format")
	keyCreated = []byte("created")
	keyBale    = []byte("bale")
	keyID      = []byte("id")
	keyVolumes = []byte("volumes")
	// keySignatures holds the sizes of the signature members after the catalog (format 4).
	keySignatures = []byte("signatures")
	// keyList holds the size and sha256 of the list member after the catalog (format 5).
	keyList = []byte("list")
)
