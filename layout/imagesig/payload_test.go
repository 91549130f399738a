package imagesig

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

const testDigest = digest.Digest("sha256:4cf7cc490a6e273278358a2a5cb761c5f940141133d4bea18ec557e3378ba5f6")

// cosignPayload is the simple-signing payload cosign signs for image d, made by sigstore's own
// marshaller (what cosign sign uses), not by the parser under test.
func cosignPayload(t testing.TB, d digest.Digest) []byte {
	ref, err := name.NewDigest("registry.example/kubesphere/kube-apiserver@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(payload.Cosign{Image: ref})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParsePayload(t *testing.T) {
	raw := cosignPayload(t, testDigest)
	if err := ParsePayload(raw, testDigest); err != nil {
		t.Fatalf("cosign's payload for %s refused: %v", testDigest, err)
	}
	other := digest.FromString("another image")
	if err := ParsePayload(raw, other); err == nil || !strings.Contains(err.Error(), "not "+other.String()) {
		t.Errorf("a payload for %s accepted for %s (%v)", testDigest, other, err)
	}
	wrongType := strings.Replace(string(raw), payload.CosignSignatureType, "atomic container signature", 1)
	if err := ParsePayload([]byte(wrongType), testDigest); err == nil {
		t.Error("a payload of another type accepted")
	}
	for _, bad := range []string{"", "null", "{}", "[]", `{"critical":1}`} {
		if err := ParsePayload([]byte(bad), testDigest); err == nil {
			t.Errorf("payload %q accepted", bad)
		}
	}
}

// FuzzParsePayload: the parser never panics, and accepts a payload only when it names the
// image's digest with cosign's type.
func FuzzParsePayload(f *testing.F) {
	f.Add(cosignPayload(f, testDigest))
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"` + string(testDigest) + `"},"type":"cosign container image signature"}}`))
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":""},"image":{},"type":""},"optional":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if ParsePayload(raw, testDigest) != nil {
			return
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("accepted a payload that does not parse: %v", err)
		}
		if p.Critical.Image.DockerManifestDigest != string(testDigest) || p.Critical.Type != payload.CosignSignatureType {
			t.Fatalf("accepted %q for %s", raw, testDigest)
		}
	})
}
