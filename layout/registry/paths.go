package registry

import (
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// PathSpec is one kind of path in registry storage; PathFor maps it to a path.
type PathSpec interface{ pathSpec() }

// Path specs, one per kind of file bale reads or writes (distribution's registry/storage/paths.go).
type (
	// BlobData is the content of a blob: blobs/sha256/<hex[:2]>/<hex>/data.
	BlobData struct{ Digest digest.Digest }
	// LayerLink marks a blob (config or layer) as part of a repository: _layers/sha256/<hex>/link.
	LayerLink struct {
		Repo   string
		Digest digest.Digest
	}
	// RevisionLink marks a manifest as part of a repository: _manifests/revisions/sha256/<hex>/link.
	RevisionLink struct {
		Repo   string
		Digest digest.Digest
	}
	// TagCurrent points a tag at a manifest: _manifests/tags/<tag>/current/link.
	TagCurrent struct{ Repo, Tag string }
	// TagIndex records that a tag has pointed at a manifest: _manifests/tags/<tag>/index/sha256/<hex>/link.
	TagIndex struct {
		Repo, Tag string
		Digest    digest.Digest
	}
	// TagDir is everything of one tag: _manifests/tags/<tag>/.
	TagDir struct{ Repo, Tag string }
	// TagsDir holds every tag of a repository: _manifests/tags/.
	TagsDir struct{ Repo string }
	// RevisionsDir holds a repository's revision links: _manifests/revisions/sha256/.
	RevisionsDir struct{ Repo string }
	// LayersDir is a repository's _layers/ directory, which registry 2.8 needs to see the
	// repository at all (catalog and garbage collection), even when it is empty.
	LayersDir struct{ Repo string }
	// Repositories is the root of all repositories: repositories/.
	Repositories struct{}
	// Blobs is the root of all blob data: blobs/.
	Blobs struct{}
)

func (BlobData) pathSpec()     {}
func (LayerLink) pathSpec()    {}
func (RevisionLink) pathSpec() {}
func (TagCurrent) pathSpec()   {}
func (TagIndex) pathSpec()     {}
func (Repositories) pathSpec() {}
func (LayersDir) pathSpec()    {}
func (RevisionsDir) pathSpec() {}
func (TagDir) pathSpec()       {}
func (TagsDir) pathSpec()      {}
func (Blobs) pathSpec()        {}

// StoragePrefix is where registry storage starts below the storage root directory.
const StoragePrefix = "docker/registry/v2"

// PathFor maps a spec to its slash-separated path relative to the storage root (the directory
// given as rootdirectory to the registry). Digests, repository names and tags are validated
// first, so no spec can produce a path outside the root.
//
//	<root>/docker/registry/v2/
//	├── blobs/sha256/<hex[0:2]>/<hex>/data                       BlobData: raw content
//	└── repositories/<name>/                                      <name> may be a/b/c
//	    ├── _layers/sha256/<hex>/link                             LayerLink: configs and layers
//	    └── _manifests/
//	        ├── revisions/sha256/<hex>/link                       RevisionLink: every manifest,
//	        │                                                     index children included
//	        └── tags/                                             TagsDir
//	            └── <tag>/                                        TagDir
//	                ├── current/link                              TagCurrent
//	                └── index/sha256/<hex>/link                   TagIndex
//
// Every link file holds exactly "sha256:<hex>" (71 bytes, no newline): the digest in its path.
// The same paths, after the rootdirectory, are the object keys of storage in an S3 bucket
// (layout/s3store).
func PathFor(spec PathSpec) (string, error) {
	switch s := spec.(type) {
	case Blobs:
		return path.Join(StoragePrefix, "blobs"), nil
	case Repositories:
		return path.Join(StoragePrefix, "repositories"), nil
	case BlobData:
		if err := layout.ValidateDigest(s.Digest); err != nil {
			return "", err
		}
		h := s.Digest.Encoded()
		return path.Join(StoragePrefix, "blobs", "sha256", h[:2], h, "data"), nil
	case LayersDir:
		return repoPath(s.Repo, "", "_layers")
	case RevisionsDir:
		return repoPath(s.Repo, "", "_manifests", "revisions", "sha256")
	case TagsDir:
		return repoPath(s.Repo, "", "_manifests", "tags")
	case TagDir:
		if err := layout.ValidateTag(s.Tag); err != nil {
			return "", err
		}
		return repoPath(s.Repo, "", "_manifests", "tags", s.Tag)
	case LayerLink:
		return repoPath(s.Repo, s.Digest, "_layers", "sha256", "<hex>", "link")
	case RevisionLink:
		return repoPath(s.Repo, s.Digest, "_manifests", "revisions", "sha256", "<hex>", "link")
	case TagCurrent:
		if err := layout.ValidateTag(s.Tag); err != nil {
			return "", err
		}
		return repoPath(s.Repo, "", "_manifests", "tags", s.Tag, "current", "link")
	case TagIndex:
		if err := layout.ValidateTag(s.Tag); err != nil {
			return "", err
		}
		return repoPath(s.Repo, s.Digest, "_manifests", "tags", s.Tag, "index", "sha256", "<hex>", "link")
	}
	return "", fmt.Errorf("unknown path spec %T: %w", spec, layout.ErrInvalid)
}

// repoPath joins a path below repositories/<repo>/; the element "<hex>" stands for the
// encoded digest d, which is validated before it is used.
func repoPath(repo string, d digest.Digest, elem ...string) (string, error) {
	if err := layout.ValidateRepo(repo); err != nil {
		return "", err
	}
	for i, e := range elem {
		if e == "<hex>" {
			if err := layout.ValidateDigest(d); err != nil {
				return "", err
			}
			elem[i] = d.Encoded()
		}
	}
	return path.Join(append([]string{StoragePrefix, "repositories", repo}, elem...)...), nil
}

// ParsePath is the inverse of PathFor for the file kinds (BlobData and the four links): it
// accepts only paths PathFor would produce, byte for byte, and ErrInvalid for anything else.
func ParsePath(p string) (PathSpec, error) {
	rest, ok := strings.CutPrefix(p, StoragePrefix+"/")
	if !ok {
		return nil, badPath(p)
	}
	parts := strings.Split(rest, "/")
	var spec PathSpec
	switch {
	case parts[0] == "blobs" && len(parts) == 5 && parts[1] == "sha256" && parts[4] == "data":
		spec = BlobData{Digest: digest.NewDigestFromEncoded(digest.SHA256, parts[3])}
	case parts[0] == "repositories":
		i := 1
		for i < len(parts) && !strings.HasPrefix(parts[i], "_") {
			i++
		}
		repo, tail := strings.Join(parts[1:i], "/"), parts[i:]
		switch {
		case len(tail) == 4 && tail[0] == "_layers" && tail[1] == "sha256" && tail[3] == "link":
			spec = LayerLink{Repo: repo, Digest: digest.NewDigestFromEncoded(digest.SHA256, tail[2])}
		case len(tail) == 5 && tail[0] == "_manifests" && tail[1] == "revisions" && tail[2] == "sha256" && tail[4] == "link":
			spec = RevisionLink{Repo: repo, Digest: digest.NewDigestFromEncoded(digest.SHA256, tail[3])}
		case len(tail) == 5 && tail[0] == "_manifests" && tail[1] == "tags" && tail[3] == "current" && tail[4] == "link":
			spec = TagCurrent{Repo: repo, Tag: tail[2]}
		case len(tail) == 7 && tail[0] == "_manifests" && tail[1] == "tags" && tail[3] == "index" && tail[4] == "sha256" && tail[6] == "link":
			spec = TagIndex{Repo: repo, Tag: tail[2], Digest: digest.NewDigestFromEncoded(digest.SHA256, tail[5])}
		}
	}
	if spec == nil {
		return nil, badPath(p)
	}
	back, err := PathFor(spec)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", p, err)
	}
	if back != p {
		return nil, badPath(p)
	}
	return spec, nil
}

// badPath is ParsePath's error for p, made only when it fails (it parses every member name).
func badPath(p string) error {
	return fmt.Errorf("path %q is not a registry blob or link path: %w", p, layout.ErrInvalid)
}

// LinkDigest is the digest a link file at spec must hold; "" for TagCurrent, whose content is
// the tagged manifest's digest.
func LinkDigest(spec PathSpec) digest.Digest {
	switch s := spec.(type) {
	case LayerLink:
		return s.Digest
	case RevisionLink:
		return s.Digest
	case TagIndex:
		return s.Digest
	}
	return ""
}
