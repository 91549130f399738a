package layout_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

func TestParseManifestAccepts(t *testing.T) {
	amd := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA, layerB)
	arm := imageManifest(layout.MediaTypeDockerManifest, true, cfgArm, layerA)
	ociImg := imageManifest(layout.MediaTypeOCIManifest, true, cfgArm64, layerC)
	children := []string{
		platDesc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd)), "linux", "amd64", ""),
		platDesc(layout.MediaTypeDockerManifest, sha(arm), int64(len(arm)), "linux", "arm", "v7"),
		platDesc(layout.MediaTypeOCIManifest, sha(ociImg), int64(len(ociImg)), "linux", "arm64", "v8"),
	}
	childDigests := []digest.Digest{sha(amd), sha(arm), sha(ociImg)}

	tests := []struct {
		name      string
		in        []byte
		mediaType string
		blobs     []digest.Digest // config then layers
		children  []digest.Digest
	}{
		{"docker schema2", amd, layout.MediaTypeDockerManifest,
			[]digest.Digest{cfgAmd64.digest(), layerA.digest(), layerB.digest()}, nil},
		{"docker schema2 without layers", imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64), layout.MediaTypeDockerManifest,
			[]digest.Digest{cfgAmd64.digest()}, nil},
		{"oci manifest", ociImg, layout.MediaTypeOCIManifest,
			[]digest.Digest{cfgArm64.digest(), layerC.digest()}, nil},
		{"oci manifest without mediaType", imageManifest("", false, cfgArm64, layerC, layerA), layout.MediaTypeOCIManifest,
			[]digest.Digest{cfgArm64.digest(), layerC.digest(), layerA.digest()}, nil},
		{"docker manifest list", indexManifest(layout.MediaTypeDockerManifestList, true, children[:2]...), layout.MediaTypeDockerManifestList,
			nil, childDigests[:2]},
		{"oci index", indexManifest(layout.MediaTypeOCIIndex, true, children...), layout.MediaTypeOCIIndex,
			nil, childDigests},
		{"oci index without mediaType", indexManifest("", false, children[2], children[0]), layout.MediaTypeOCIIndex,
			nil, []digest.Digest{childDigests[2], childDigests[0]}},
		{"empty oci index without mediaType", []byte(`{"schemaVersion":2,"manifests":[]}`), layout.MediaTypeOCIIndex,
			nil, nil},
		{"index child that is an index", indexManifest(layout.MediaTypeOCIIndex, true,
			desc(layout.MediaTypeOCIIndex, shaOf("x"), 1)), layout.MediaTypeOCIIndex, nil, []digest.Digest{shaOf("x")}},
		{"indented with annotations and urls", []byte("{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" + layout.MediaTypeOCIManifest +
			"\",\n  \"config\": " + cfgArm64.json() + ",\n  \"layers\": [{\"mediaType\":\"" + ociLayer + "\",\"digest\":\"" +
			string(layerC.digest()) + "\",\"size\":7,\"urls\":[\"https://example.com/c\"]}],\n  \"annotations\": {\"a\": \"b\"}\n}\n"),
			layout.MediaTypeOCIManifest, []digest.Digest{cfgArm64.digest(), layerC.digest()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := layout.ParseManifest(tt.in)
			if err != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
			if m.MediaType != tt.mediaType {
				t.Errorf("MediaType = %q, want %q", m.MediaType, tt.mediaType)
			}
			if want := sha(tt.in); m.Digest != want {
				t.Errorf("Digest = %s, want %s", m.Digest, want)
			}
			if !bytes.Equal(m.Raw, tt.in) {
				t.Errorf("Raw differs from the input")
			}
			wantDesc := layout.Descriptor{MediaType: tt.mediaType, Digest: sha(tt.in), Size: int64(len(tt.in))}
			if got := m.Descriptor(); !reflect.DeepEqual(got, wantDesc) {
				t.Errorf("Descriptor() = %+v, want %+v", got, wantDesc)
			}
			if got := digestsOf(m.Blobs()); !reflect.DeepEqual(got, tt.blobs) {
				t.Errorf("Blobs() = %v, want %v", got, tt.blobs)
			}
			if got := digestsOf(m.Manifests); !reflect.DeepEqual(got, tt.children) {
				t.Errorf("Manifests = %v, want %v", got, tt.children)
			}
			if isIndex := tt.blobs == nil; m.IsIndex() != isIndex {
				t.Errorf("IsIndex() = %v, want %v", m.IsIndex(), isIndex)
			}
			if m.IsIndex() && m.Config != nil {
				t.Errorf("index has a Config")
			}
		})
	}
}

