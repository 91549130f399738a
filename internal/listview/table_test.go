package listview

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bale-project/bale/archive/listing"
)

// TestColumnShorten: the cut keeps the head (shortenEnd) or the head and the tail
// (shortenMiddle), ends at the width exactly, and leaves short strings alone.
func TestColumnShorten(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shorten func(string, int) string
		in      string
		width   int
		want    string
	}{
		{"end fits", shortenEnd, "busybox", 7, "busybox"},
		{"end", shortenEnd, "kubesphere/kube-proxy", 10, "kubespher…"},
		{"end one", shortenEnd, "busybox", 1, "…"},
		{"end zero", shortenEnd, "busybox", 0, ""},
		{"middle fits", shortenMiddle, "v1.20.6", 12, "v1.20.6"},
		{"middle even", shortenMiddle, "v3.1.0-20240101-linux-arm64", 12, "v3.1.0…arm64"},
		{"middle odd", shortenMiddle, "kubesphere/kube-controller-manager", 13, "kubesp…anager"},
		{"middle two", shortenMiddle, "abcdef", 2, "a…"},
		{"middle runes", shortenMiddle, "ααααββββ", 5, "αα…ββ"},
		{"platforms", shortenPlatforms, "linux/amd64,linux/arm64,linux/s390x", 16, "linux/amd64,lin…"},
		{"platforms note", shortenPlatforms, "linux/amd64,linux/arm/v7 (sparse: 1 of 2 platforms)", 40, "linux/amd64,… (sparse: 1 of 2 platforms)"},
		{"platforms short note", shortenPlatforms, "linux/amd64,linux/arm/v7 (sparse: 2 of 5 platforms)", 20, "linux/… (sparse 2/5)"},
		{"platforms no room", shortenPlatforms, "linux/amd64 (sparse: 1 of 2 platforms)", 11, "linux/amd6…"},
	} {
		got := tc.shorten(tc.in, tc.width)
		if got != tc.want {
			t.Errorf("%s: %q at %d = %q, want %q", tc.name, tc.in, tc.width, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > max(tc.width, 0) {
			t.Errorf("%s: %q is %d runes, more than %d", tc.name, got, n, tc.width)
		}
	}
}

// testColumns are list-like columns: two that shrink in the middle, two whole.
var testColumns = []Column{
	{Header: "REPOSITORY", Min: 16, Shorten: shortenMiddle},
	{Header: "TAG", Min: 12, Shorten: shortenMiddle},
	{Header: "DIGEST"},
	{Header: "SIZE"},
}

// TestColumnsFit: writeTable fits the width by shortening only the columns that may shrink,
// widest first, never below their minimum; width 0 (and a table that fits) keeps every cell.
func TestColumnsFit(t *testing.T) {
	longTag := "v1.2.3-" + strings.Repeat("0123456789", 12) + "a" // 128 characters
	if len(longTag) != 128 {
		t.Fatalf("the long tag has %d characters", len(longTag))
	}
	rows := [][]string{
		{"busybox", "latest", "sha256:1cc9828bdb71", "1.9 KiB"},
		{"kubesphere/kube-controller-manager", longTag, "sha256:0a4c4558c2fd", "2.5 KiB"},
		{"a/b", "rc_1", "sha256:7ad081014c69", "1.8 KiB"},
	}
	for _, tc := range []struct {
		name     string
		width    int
		maxWidth int  // no line wider (runes)
		cut      bool // some cell carries the Ellipsis
	}{
		{"terminal of 100", 100, 100, true},
		{"terminal of 80", 80, 80, true},
		{"wide", 0, 0, false},
		{"wide enough", 250, 0, false},
		// 16 + 12 + 19 + 7 and three gaps of 2: the minimums, wider than the terminal.
		{"narrower than the minimums", 30, 60, true},
	} {
		var b bytes.Buffer
		if err := writeTable(&b, testColumns, rows, tc.width); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(rows)+1 || !strings.HasPrefix(lines[0], "REPOSITORY") {
			t.Fatalf("%s: table:\n%s", tc.name, out)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); tc.maxWidth > 0 && n > tc.maxWidth {
				t.Errorf("%s: line of %d runes, more than %d: %q", tc.name, n, tc.maxWidth, l)
			}
		}
		if got := strings.Contains(out, Ellipsis); got != tc.cut {
			t.Errorf("%s: Ellipsis %v, want %v:\n%s", tc.name, got, tc.cut, out)
		}
		for _, row := range rows {
			for i, cell := range row {
				if testColumns[i].Shorten == nil || !tc.cut {
					if !strings.Contains(out, cell) {
						t.Errorf("%s: %q is not whole:\n%s", tc.name, cell, out)
					}
				}
			}
		}
		if tc.cut {
			// The head and the tail of the tag stay; the short cells are untouched.
			if !strings.Contains(out, "v1.2.3") || !strings.Contains(out, "789a  ") || !strings.Contains(out, "busybox ") || !strings.Contains(out, "rc_1 ") {
				t.Errorf("%s: the cut lost the head or tail, or shortened a short cell:\n%s", tc.name, out)
			}
		}
	}
	// fitColumns does not change the rows it is given.
	if fitColumns(testColumns, rows, 100); rows[1][1] != longTag {
		t.Errorf("fitColumns changed its input")
	}
}

// TestListRowsWide: the text rows of `bale list` carry the whole digest with --wide (and off a
// terminal), its short form on a terminal, and the sparse note.
func TestListRowsWide(t *testing.T) {
	d := "sha256:7ad081014c69692afc150e065d7f850ccfc4e52001f2dc4bb7ef83f1ca03b74f"
	ims := []listing.Image{
		{Repo: "a/b", Tag: "rc_1", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Platforms: []string{"linux/amd64"}, Size: 1843},
		{Repo: "multiarch/pause", Digest: d, MediaType: "application/vnd.oci.image.index.v1+json", Platforms: []string{"linux/amd64"}, Absent: 1, Size: 4300},
	}
	wide := listRows(ims, false)
	short := listRows(ims, true)
	if wide[0][2] != d || short[0][2] != "sha256:7ad081014c69" {
		t.Errorf("digest wide %q, short %q", wide[0][2], short[0][2])
	}
	if wide[1][1] != "<pinned>" || wide[1][3] != "oci-index" || wide[1][4] != "linux/amd64 (sparse: 1 of 2 platforms)" || wide[0][5] != "1.8 KiB" {
		t.Errorf("rows: %q", wide)
	}
	if got := listing.ShortDigest("abcdef0123456789"); got != "abcdef012345" {
		t.Errorf("shortDigest without an algorithm: %q", got)
	}
}
