package testenv

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/bale-project/bale/internal/imagetest"
)

var writeSample = flag.String("write-sample", "", "push the standard corpus into docker-registry and keep its storage root at `DIR` (regenerates testdata/sample-registry)")

// TestWriteSample regenerates the committed sample registry storage:
//
//	go test ./internal/testenv -run TestWriteSample -write-sample $PWD/testdata/sample-registry
func TestWriteSample(t *testing.T) {
	if *writeSample == "" {
		t.Skip("only with -write-sample DIR")
	}
	root, err := filepath.Abs(*writeSample)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	reg := StartRegistry(t, root)
	c := imagetest.Standard()
	src := t.TempDir()
	for _, img := range c.Images {
		p, err := c.WriteDir(src, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	reg.Stop()
}