func TestParseManifestDescriptorFields(t *testing.T) {
	amd := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA, layerB)
	m := mustParse(t, amd)
	if want := cfgAmd64.descriptor(); !reflect.DeepEqual(*m.Config, want) {
		t.Errorf("Config = %+v, want %+v", *m.Config, want)
	}
	wantLayers := []layout.Descriptor{layerA.descriptor(), layerB.descriptor()}
	if !reflect.DeepEqual(m.Layers, wantLayers) {
		t.Errorf("Layers = %+v, want %+v", m.Layers, wantLayers)
	}

	arm := imageManifest(layout.MediaTypeDockerManifest, true, cfgArm, layerA)
	idx := mustParse(t, indexManifest(layout.MediaTypeDockerManifestList, true,
		platDesc(layout.MediaTypeDockerManifest, sha(amd), int64(len(amd)), "linux", "amd64", ""),
		platDesc(layout.MediaTypeDockerManifest, sha(arm), int64(len(arm)), "linux", "arm", "v7")))
	want := []layout.Descriptor{
		{MediaType: layout.MediaTypeDockerManifest, Digest: sha(amd), Size: int64(len(amd)),
			Platform: &layout.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: layout.MediaTypeDockerManifest, Digest: sha(arm), Size: int64(len(arm)),
			Platform: &layout.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
	}
	if !reflect.DeepEqual(idx.Manifests, want) {
		t.Errorf("Manifests = %+v, want %+v", idx.Manifests, want)
	}
	if idx.Blobs() != nil {
		t.Errorf("index Blobs() = %v, want nil", idx.Blobs())
	}
}

