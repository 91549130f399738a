package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
)

// TestToolPinsInCIRun checks that .ci/run and GoTools name the same pins: every pin of the
// table verbatim, and no PACKAGE@VERSION that the table lacks.
func TestToolPinsInCIRun(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	words := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(" \t\"'()", r) }) {
			words[w] = true
		}
	}
	pins := map[string]bool{}
	for _, g := range GoTools {
		pins[g.Pin()] = true
		if !words[g.Pin()] {
			t.Errorf(".ci/run does not install %s (GoTools pins it)", g.Pin())
		}
		if filepath.Base(g.Package) != g.Name {
			t.Errorf("GoTools: %s builds %s, not %s", g.Pin(), filepath.Base(g.Package), g.Name)
		}
	}
	for w := range words {
		if strings.Contains(w, "/") && strings.Contains(w, "@v") && !pins[w] {
			t.Errorf(".ci/run names %s, which GoTools does not pin", w)
		}
	}
}

// TestToolsAgainstRegistry runs the real cosign, oras and regctl against docker-registry:
// signatures and attestations (tags sha256-<hex>.sig and .att), an OCI 1.1 artifact with a
// subject (found through the tag schema: 2.8 has no referrers API) and a Helm-chart-like
// artifact.
func TestToolsAgainstRegistry(t *testing.T) {
	for _, name := range []string{"cosign", "oras", "regctl"} {
		NeedTool(t, name)
	}
	Need(t, "skopeo")
	Need(t, "docker-registry")

	c := imagetest.Standard()
	var img imagetest.Image
	for _, i := range c.Images {
		if i.MediaType == imagetest.MediaTypeOCIManifest {
			img = i
			break
		}
	}
	reg := StartRegistry(t, t.TempDir())
	dir, err := c.WriteDir(t.TempDir(), img)
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "dir:"+dir, img.Repo, img.Tag)
	byDigest := reg.Addr + "/" + img.Repo + "@" + img.Digest.String()
	byTag := reg.Ref(img.Repo, img.Tag) // the wrappers take the docker:// form too

	step := time.Now()
	lap := func(what string) {
		t.Logf("%s: %s", what, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}

	// cosign: keys, sign, verify (and fail to with the wrong key), attest.
	key, other := NewCosignKey(t), NewCosignKey(t)
	if err := key.Verify(t, byDigest); err == nil || !strings.Contains(err.Error(), "no signatures found") {
		t.Fatalf("verify before signing: %v, want \"no signatures found\"", err)
	}
	key.Sign(t, byDigest)
	if err := key.Verify(t, byTag); err != nil {
		t.Fatalf("verify after signing: %v", err)
	}
	if err := other.Verify(t, byDigest); err == nil {
		t.Fatal("verify with another key passed")
	}
	lap("cosign keys, sign, verify x3")

	sbom := filepath.Join(t.TempDir(), "sbom.spdx.json")
	spdx := `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"` + img.Name() +
		`","documentNamespace":"https://bale.invalid/spdx/` + img.Digest.Encoded() +
		`","creationInfo":{"created":"2000-01-01T00:00:00Z","creators":["Tool: bale-test"]},"packages":[]}`
	if err := os.WriteFile(sbom, []byte(spdx), 0o644); err != nil {
		t.Fatal(err)
	}
	key.Attest(t, byDigest, sbom, "spdxjson")
	if err := key.VerifyAttestation(t, byTag, "spdxjson"); err != nil {
		t.Fatalf("verify-attestation: %v", err)
	}
	if err := other.VerifyAttestation(t, byDigest, "spdxjson"); err == nil {
		t.Fatal("verify-attestation with another key passed")
	}
	lap("cosign attest, verify-attestation x2")

	tags := reg.Tags(t, img.Repo)
	for _, suffix := range []string{".sig", ".att"} {
		if want := "sha256-" + img.Digest.Encoded() + suffix; !slices.Contains(tags, want) {
			t.Errorf("tags of %s: %v, want %s among them", img.Repo, tags, want)
		}
	}

	// oras: an SBOM attached as an OCI 1.1 artifact, found again by discover.
	attached := OrasAttach(t, byTag, "application/spdx+json", sbom+":application/spdx+json")
	refs := OrasDiscover(t, byTag, "application/spdx+json")
	if len(refs) != 1 || refs[0].Digest != attached || refs[0].ArtifactType != "application/spdx+json" {
		t.Fatalf("oras discover: %+v, want one application/spdx+json referrer %s", refs, attached)
	}
	if refs[0].Annotations["org.opencontainers.image.created"] != OrasCreated {
		t.Errorf("referrer annotations %v, want created %s", refs[0].Annotations, OrasCreated)
	}
	if again := OrasAttach(t, byTag, "application/spdx+json", sbom+":application/spdx+json"); again != attached {
		t.Errorf("the same attach made %s, then %s", attached, again)
	}
	if refs := OrasDiscover(t, byTag, "application/example"); len(refs) != 0 {
		t.Errorf("oras discover of another artifact type: %+v", refs)
	}
	if !slices.Contains(reg.Tags(t, img.Repo), "sha256-"+img.Digest.Encoded()) {
		t.Errorf("oras attach left no tag-schema index sha256-%s", img.Digest.Encoded())
	}
	lap("oras attach x2, discover x2")

	// regctl: the artifact manifest as stored, and the referrers it finds.
	raw := Regctl(t, reg.Addr, "manifest", "get", "--format", "raw-body", reg.Addr+"/"+img.Repo+"@"+attached.String())
	if got := digest.FromBytes(raw); got != attached {
		t.Fatalf("regctl manifest get: bytes hash to %s, want %s", got, attached)
	}
	var artifact struct {
		ArtifactType string `json:"artifactType"`
		Subject      struct {
			Digest digest.Digest `json:"digest"`
		} `json:"subject"`
		Layers []struct {
			MediaType   string            `json:"mediaType"`
			Digest      digest.Digest     `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &artifact); err != nil {
		t.Fatal(err)
	}
	if artifact.ArtifactType != "application/spdx+json" || artifact.Subject.Digest != img.Digest ||
		len(artifact.Layers) != 1 || artifact.Layers[0].Digest != digest.FromString(spdx) ||
		artifact.Layers[0].Annotations["org.opencontainers.image.title"] != "sbom.spdx.json" {
		t.Errorf("attached manifest: %s", raw)
	}
	var index struct {
		Manifests []struct {
			Digest       digest.Digest `json:"digest"`
			ArtifactType string        `json:"artifactType"`
		} `json:"manifests"`
	}
	body := Regctl(t, reg.Addr, "artifact", "list", "--format", "body", toolRef(byTag))
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatalf("regctl artifact list --format body: %v\n%s", err, body)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != attached || index.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Errorf("regctl artifact list: %s, want %s", body, attached)
	}
	lap("regctl manifest get, artifact list")

	// oras push: a Helm chart, twice to two tags, one digest.
	config := []byte(`{"name":"demo","version":"0.1.0","apiVersion":"v2"}`)
	chartTgz := tgz(t, map[string]string{"demo/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n"})
	chart := OrasPush(t, reg.Addr+"/charts/demo:0.1.0", config, chartTgz)
	if again := OrasPush(t, reg.Addr+"/charts/demo:latest", config, chartTgz); again != chart {
		t.Errorf("the same chart pushed as %s, then %s", chart, again)
	}
	raw = Regctl(t, reg.Addr, "manifest", "get", "--format", "raw-body", reg.Addr+"/charts/demo:0.1.0")
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string        `json:"mediaType"`
			Digest    digest.Digest `json:"digest"`
		} `json:"config"`
		Layers []struct {
			MediaType string        `json:"mediaType"`
			Digest    digest.Digest `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(raw) != chart || m.ArtifactType != "" || m.Config.MediaType != HelmConfigMediaType ||
		m.Config.Digest != digest.FromBytes(config) || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != HelmChartMediaType || m.Layers[0].Digest != digest.FromBytes(chartTgz) {
		t.Errorf("chart manifest %s (digest %s): %s", reg.Addr+"/charts/demo:0.1.0", chart, raw)
	}
	lap("oras push x2, regctl manifest get")
}

// tgz returns a gzipped tar of files (name -> content), the same bytes on every call.
func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range names {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), ModTime: time.Unix(946684800, 0), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
