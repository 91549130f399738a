package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// signedSource is a docker-registry holding two images of the standard corpus with what a
// release carries beside them: cosign signatures (the single image, the index and one of its
// children), a cosign attestation, an SBOM attached with oras (listed by the referrers tag),
// a signature on that SBOM, and a provenance artifact left only as an untagged revision, as
// a registry with the referrers API keeps it.
type signedSource struct {
	reg        *testenv.Registry
	root       string
	key        *testenv.CosignKey
	single     imagetest.Image // a single image manifest
	index      imagetest.Image // a multi-arch index
	sbom, prov digest.Digest   // referrers of single: by the tag schema, untagged only
	list       string          // an images list naming single and index, nothing else
}

const (
	sbomType = "application/spdx+json"
	provType = "application/vnd.in-toto+json"
)

func newSignedSource(t *testing.T) *signedSource {
	t.Helper()
	testenv.Need(t, "skopeo")
	testenv.NeedTool(t, "cosign")
	testenv.NeedTool(t, "oras")
	s := &signedSource{root: filepath.Join(t.TempDir(), "src")}
	s.reg = testenv.StartRegistry(t, s.root)
	c := imagetest.Standard()
	for _, img := range c.Images {
		switch {
		case s.single.Repo == "" && !img.IsIndex():
			s.single = img
		case s.index.Repo == "" && img.IsIndex() && img.Repo != s.single.Repo:
			s.index = img
		}
	}
	dir := t.TempDir()
	for _, img := range []imagetest.Image{s.single, s.index} {
		p, err := c.WriteDir(dir, img)
		if err != nil {
			t.Fatal(err)
		}
		s.reg.Push(t, "dir:"+p, img.Repo, img.Tag)
	}
	s.key = testenv.NewCosignKey(t)
	single := s.reg.Ref(s.single.Repo, string(s.single.Digest))
	s.key.Sign(t, single)
	s.key.Sign(t, s.reg.Ref(s.index.Repo, string(s.index.Digest)))
	s.key.Sign(t, s.reg.Ref(s.index.Repo, string(s.index.Children[0])))
	pred := writeFile(t, dir, "predicate.json", `{"builder":"bale-test"}`)
	s.key.Attest(t, single, pred, "custom")

	// The provenance first, its referrers tag then deleted from the storage: it is left as a
	// revision only. Then the SBOM, which oras lists in a new referrers tag, and its signature.
	s.prov = testenv.OrasAttach(t, single, provType, writeFile(t, dir, "prov.json", `{"predicate":"prov"}`)+":"+provType)
	tagDir := filepath.Join(s.root, "docker/registry/v2/repositories", s.single.Repo, "_manifests/tags", "sha256-"+s.single.Digest.Encoded())
	if _, err := os.Stat(tagDir); err != nil {
		t.Fatalf("oras attach left no referrers tag: %v", err)
	}
	if err := os.RemoveAll(tagDir); err != nil {
		t.Fatal(err)
	}
	s.sbom = testenv.OrasAttach(t, single, sbomType, writeFile(t, dir, "sbom.json", `{"spdxVersion":"SPDX-2.3"}`)+":"+sbomType)
	s.key.Sign(t, s.reg.Ref(s.single.Repo, string(s.sbom)))
	if got := referrerDigests(testenv.OrasDiscover(t, single, "")); !slices.Equal(got, []digest.Digest{s.sbom}) {
		t.Fatalf("source: oras discover = %v, want only the SBOM %s (the provenance is untagged)", got, s.sbom)
	}
	s.list = writeFile(t, dir, "images.list", s.single.Name()+"\n"+s.index.Name()+"\n")
	return s
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func referrerDigests(ds []testenv.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	slices.Sort(out)
	return out
}

// checkSigned checks, with the real clients against reg, what a site needs: every cosign
// signature and the attestation verify with key, and oras discover lists wantReferrers of
// the single image.
func (s *signedSource) checkSigned(t *testing.T, where string, reg *testenv.Registry, key *testenv.CosignKey, wantReferrers []digest.Digest) {
	t.Helper()
	for _, ref := range []string{
		reg.Ref(s.single.Repo, s.single.Tag),
		reg.Ref(s.index.Repo, s.index.Tag),
		reg.Ref(s.index.Repo, string(s.index.Children[0])),
		reg.Ref(s.single.Repo, string(s.sbom)),
	} {
		if err := key.Verify(t, ref); err != nil {
			t.Errorf("%s: cosign verify %s: %v", where, ref, err)
		}
	}
	if err := key.VerifyAttestation(t, reg.Ref(s.single.Repo, s.single.Tag), "custom"); err != nil {
		t.Errorf("%s: cosign verify-attestation: %v", where, err)
	}
	slices.Sort(wantReferrers)
	if got := referrerDigests(testenv.OrasDiscover(t, reg.Ref(s.single.Repo, s.single.Tag), "")); !slices.Equal(got, wantReferrers) {
		t.Errorf("%s: oras discover = %v, want %v", where, got, wantReferrers)
	}
	if got := referrerDigests(testenv.OrasDiscover(t, reg.Ref(s.single.Repo, s.single.Tag), sbomType)); !slices.Equal(got, []digest.Digest{s.sbom}) {
		t.Errorf("%s: oras discover --artifact-type %s = %v, want the SBOM", where, sbomType, got)
	}
}

// TestSignedImages: signatures, attestations, SBOMs and an untagged referrer cross the gap
// with images named by a list, into registry storage served by docker-registry, through
// bale serve and pushed into another docker-registry; a late signature ships as a patch of a
// few KB. Everything is checked with cosign and oras.
func TestSignedImages(t *testing.T) {
	s := newSignedSource(t)
	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "release.tar.zst")
	mustBale(t, "pack", "--images", s.list, "-o", bundle, "registry:"+s.root)
	both := []digest.Digest{s.sbom, s.prov}
	t.Run("list", func(t *testing.T) {
		var out struct {
			Images []struct {
				Repo, Tag string
				Referrers []struct{ Tag, Digest, Subject, Kind string }
			}
		}
		if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", bundle).stdout), &out); err != nil {
			t.Fatal(err)
		}
		kinds := map[string][]string{}
		for _, im := range out.Images {
			for _, r := range im.Referrers {
				kinds[im.Repo+":"+im.Tag] = append(kinds[im.Repo+":"+im.Tag], r.Kind+"@"+r.Digest)
			}
		}
		if len(out.Images) != 2 {
			t.Errorf("bale list shows %d images, want the 2 of the list with their referrers under them: %+v", len(out.Images), out.Images)
		}
		got := strings.Join(kinds[s.single.Name()], " ")
		for _, want := range []string{sbomType + "@" + string(s.sbom), provType + "@" + string(s.prov), "sig@", "att@", "referrers-index@"} {
			if !strings.Contains(got, want) {
				t.Errorf("bale list: referrers of %s = %s, want %s among them", s.single.Name(), got, want)
			}
		}
		if n := strings.Count(got, "sig@"); n != 2 { // the image's and the SBOM's
			t.Errorf("bale list: %d signatures under %s, want 2: %s", n, s.single.Name(), got)
		}
		if n := strings.Count(strings.Join(kinds[s.index.Name()], " "), "sig@"); n != 2 { // the index's and a child's
			t.Errorf("bale list: %d signatures under %s, want 2", n, s.index.Name())
		}
	})

	t.Run("unpack", func(t *testing.T) {
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, bundle)
		mustBale(t, "verify", "registry:"+site)
		s.checkSigned(t, "unpacked", testenv.StartRegistry(t, site), s.key, both)
	})
	t.Run("serve", func(t *testing.T) {
		s.checkSigned(t, "served", startServe(t, bundle), s.key, both)
	})
	t.Run("Distribution v3", func(t *testing.T) {
		// The second registry kind: Distribution v3 serves the unpacked storage (it has no
		// referrers API either: clients read the referrers tag) and takes a push.
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, bundle)
		s.checkSigned(t, "unpacked, served by Distribution v3", testenv.StartDistribution3(t, site), s.key, both)
		dst := testenv.StartDistribution3(t, filepath.Join(t.TempDir(), "pushed"))
		mustBale(t, "push", "--dest-tls-verify=false", bundle, "docker://"+dst.Addr)
		s.checkSigned(t, "pushed into Distribution v3", dst, s.key, both)
	})
	t.Run("push", func(t *testing.T) {
		dst := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "pushed"))
		mustBale(t, "push", "--dest-tls-verify=false", bundle, "docker://"+dst.Addr)
		s.checkSigned(t, "pushed", dst, s.key, both)
	})
	t.Run("from a live registry", func(t *testing.T) {
		// Over the API, a registry without the referrers API shows no client the untagged
		// provenance: the rest travels.
		live := filepath.Join(t.TempDir(), "live.tar.zst")
		mustBale(t, "pack", "--src-tls-verify=false", "--images", s.list, "-o", live, "docker://"+s.reg.Addr)
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, live)
		s.checkSigned(t, "packed from docker://", testenv.StartRegistry(t, site), s.key, []digest.Digest{s.sbom})
	})
	t.Run("from a registry with the referrers API", func(t *testing.T) {
		// bale serve answers the referrers API (it passes the conformance suite's Referrers
		// test): through it, pack finds the untagged provenance too.
		served := startServe(t, bundle)
		live := filepath.Join(t.TempDir(), "api.tar.zst")
		mustBale(t, "pack", "--src-tls-verify=false", "--images", s.list, "-o", live, "docker://"+served.Addr)
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, live)
		s.checkSigned(t, "packed from bale serve", testenv.StartRegistry(t, site), s.key, both)
	})
	t.Run("every tag of a live registry", func(t *testing.T) {
		// Listed by the registry, cosign and referrers tags are their subjects' referrers,
		// not images of their own; --no-referrers leaves them out.
		for _, tt := range []struct {
			flags  []string
			images int
			sigs   bool
		}{{nil, 2, true}, {[]string{"--no-referrers"}, 2, false}} {
			out := filepath.Join(t.TempDir(), "all.tar.zst")
			mustBale(t, append(append([]string{"pack", "--src-tls-verify=false"}, tt.flags...), "-o", out, "docker://"+s.reg.Addr)...)
			var ls struct {
				Images []struct {
					Repo, Tag     string
					ReferrerKinds []struct{ Kind string }
				}
			}
			if err := json.Unmarshal([]byte(mustBale(t, "list", "--json", out).stdout), &ls); err != nil {
				t.Fatal(err)
			}
			sigs := false
			for _, im := range ls.Images {
				for _, k := range im.ReferrerKinds {
					sigs = sigs || k.Kind == "sig"
				}
			}
			if len(ls.Images) != tt.images || sigs != tt.sigs {
				t.Errorf("pack %v of every tag: %d images (want %d), signatures under them %v (want %v): %+v", tt.flags, len(ls.Images), tt.images, sigs, tt.sigs, ls.Images)
			}
		}
	})
	t.Run("no-referrers", func(t *testing.T) {
		bare := filepath.Join(t.TempDir(), "bare.tar.zst")
		mustBale(t, "pack", "--no-referrers", "--images", s.list, "-o", bare, "registry:"+s.root)
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, bare)
		reg := testenv.StartRegistry(t, site)
		err := s.key.Verify(t, reg.Ref(s.single.Repo, s.single.Tag))
		if err == nil || !strings.Contains(err.Error(), "no signatures found") {
			t.Errorf("cosign verify of an image packed with --no-referrers: %v, want no signatures found", err)
		}
	})
	t.Run("referrers-type", func(t *testing.T) {
		// Only SBOMs and cosign signatures: the provenance and the attestation stay behind,
		// and the site's referrers tag lists what was carried.
		some := filepath.Join(t.TempDir(), "some.tar.zst")
		mustBale(t, "pack", "--referrers-type", sbomType, "--referrers-type", "sig", "--images", s.list, "-o", some, "registry:"+s.root)
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, some)
		reg := testenv.StartRegistry(t, site)
		ref := reg.Ref(s.single.Repo, s.single.Tag)
		if got := referrerDigests(testenv.OrasDiscover(t, ref, "")); !slices.Equal(got, []digest.Digest{s.sbom}) {
			t.Errorf("oras discover = %v, want only the SBOM %s", got, s.sbom)
		}
		if err := s.key.Verify(t, ref); err != nil {
			t.Errorf("cosign verify: %v", err)
		}
		if err := s.key.VerifyAttestation(t, ref, "custom"); err == nil {
			t.Error("the attestation was carried, although --referrers-type names only SBOMs and signatures")
		}
		if res := bale(t, "pack", "--no-referrers", "--referrers-type", "sig", "-o", filepath.Join(t.TempDir(), "x"), "registry:"+s.root); res.code != exitUsage {
			t.Errorf("--no-referrers with --referrers-type: exit %d, want %d", res.code, exitUsage)
		}
	})
	t.Run("late signature", func(t *testing.T) {
		site := filepath.Join(t.TempDir(), "site")
		mustBale(t, "unpack", "--to", "registry:"+site, bundle)
		late := testenv.NewCosignKey(t)
		late.Sign(t, s.reg.Ref(s.single.Repo, string(s.single.Digest)))
		scan := testenv.OrasAttach(t, s.reg.Ref(s.single.Repo, string(s.single.Digest)), "application/vnd.example.scan+json",
			writeFile(t, t.TempDir(), "scan.json", `{"vulnerabilities":[]}`)+":application/vnd.example.scan+json")
		patch := filepath.Join(t.TempDir(), "patch.tar.zst")
		mustBale(t, "pack", "--base", bundle, "--images", s.list, "-o", patch, "registry:"+s.root)
		fi, err := os.Stat(patch)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 64<<10 {
			t.Errorf("the late signature's patch is %d bytes, want < 64 KiB", fi.Size())
		}
		var diff struct {
			ReferrersAdded, ReferrersChanged []struct{ Tag, New, Kind string }
		}
		if err := json.Unmarshal([]byte(mustBale(t, "diff", "--json", bundle, patch).stdout), &diff); err != nil {
			t.Fatal(err)
		}
		if len(diff.ReferrersAdded) != 1 || diff.ReferrersAdded[0].New != string(scan) {
			t.Errorf("bale diff: referrers added %+v, want the scan report %s", diff.ReferrersAdded, scan)
		}
		if len(diff.ReferrersChanged) != 2 { // the .sig tag (a second signature), the referrers tag
			t.Errorf("bale diff: referrers changed %+v, want the .sig tag and the referrers tag", diff.ReferrersChanged)
		}
		reg := testenv.StartRegistry(t, site)
		if err := late.Verify(t, reg.Ref(s.single.Repo, s.single.Tag)); err == nil {
			t.Fatal("the late signature verifies before its patch is applied")
		}
		mustBale(t, "unpack", "--to", "registry:"+site, patch)
		if err := late.Verify(t, reg.Ref(s.single.Repo, s.single.Tag)); err != nil {
			t.Errorf("late signature after the patch: %v", err)
		}
		// The referrers tag at the site now lists the new artifact beside the others.
		s.checkSigned(t, "patched", reg, s.key, append(slices.Clone(both), scan))
		t.Logf("patch with a late signature and a scan report: %d bytes", fi.Size())
	})
}
