package imagetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/testenv"
)

func TestRealWorldDeterministic(t *testing.T) {
	a, b := RealWorld(), RealWorld()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two calls to RealWorld() differ")
	}
}

// sum is the sha256 of data, computed here rather than by go-digest as the corpus does.
func sum(data []byte) digest.Digest {
	s := sha256.Sum256(data)
	return digest.Digest("sha256:" + hex.EncodeToString(s[:]))
}

// TestRealWorldShapes checks each shape RealWorld promises against BuildKit's attestation
// storage document: attestation descriptors, manifests, configs and in-toto layers; the index
// of an index; one index under three names. Every image manifest and layer is checked as the
// standard corpus's are (real tars, diff_ids, platforms matching configs).
func TestRealWorldShapes(t *testing.T) {
	c := RealWorld()
	for d, data := range c.Blobs {
		if sum(data) != d {
			t.Errorf("blob stored as %s hashes to %s", d, sum(data))
		}
	}
	referenced := map[digest.Digest]bool{}
	attestations := 0
	for _, img := range c.Images {
		referenced[img.Digest] = true
		var idx IndexJSON
		if err := json.Unmarshal(c.Blobs[img.Digest], &idx); err != nil || idx.MediaType != MediaTypeOCIIndex || img.MediaType != MediaTypeOCIIndex {
			t.Fatalf("%s: not an OCI index: %v", img.Name(), err)
		}
		var children []digest.Digest
		images := map[digest.Digest]bool{}
		seenAttestation := false
		for _, d := range idx.Manifests {
			children = append(children, d.Digest)
			data := checkDescriptor(t, c, img.Name(), d, referenced)
			switch {
			case d.MediaType == MediaTypeOCIIndex:
				var inner IndexJSON
				if err := json.Unmarshal(data, &inner); err != nil {
					t.Fatal(err)
				}
				for _, x := range inner.Manifests {
					children = append(children, x.Digest)
				}
			case d.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation:
				seenAttestation = true
				attestations++
				checkAttestation(t, c, img.Name(), d, images, referenced)
			default:
				if seenAttestation {
					t.Errorf("%s: image %s after an attestation: BuildKit lists the images first", img.Name(), d.Digest)
				}
				if d.Platform == nil || d.Platform.OS != "linux" || len(d.Annotations) != 0 {
					t.Errorf("%s: image %s: platform %+v, annotations %v", img.Name(), d.Digest, d.Platform, d.Annotations)
				}
				images[d.Digest] = true
				cfg := checkManifest(t, c, img.Name()+"@"+string(d.Digest), d.MediaType, data, referenced)
				if cfg != nil && (cfg.OS != d.Platform.OS || cfg.Architecture != d.Platform.Architecture || cfg.Variant != d.Platform.Variant) {
					t.Errorf("%s: child %s platform %+v does not match its config", img.Name(), d.Digest, *d.Platform)
				}
			}
		}
		if !reflect.DeepEqual(children, img.Children) {
			t.Errorf("%s: Children %v, the index lists %v", img.Name(), img.Children, children)
		}
	}
	for d := range c.Blobs {
		if !referenced[d] {
			t.Errorf("blob %s is not referenced by any image", d)
		}
	}
	if attestations != 2+1+3*2 { // multi 2, single 1, alpine 2 under three names
		t.Errorf("%d attestation descriptors, want 9", attestations)
	}

	outer, inner := c.ByName("shapes/nested:outer"), c.ByName("shapes/nested:inner")
	if !c.NestsIndex(outer) || c.NestsIndex(inner) || outer.Children[0] != inner.Digest {
		t.Errorf("shapes/nested:outer %v does not have the tagged inner index %s as its child", outer.Children, inner.Digest)
	}
	a, la, m := c.ByName("alpine:3.14"), c.ByName("library/alpine:3.14"), c.ByName("shapes/mirror/alpine:3.14")
	if a.Digest != la.Digest || a.Digest != m.Digest {
		t.Errorf("alpine:3.14 %s, library/alpine:3.14 %s, shapes/mirror/alpine:3.14 %s: want one manifest", a.Digest, la.Digest, m.Digest)
	}
}

// checkAttestation checks attestation descriptor d of index name as BuildKit writes it; the
// image it names must be listed before it in the index (images).
func checkAttestation(t *testing.T, c *Corpus, name string, d Descriptor, images, referenced map[digest.Digest]bool) {
	t.Helper()
	where := name + "@" + string(d.Digest)
	ref := digest.Digest(d.Annotations[AnnotationReferenceDigest])
	if d.Platform == nil || *d.Platform != (Platform{OS: "unknown", Architecture: "unknown"}) || !images[ref] || d.MediaType != MediaTypeOCIManifest {
		t.Errorf("%s: platform %+v, %s %q (an image of the index: %v), media type %s", where, d.Platform, AnnotationReferenceDigest, ref, images[ref], d.MediaType)
	}
	var m struct {
		MediaType string       `json:"mediaType"`
		Config    Descriptor   `json:"config"`
		Layers    []Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(c.Blobs[d.Digest], &m); err != nil || m.MediaType != MediaTypeOCIManifest || m.Config.MediaType != MediaTypeOCIConfig || len(m.Layers) != 1 {
		t.Fatalf("%s: %v: %s", where, err, c.Blobs[d.Digest])
	}
	var cfg struct {
		OS, Architecture string
		RootFS           RootFS `json:"rootfs"`
	}
	if err := json.Unmarshal(checkDescriptor(t, c, where, m.Config, referenced), &cfg); err != nil || cfg.OS != "unknown" || cfg.Architecture != "unknown" ||
		len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != m.Layers[0].Digest {
		t.Errorf("%s: config %+v, %v", where, cfg, err)
	}
	l := m.Layers[0]
	if l.MediaType != "application/vnd.in-toto+json" || l.Annotations["in-toto.io/predicate-type"] != "https://slsa.dev/provenance/v0.2" {
		t.Errorf("%s: layer %s of %s, annotations %v", where, l.Digest, l.MediaType, l.Annotations)
	}
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(checkDescriptor(t, c, where, l, referenced), &st); err != nil || st.Type != "https://in-toto.io/Statement/v0.1" ||
		st.PredicateType != "https://slsa.dev/provenance/v0.2" || len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != string(ref) {
		t.Errorf("%s: in-toto statement %+v, %v", where, st, err)
	}
}

// TestRealWorldPush pushes the corpus into docker-registry as the end-to-end tests do (skopeo
// copy --all --preserve-digests, the index of an index by PutManifest) and pulls each image
// back with skopeo, every manifest by its digest.
func TestRealWorldPush(t *testing.T) {
	c := RealWorld()
	reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "registry"))
	src := t.TempDir()
	for _, img := range c.Images {
		if c.NestsIndex(img) {
			if err := c.PutManifest(reg.Addr, img); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p, err := c.WriteDir(src, img)
		if err != nil {
			t.Fatal(err)
		}
		reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	for _, img := range c.Images {
		if c.NestsIndex(img) {
			raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, reg.SkopeoFlags("")...), reg.Ref(img.Repo, img.Tag))...)
			if sum(raw) != img.Digest {
				t.Errorf("%s: the registry serves %s, want %s", img.Name(), sum(raw), img.Digest)
			}
			continue
		}
		reg.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
}
