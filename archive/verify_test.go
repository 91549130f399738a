package archive_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/layout"
)

// TestVerifyFile: a sound bundle has no problem; two blobs whose bytes were changed (size
// kept) are two digest problems naming their members, and the rest is still read; a
// truncated bundle ends the list with a malformed-bundle error.
func TestVerifyFile(t *testing.T) {
	g := newGenuine(t)
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "b.tar.zst")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, problems := archive.VerifyFile(context.Background(), write(g.bundle))
	if len(problems) != 0 || c == nil || c.Meta.ID != g.fx.catalog(t).Meta.ID {
		t.Fatalf("sound bundle: %v", problems)
	}

	ms := g.ms()
	var flipped []string
	for i := 1; i <= g.nBlobs && len(flipped) < 2; i++ {
		if m := ms[i]; len(m.body) > 0 && !strings.HasPrefix(string(m.body), "{") { // a layer, not JSON
			m.body[len(m.body)/2] ^= 1
			flipped = append(flipped, m.hdr.Name)
		}
	}
	if len(flipped) != 2 {
		t.Fatalf("the fixture has %d layers to flip", len(flipped))
	}
	_, problems = archive.VerifyFile(context.Background(), write(craft(t, ms)))
	if len(problems) != 2 {
		t.Fatalf("two flipped blobs: %d problems: %v", len(problems), problems)
	}
	for i, p := range problems {
		if !errors.Is(p, layout.ErrDigestMismatch) {
			t.Errorf("problem %d: %v, want a digest mismatch", i, p)
		}
		named := false
		for _, n := range flipped {
			named = named || strings.Contains(p.Error(), n)
		}
		if !named {
			t.Errorf("problem %d does not name a flipped member: %v", i, p)
		}
	}

	_, problems = archive.VerifyFile(context.Background(), write(g.bundle[:len(g.bundle)/2]))
	if len(problems) == 0 || !errors.Is(problems[len(problems)-1], archive.ErrBundle) {
		t.Fatalf("truncated bundle: %v, want a malformed-bundle error last", problems)
	}
}
