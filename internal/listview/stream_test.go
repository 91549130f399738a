package listview

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bale-project/bale/archive/listing"
	"github.com/bale-project/bale/catalog"
	"github.com/bale-project/bale/layout"
)

// TestListStreamTables: the tables printed as the rows come, from the widths a list member's
// header records (writeStream), are byte for byte those tabwriter prints from all the rows
// (WriteTables), whole and fitted to every terminal width from 30 to 220 columns: long
// names and tags, sparse notes (PLATFORMS keeps a short note, narrower than its target),
// referrers in one table only, pinned images, charts and files.
func TestListStreamTables(t *testing.T) {
	d := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	var ims []listing.Image
	for i := range 9 {
		im := listing.Image{Kind: layout.KindImage, Repo: strings.Repeat("team/", i%4) + fmt.Sprintf("app-%d", i), Tag: fmt.Sprintf("v1.%d.0-%s", i, strings.Repeat("rc", i)),
			Digest: d(i), MediaType: layout.MediaTypeOCIManifest, Platforms: []string{"linux/amd64"}, Size: int64(1000 * (i + 1))}
		if i%3 == 0 {
			im.MediaType, im.Platforms, im.Absent = layout.MediaTypeOCIIndex, []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}[:1+i%3], 1+i%2
		}
		if i == 4 {
			im.Tag = ""
		}
		if i%4 == 1 {
			im.Kinds = []catalog.KindCount{{Kind: "application/vnd.dev.sigstore.bundle.v0.3+json", Count: 2}, {Kind: "sig", Count: 1}}
		}
		ims = append(ims, im)
	}
	ims = append(ims,
		listing.Image{Kind: layout.KindChart, Name: "demo", Version: "0.1.3", Repo: "charts/demo", Tag: "0.1.3", Digest: d(20), Size: 4321},
		listing.Image{Kind: layout.KindChart, Name: "a-much-longer-chart-name", Repo: "charts/a-much-longer-chart-name", Digest: d(21), Size: 99},
		listing.Image{Kind: layout.KindFile, Name: "tools/kubeadm", Repo: "files/tools/kubeadm", Tag: "v1", Digest: d(30), Size: 200 << 10,
			Kinds: []catalog.KindCount{{Kind: "sig", Count: 1}}},
	)
	for _, set := range [][]listing.Image{ims, ims[:9], ims[9:], nil} {
		var h listing.Header
		h.Counts, h.Widths = listing.Measure(set)
		rows := func(fn func(listing.Image) error) error {
			for _, im := range set {
				if err := fn(im); err != nil {
					return err
				}
			}
			return nil
		}
		for _, width := range append([]int{0}, func() (ws []int) {
			for w := 30; w <= 220; w += 3 {
				ws = append(ws, w)
			}
			return ws
		}()...) {
			var whole, streamed bytes.Buffer
			wantCounts, err := WriteTables(&whole, set, width)
			if err != nil {
				t.Fatal(err)
			}
			counts, err := writeStream(&streamed, h, rows, width)
			if err != nil || counts != wantCounts || streamed.String() != whole.String() {
				t.Fatalf("%d rows at width %d: %q (%v), want %q:\n%s\nwant:\n%s", len(set), width, counts, err, wantCounts, streamed.String(), whole.String())
			}
		}
	}
}
