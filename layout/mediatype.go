package layout

// Media types bale understands (see docs/bundle-format.md and ../shared/docs/formats.md §4.1).
const (
	MediaTypeDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerConfig        = "application/vnd.docker.container.image.v1+json"
	MediaTypeOCIManifest         = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex            = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig           = "application/vnd.oci.image.config.v1+json"
)

// IsIndexType reports whether mt is a Docker manifest list or an OCI index.
func IsIndexType(mt string) bool {
	return mt == MediaTypeDockerManifestList || mt == MediaTypeOCIIndex
}

// IsManifestType reports whether mt is a manifest bale can store (image manifest or index).
func IsManifestType(mt string) bool {
	switch mt {
	case MediaTypeDockerManifest, MediaTypeOCIManifest, MediaTypeDockerManifestList, MediaTypeOCIIndex:
		return true
	}
	return false
}