func TestParseManifestRefuses(t *testing.T) {
	hexA := strings.Repeat("a", 64)
	withConfigDigest := func(d string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerManifest +
			`","config":{"mediaType":"` + layout.MediaTypeDockerConfig + `","digest":"` + d + `","size":2},"layers":[]}`)
	}
	withLayerDigest := func(d string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIManifest +
			`","config":` + cfgArm64.json() + `,"layers":[` + layerC.json() + `,{"mediaType":"` + ociLayer + `","digest":"` + d + `","size":2}]}`)
	}
	withChildDigest := func(d string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIIndex +
			`","manifests":[{"mediaType":"` + layout.MediaTypeOCIManifest + `","digest":"` + d + `","size":2}]}`)
	}
	schema1 := `{"schemaVersion":1,"name":"library/busybox","tag":"1","architecture":"amd64",` +
		`"fsLayers":[{"blobSum":"sha256:` + hexA + `"}],"history":[{"v1Compatibility":"{}"}]`
	huge := append(imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA), bytes.Repeat([]byte(" "), layout.MaxManifestSize)...)

	tests := []struct {
		name    string
		in      []byte
		want    error  // nil: any error
		mention string // the message must contain this
	}{
		{"schema1 unsigned", []byte(schema1 + `}`), layout.ErrUnsupported, "schema1"},
		{"schema1 signed", []byte(schema1 + `,"signatures":[{"header":{"jwk":{"crv":"P-256","kty":"EC"},"alg":"ES256"},` +
			`"signature":"abc","protected":"eyJmb3JtYXRMZW5ndGgiOjEsImZvcm1hdFRhaWwiOiJmUSJ9"}]}`), layout.ErrUnsupported, "schema1"},
		{"schema1 media type with schemaVersion 2", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerSchema1 + `"}`),
			layout.ErrUnsupported, "schema1"},
		{"schema1 signed media type", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerSchema1Signed + `"}`),
			layout.ErrUnsupported, "schema1"},
		{"artifact manifest", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json",` +
			`"artifactType":"application/x","blobs":[]}`), layout.ErrUnsupported, "application/vnd.oci.artifact.manifest.v1+json"},
		{"config media type at top level", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIConfig + `","config":` + cfgArm64.json() + `}`),
			layout.ErrUnsupported, ""},
		{"missing schemaVersion", []byte(`{"mediaType":"` + layout.MediaTypeDockerManifest + `","config":` + cfgAmd64.json() + `,"layers":[]}`),
			layout.ErrInvalid, "schemaVersion"},
		{"schemaVersion 3", []byte(`{"schemaVersion":3,"mediaType":"` + layout.MediaTypeOCIManifest + `","config":` + cfgArm64.json() + `}`),
			nil, "3"},
		{"schemaVersion 0", []byte(`{"schemaVersion":0,"config":` + cfgArm64.json() + `}`), nil, ""},
		{"schemaVersion as string", []byte(`{"schemaVersion":"2","config":` + cfgArm64.json() + `}`), layout.ErrInvalid, ""},
		{"bad JSON", []byte(`{"schemaVersion":2,`), layout.ErrInvalid, ""},
		{"empty input", []byte{}, layout.ErrInvalid, ""},
		{"JSON null", []byte(`null`), layout.ErrInvalid, ""},
		{"JSON array", []byte(`[]`), layout.ErrInvalid, ""},
		{"trailing garbage", append(imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64), '}'), layout.ErrInvalid, ""},
		{"config digest sha256:xyz", withConfigDigest("sha256:xyz"), nil, ""},
		{"config digest path traversal", withConfigDigest("sha256:../../etc"), nil, ""},
		{"config digest uppercase hex", withConfigDigest("sha256:" + strings.ToUpper(hexA)), nil, ""},
		{"config digest sha512", withConfigDigest("sha512:" + strings.Repeat("b", 128)), nil, ""},
		{"config digest empty", withConfigDigest(""), nil, ""},
		{"config digest without algorithm", withConfigDigest(hexA), nil, ""},
		{"config digest with newline", withConfigDigest("sha256:" + hexA + `\n`), nil, ""},
		{"layer digest sha256:xyz", withLayerDigest("sha256:xyz"), nil, ""},
		{"layer digest path traversal", withLayerDigest("sha256:../../etc"), nil, ""},
		{"layer digest uppercase hex", withLayerDigest("sha256:" + strings.ToUpper(hexA)), nil, ""},
		{"layer digest sha512", withLayerDigest("sha512:" + strings.Repeat("c", 128)), nil, ""},
		{"child digest path traversal", withChildDigest("sha256:../../etc"), nil, ""},
		{"child digest uppercase hex", withChildDigest("sha256:" + strings.ToUpper(hexA)), nil, ""},
		{"child digest sha512", withChildDigest("sha512:" + strings.Repeat("d", 128)), nil, ""},
		{"negative config size", []byte(`{"schemaVersion":2,"config":` + desc(layout.MediaTypeOCIConfig, cfgArm64.digest(), -1) + `}`),
			layout.ErrInvalid, "negative"},
		{"negative layer size", []byte(`{"schemaVersion":2,"config":` + cfgArm64.json() + `,"layers":[` + desc(ociLayer, layerC.digest(), -7) + `]}`),
			layout.ErrInvalid, "negative"},
		{"negative child size", indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeOCIManifest, shaOf("x"), -5)),
			layout.ErrInvalid, "negative"},
		{"index child is a layer", indexManifest(layout.MediaTypeOCIIndex, true, desc(ociLayer, layerC.digest(), 7)),
			layout.ErrUnsupported, ociLayer},
		{"index child is a config", indexManifest(layout.MediaTypeDockerManifestList, true, cfgAmd64.json()),
			layout.ErrUnsupported, layout.MediaTypeDockerConfig},
		{"index child without media type", indexManifest("", false, `{"digest":"`+string(shaOf("x"))+`","size":1}`),
			layout.ErrUnsupported, ""},
		{"index child is schema1", indexManifest(layout.MediaTypeOCIIndex, true, desc(layout.MediaTypeDockerSchema1Signed, shaOf("x"), 1)),
			layout.ErrUnsupported, ""},
		{"image manifest without config", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerManifest + `","layers":[]}`),
			layout.ErrInvalid, "config"},
		{"oci manifest without mediaType or config", []byte(`{"schemaVersion":2,"layers":[` + layerC.json() + `]}`),
			layout.ErrInvalid, "config"},
		{"image manifest with manifests", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIManifest +
			`","config":` + cfgArm64.json() + `,"manifests":[]}`), layout.ErrInvalid, ""},
		{"index with config", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeOCIIndex +
			`","config":` + cfgArm64.json() + `,"manifests":[]}`), layout.ErrInvalid, ""},
		{"index with layers", []byte(`{"schemaVersion":2,"mediaType":"` + layout.MediaTypeDockerManifestList +
			`","layers":[],"manifests":[]}`), layout.ErrInvalid, ""},
		{"larger than 4 MiB", huge, layout.ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := layout.ParseManifest(tt.in)
			if err == nil {
				t.Fatalf("ParseManifest succeeded (media type %q), want an error", m.MediaType)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %q is not %v", err, tt.want)
			}
			if !errors.Is(err, layout.ErrInvalid) && !errors.Is(err, layout.ErrUnsupported) {
				t.Errorf("error %q is neither ErrInvalid nor ErrUnsupported", err)
			}
			if tt.mention != "" && !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestParseManifestSizeLimit(t *testing.T) {
	base := imageManifest(layout.MediaTypeDockerManifest, true, cfgAmd64, layerA)
	exact := append(append([]byte{}, base...), bytes.Repeat([]byte("\n"), layout.MaxManifestSize-len(base))...)
	if len(exact) != 4<<20 {
		t.Fatalf("test input is %d bytes", len(exact))
	}
	m, err := layout.ParseManifest(exact)
	if err != nil {
		t.Fatalf("a manifest of exactly 4 MiB: %v", err)
	}
	if m.Digest != sha(exact) {
		t.Errorf("Digest = %s, want %s", m.Digest, sha(exact))
	}
	if _, err := layout.ParseManifest(append(exact, ' ')); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("a manifest of 4 MiB + 1 byte: err = %v, want ErrInvalid", err)
	}
}

