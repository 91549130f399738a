package catalog

import (
	"errors"
	"fmt"
	"io"

	"github.com/bale-project/bale/layout"
)

// VerifySource checks a layout: every tag resolves, every manifest parses and matches its
// digest, and every blob is present with the right size and sha256. It returns the catalog of
// what was readable and every problem found.
func VerifySource(src layout.Source) (*Catalog, []error) {
	refs, err := src.Refs()
	if err != nil {
		return nil, []error{err}
	}
	if len(refs) == 0 {
		return nil, []error{fmt.Errorf("no tagged images: %w", layout.ErrNotFound)}
	}
	var problems []error
	c, err := FromSource(src, refs, BuildOptions{})
	var ie *ImagesError
	if errors.As(err, &ie) {
		// Verify what is readable, report what is not.
		var ok []layout.Ref
		bad := map[string]bool{}
		for _, e := range ie.Images {
			problems = append(problems, fmt.Errorf("%s: %w", e.Ref, e.Err))
			bad[e.Ref.String()] = true
		}
		for _, r := range refs {
			if !bad[r.String()] {
				ok = append(ok, r)
			}
		}
		c = New()
		if len(ok) > 0 {
			c, err = FromSource(src, ok, BuildOptions{})
		}
	}
	if err != nil {
		return nil, append(problems, err)
	}
	repoOf := c.BlobRepos()
	for _, d := range c.SortedBlobs() {
		if c.Manifests[d] != nil || c.Blobs[d].NotCarried {
			continue // manifests were verified when read; a layer not carried is not there
		}
		desc, _ := c.Descriptor(d)
		if err := verifyBlob(src, repoOf[d], desc); err != nil {
			problems = append(problems, err)
		}
	}
	return c, problems
}

func verifyBlob(src layout.Source, repo string, d layout.Descriptor) error {
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, layout.NewVerifier(rc, d)); err != nil {
		return err
	}
	return nil
}
