package s3store

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/registry"
)

// ListedTags lists the tags the registry lists for repo, sorted: every valid tag name with an
// object under _manifests/tags/<tag>/, a current link or not (the registry's S3 driver lists
// the "directories" under _manifests/tags/).
func (s *Store) ListedTags(repo string) ([]string, error) {
	dir, err := s.key(registry.TagsDir{Repo: repo})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	err = s.list(dir+"/", func(key string, _ int64) error {
		tag, _, ok := strings.Cut(strings.TrimPrefix(key, dir+"/"), "/")
		if ok && layout.ValidateTag(tag) == nil {
			seen[tag] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	tags := make([]string, 0, len(seen))
	for t := range seen {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	return tags, nil
}