func TestValidateDigest(t *testing.T) {
	hexA := strings.Repeat("a", 64)
	tests := []struct {
		d    digest.Digest
		want error // nil: valid
	}{
		{digest.Digest("sha256:" + hexA), nil},
		{shaOf(""), nil},
		{digest.Digest("sha256:" + strings.ToUpper(hexA)), layout.ErrInvalid},
		{digest.Digest("sha256:" + hexA[:63]), layout.ErrInvalid},
		{digest.Digest("sha256:" + hexA + "a"), layout.ErrInvalid},
		{digest.Digest("sha256:" + hexA + "\n"), layout.ErrInvalid},
		{digest.Digest(" sha256:" + hexA), layout.ErrInvalid},
		{digest.Digest("sha256:xyz"), layout.ErrInvalid},
		{digest.Digest("sha256:../../etc"), layout.ErrInvalid},
		{digest.Digest("sha256:"), layout.ErrInvalid},
		{digest.Digest(hexA), layout.ErrInvalid},
		{"", layout.ErrInvalid},
		// Other algorithms are refused; whether as ErrUnsupported or ErrInvalid depends on
		// whether crypto/sha512 is linked into the binary (go-digest's Available).
		{digest.Digest("sha512:" + strings.Repeat("a", 128)), errAny},
		{digest.Digest("sha384:" + strings.Repeat("a", 96)), errAny},
	}
	for _, tt := range tests {
		err := layout.ValidateDigest(tt.d)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("ValidateDigest(%q) = %v, want nil", tt.d, err)
		case tt.want == errAny && !errors.Is(err, layout.ErrUnsupported) && !errors.Is(err, layout.ErrInvalid):
			t.Errorf("ValidateDigest(%q) = %v, want ErrUnsupported or ErrInvalid", tt.d, err)
		case tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
			t.Errorf("ValidateDigest(%q) = %v, want %v", tt.d, err, tt.want)
		}
	}
}

// errAny stands for "ErrInvalid or ErrUnsupported" in tables.
var errAny = errors.New("any refusal")

func digestsOf(ds []layout.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}
