package layout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// TestValidateDigestAgreesWithGoDigest: ValidateDigest's fast path for sha256 (issue #19)
// accepts exactly what go-digest's Validate accepts for sha256, and keeps its errors for the rest.
func TestValidateDigestAgreesWithGoDigest(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	cases := []digest.Digest{
		digest.Digest("sha256:" + hex),
		digest.FromString("bale"),
		digest.Digest("sha256:" + strings.ToUpper(hex)),
		digest.Digest("sha256:" + hex[:63]),
		digest.Digest("sha256:" + hex + "0"),
		digest.Digest("sha256:" + hex[:63] + "g"),
		digest.Digest("sha256:" + hex[:63] + "\n"),
		digest.Digest("SHA256:" + hex),
		digest.Digest("sha512:" + hex + hex),
		digest.Digest("sha256" + hex),
		digest.Digest(""),
		digest.Digest("sha256:"),
	}
	for _, d := range cases {
		err := layout.ValidateDigest(d)
		want := d.Validate() == nil && d.Algorithm() == digest.SHA256
		if (err == nil) != want {
			t.Errorf("ValidateDigest(%q) = %v; want valid %v", d, err, want)
		}
		if err != nil && !errors.Is(err, layout.ErrInvalid) && !errors.Is(err, layout.ErrUnsupported) {
			t.Errorf("ValidateDigest(%q) = %v; want ErrInvalid or ErrUnsupported", d, err)
		}
	}
}

// BenchmarkValidateDigest: one valid sha256 digest.
func BenchmarkValidateDigest(b *testing.B) {
	d := digest.FromString("bale")
	for b.Loop() {
		if err := layout.ValidateDigest(d); err != nil {
			b.Fatal(err)
		}
	}
}
