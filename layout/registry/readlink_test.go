package registry

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bale-project/bale/layout"
)

// TestReadLinkRefusesSpecialFiles checks that a link that is a FIFO or a directory is
// ErrInvalid, at once (a FIFO nobody writes must not block the read).
func TestReadLinkRefusesSpecialFiles(t *testing.T) {
	d := sha("target")
	for _, kind := range []string{"fifo", "dir"} {
		t.Run(kind, func(t *testing.T) {
			s := newStore(t)
			spec := TagCurrent{Repo: "r", Tag: "t"}
			p := mustPath(t, s, spec)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			if kind == "fifo" {
				err = syscall.Mkfifo(p, 0o644)
			} else {
				err = os.Mkdir(p, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := s.ReadLink(spec); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, layout.ErrInvalid) {
					t.Errorf("ReadLink = %v, want ErrInvalid", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadLink blocked")
			}
			if _, err := s.Resolve(layout.Ref{Repo: "r", Tag: "t"}); err == nil {
				t.Errorf("Resolve took a %s for the link of %s", kind, d)
			}
		})
	}
}
