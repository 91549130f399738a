package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// writeList writes an image list of the corpus (repo:tag a line) and returns its path.
func writeList(t *testing.T, f *fixture) string {
	t.Helper()
	var b strings.Builder
	for _, img := range f.corpus.Images {
		b.WriteString(img.Name() + "\n")
	}
	p := filepath.Join(t.TempDir(), "images.list")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRegistryToBundleToRegistry: the whole journey with two real docker-registry instances,
// one plain http, one https with a self-signed certificate and htpasswd basic auth. Pack from
// the first (the bundle equals the one packed from its storage), push to the second under a
// prefix, pull every tag back with skopeo copy --all and compare manifest digests; a second
// push uploads nothing; wrong credentials and an untrusted certificate say what to do.
func TestRegistryToBundleToRegistry(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	srcRoot := filepath.Join(work, "src")
	mustBale(t, "copy", "registry:"+f.registry, "registry:"+srcRoot)
	a := testenv.StartRegistry(t, srcRoot)
	list := writeList(t, f)

	bundle := filepath.Join(work, "release.tar.zst")
	res := mustBale(t, "pack", "--images", list, "-o", bundle, "docker://"+a.Addr)
	t.Logf("%s", res.stderr)
	if _, err := os.Stat(bundle + ".bale-pull"); !os.IsNotExist(err) {
		t.Errorf("the pull stage %s.bale-pull is left after a successful pack", bundle)
	}
	checkList(t, bundle, f.corpus.Images)
	local := filepath.Join(work, "local.tar.zst")
	mustBale(t, "pack", "--images", list, "-o", local, "registry:"+f.registry)
	b1, _ := os.ReadFile(bundle)
	b2, _ := os.ReadFile(local)
	if !bytes.Equal(b1, b2) {
		t.Errorf("the bundle packed from docker://%s differs from the one packed from its storage (%d and %d bytes)", a.Addr, len(b1), len(b2))
	}
	// Without --images, _catalog names the images.
	all := filepath.Join(work, "all.tar.zst")
	mustBale(t, "pack", "-o", all, "docker://"+a.Addr)
	checkList(t, all, f.corpus.Images)

	// A skopeo sync YAML list: every tag of busybox (the tags list, no _catalog), a pattern.
	sync := filepath.Join(work, "sync.yaml")
	os.WriteFile(sync, []byte(a.Addr+":\n  images:\n    busybox: []\n    multiarch/pause: [\"3.2\"]\n  images-by-tag-regex:\n    kubesphere/kube-apiserver: ^v1\\.20\\.\n"), 0o644)
	picked := filepath.Join(work, "picked.tar.zst")
	mustBale(t, "pack", "--images", sync, "-o", picked, "docker://"+a.Addr)
	var want []imagetest.Image
	for _, img := range f.corpus.Images {
		if img.Repo == "busybox" || img.Name() == "multiarch/pause:3.2" || img.Name() == "kubesphere/kube-apiserver:v1.20.6" {
			want = append(want, img)
		}
	}
	checkList(t, picked, want)

	b := testenv.StartSecureRegistry(t, filepath.Join(work, "dst"), "bale", "s3cret")
	dest := "docker://" + b.Addr + "/mirror"
	auth := []string{"--dest-creds", "bale:s3cret", "--dest-cert-dir", b.Secure.CertDir}
	res = mustBale(t, append(append([]string{"push"}, auth...), bundle, dest)...)
	t.Logf("first push: %s", res.stderr)
	if strings.Contains(res.stderr, ": 0 blobs uploaded") {
		t.Errorf("first push into an empty registry uploaded nothing: %s", res.stderr)
	}
	for _, img := range f.corpus.Images {
		b.CheckPull(t, "mirror/"+img.Repo, img.Tag, img.Digest, img.Children)
	}
	res = mustBale(t, append(append([]string{"push"}, auth...), bundle, dest)...)
	t.Logf("second push: %s", res.stderr)
	if !strings.Contains(res.stderr, ": 0 blobs uploaded (0 B), 0 mounted,") {
		t.Errorf("the second push uploaded something: %s", res.stderr)
	}

	// A location pushes too, and copy reads a live registry.
	mustBale(t, append(append([]string{"push"}, auth...), "registry:"+f.registry, "docker://"+b.Addr+"/again")...)
	for _, img := range f.corpus.Images {
		b.CheckPull(t, "again/"+img.Repo, img.Tag, img.Digest, img.Children)
	}
	back := filepath.Join(work, "back")
	mustBale(t, "copy", "--src-creds", "bale:s3cret", "--src-cert-dir", b.Secure.CertDir, "docker://"+b.Addr+"/mirror", "registry:"+back)
	mustBale(t, "verify", "registry:"+back)
	checkServed(t, back, "", f.corpus.Images)

	// Credentials from a docker config.json (--dest-authfile), and an image by digest.
	authfile := filepath.Join(work, "config.json")
	os.WriteFile(authfile, []byte(`{"auths":{"`+b.Addr+`":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("bale:s3cret"))+`"}}}`), 0o600)
	pinned := f.corpus.Images[0]
	pinList := filepath.Join(work, "pinned.list")
	os.WriteFile(pinList, []byte(pinned.Repo+"@"+pinned.Digest.String()+"\n"), 0o644)
	mustBale(t, "push", "--dest-authfile", authfile, "--dest-cert-dir", b.Secure.CertDir, "--images", pinList, bundle, "docker://"+b.Addr+"/pinned")
	raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, b.SkopeoFlags("")...), "docker://"+b.Addr+"/pinned/"+pinned.Repo+"@"+pinned.Digest.String())...)
	if got := digest.FromBytes(raw); got != pinned.Digest {
		t.Errorf("the image pushed by digest with an auth file is %s, want %s", got, pinned.Digest)
	}
	pinnedBundle := filepath.Join(work, "pinned.tar.zst")
	mustBale(t, "pack", "--images", pinList, "-o", pinnedBundle, "docker://"+a.Addr)
	if ls := listJSON(t, pinnedBundle); len(ls) != 1 || ls[0].Digest != pinned.Digest.String() || ls[0].Tag != "" {
		t.Errorf("pack of %s@%s from a live registry lists %+v", pinned.Repo, pinned.Digest, ls)
	}

	wrong := bale(t, "push", "--dest-creds", "bale:wrong", "--dest-cert-dir", b.Secure.CertDir, bundle, dest)
	if wrong.code == 0 || !strings.Contains(wrong.stderr, "--dest-creds") {
		t.Errorf("push with a wrong password: exit %d, %s", wrong.code, wrong.stderr)
	}
	t.Logf("wrong password: exit %d: %s", wrong.code, wrong.stderr)
	untrusted := bale(t, "push", "--dest-creds", "bale:s3cret", bundle, dest)
	if untrusted.code == 0 || !strings.Contains(untrusted.stderr, "--dest-tls-verify=false") || !strings.Contains(untrusted.stderr, "--dest-cert-dir") {
		t.Errorf("push to an untrusted certificate: exit %d, %s", untrusted.code, untrusted.stderr)
	}
	t.Logf("untrusted certificate: exit %d: %s", untrusted.code, untrusted.stderr)
	// --dest-tls-verify=false accepts the certificate.
	mustBale(t, "push", "--dest-creds", "bale:s3cret", "--dest-tls-verify=false", bundle, dest)
}

// TestBearerToken: the token auth Harbor runs (a Bearer challenge, a token server taking basic
// credentials): push a bundle with --dest-creds, pull every tag back with skopeo, pack it back
// with --src-creds; a wrong password names the flag; the tokens came from the token server.
func TestBearerToken(t *testing.T) {
	f := getFixture(t)
	work := t.TempDir()
	reg := testenv.StartTokenRegistry(t, filepath.Join(work, "dst"), "bale", "t0ken", "localhost")
	bundle := filepath.Join(work, "release.tar.zst")
	mustBale(t, "pack", "-o", bundle, "registry:"+f.registry)
	dest := "docker://" + reg.Addr + "/library"
	mustBale(t, "push", "--dest-creds", "bale:t0ken", "--dest-cert-dir", reg.Secure.CertDir, bundle, dest)
	if reg.Secure.Token.Issued() == 0 {
		t.Fatal("the push got no token from the token server")
	}
	for _, img := range f.corpus.Images {
		reg.CheckPull(t, "library/"+img.Repo, img.Tag, img.Digest, img.Children)
	}
	back := filepath.Join(work, "back.tar.zst")
	mustBale(t, "pack", "--src-creds", "bale:t0ken", "--src-cert-dir", reg.Secure.CertDir, "--images", writeList(t, f), "-o", back, dest)
	checkList(t, back, f.corpus.Images)
	wrong := bale(t, "push", "--dest-creds", "bale:wrong", "--dest-cert-dir", reg.Secure.CertDir, bundle, dest)
	if wrong.code == 0 || !strings.Contains(wrong.stderr, "--dest-creds") {
		t.Errorf("push with a wrong password to a token registry: exit %d, %s", wrong.code, wrong.stderr)
	}
	t.Logf("wrong password, token auth: exit %d: %s", wrong.code, wrong.stderr)

	// A token server named by a private IP address that is not the registry's: refused by
	// go-containerregistry; bale says what to change.
	byIP := testenv.StartTokenRegistry(t, filepath.Join(work, "ip"), "bale", "t0ken", "127.0.0.1")
	res := bale(t, "push", "--dest-creds", "bale:t0ken", "--dest-cert-dir", byIP.Secure.CertDir, bundle, "docker://"+byIP.Addr)
	if res.code == 0 || !strings.Contains(res.stderr, "auth.token.realm") {
		t.Errorf("push to a registry whose token realm is a private IP: exit %d, %s", res.code, res.stderr)
	}
	t.Logf("token realm at a private IP: exit %d: %s", res.code, res.stderr)
}

// TestPushResumes: the registry is killed in the middle of a push, once one image is in; the
// push fails; once the registry is back, the same command completes, skipping the blobs of
// what arrived, and every tag pulls with its digest.
func TestPushResumes(t *testing.T) {
	testenv.Need(t, "skopeo")
	root := bigStore(t, 8, 24<<20)
	work := t.TempDir()
	reg := testenv.StartRegistry(t, filepath.Join(work, "dst"))
	cmd := exec.Command(baleBin, "push", "--jobs", "1", "registry:"+root, "docker://"+reg.Addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	blobs := filepath.Join(reg.Root, "docker", "registry", "v2", "blobs")
	repos := filepath.Join(reg.Root, "docker", "registry", "v2", "repositories")
	deadline := time.Now().Add(60 * time.Second)
	// Kill it once one image is complete (its tag written), the others still on their way.
	for !tagged(repos) {
		if time.Now().After(deadline) {
			t.Fatal("no image was pushed within a minute")
		}
		select {
		case err := <-done:
			t.Fatalf("the push ended before the registry was killed (%v): make the images bigger\n%s", err, stderr.String())
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	reg.Stop()
	if err := <-done; err == nil {
		t.Fatalf("the push succeeded with its registry killed:\n%s", stderr.String())
	}
	t.Logf("killed push: %s", lastLine(stderr.String()))
	had := countFiles(blobs, "data")
	reg.Restart(t)
	res := bale(t, "push", "registry:"+root, "docker://"+reg.Addr)
	if res.code != 0 {
		// The kill may land while the registry writes a manifest in place: its truncated copy
		// stays (Distribution never rewrites a blob it has), and bale must say which file it
		// is. That file must really be damaged; once an operator deletes it, the push completes.
		bad := damagedFile(t, reg.Root, res.stderr)
		t.Logf("resumed push found %s damaged by the kill, as it must say: %s", bad, res.stderr)
		os.Remove(bad)
		res = mustBale(t, "push", "registry:"+root, "docker://"+reg.Addr)
	}
	t.Logf("resumed push (%d blobs were there): %s", had, res.stderr)
	if strings.Contains(res.stderr, " 0 already there") {
		t.Errorf("the resumed push found nothing already there: %s", res.stderr)
	}
	for i := range 8 {
		repo := fmt.Sprintf("big/app-%d", i)
		want := readLink(t, tagLink(root, repo, "v1"))
		reg.CheckPull(t, repo, "v1", want, nil)
	}
}

// TestPushDamagedManifest: a registry keeps a damaged manifest (cut, as one killed while it
// wrote it leaves it; or other bytes); the push that meets it fails naming the file to
// delete, leaves the tag unwritten, and completes once the file is gone.
func TestPushDamagedManifest(t *testing.T) {
	testenv.Need(t, "skopeo")
	root := bigStore(t, 2, 64<<10)
	want := readLink(t, tagLink(root, "big/app-0", "v1"))
	for _, tc := range []struct {
		name   string
		damage func(data string) error
	}{
		{"truncated", func(data string) error { return os.Truncate(data, 0) }},
		{"other bytes", func(data string) error {
			b, err := os.ReadFile(data)
			if err != nil {
				return err
			}
			return os.WriteFile(data, append(b, '\n'), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			reg := testenv.StartRegistry(t, filepath.Join(work, "dst"))
			dest := "docker://" + reg.Addr + "/site"
			// The manifest arrives whole under site/a; then its data is damaged.
			once := filepath.Join(work, "one.list")
			os.WriteFile(once, []byte("big/app-0@"+want.String()+"\n"), 0o644)
			mustBale(t, "push", "--images", once, "registry:"+root, "docker://"+reg.Addr+"/site/a")
			data := blobData(reg.Root, want)
			if err := tc.damage(data); err != nil {
				t.Fatal(err)
			}
			res := bale(t, "push", "registry:"+root, dest)
			if res.code == 0 {
				t.Fatalf("the push over a damaged manifest succeeded:\n%s", res.stderr)
			}
			if bad := damagedFile(t, reg.Root, res.stderr); bad != data {
				t.Errorf("the error names %s, want %s", bad, data)
			}
			if _, err := os.Stat(tagLink(reg.Root, "site/big/app-0", "v1")); !os.IsNotExist(err) {
				t.Errorf("the tag of the damaged manifest was written (%v)", err)
			}
			t.Logf("push over a damaged manifest: exit %d: %s", res.code, res.stderr)
			os.Remove(data)
			mustBale(t, "push", "registry:"+root, dest)
			for i := range 2 {
				repo := fmt.Sprintf("big/app-%d", i)
				reg.CheckPull(t, "site/"+repo, "v1", readLink(t, tagLink(root, repo, "v1")), nil)
			}
		})
	}
}

// damagedFile returns the file a failed push's message tells to delete (a path under the
// registry's storage root), after checking that it is indeed not the content its path names.
func damagedFile(t *testing.T, regRoot, stderr string) string {
	t.Helper()
	const pre = "delete "
	i := strings.Index(stderr, pre)
	j := strings.Index(stderr, " under the registry's storage root")
	if !strings.Contains(stderr, "damaged copy of manifest") || i < 0 || j < i {
		t.Fatalf("the push failed without naming a damaged manifest:\n%s", stderr)
	}
	rel := stderr[i+len(pre) : j]
	p := filepath.Join(regRoot, filepath.FromSlash(rel))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the file the error names: %v", err)
	}
	if hex := filepath.Base(filepath.Dir(p)); digest.FromBytes(b).Encoded() == hex {
		t.Fatalf("%s is the content its path names, not damaged:\n%s", rel, stderr)
	}
	return p
}

// tagged reports whether some tag's current link exists under the repositories root.
func tagged(repos string) bool {
	found := false
	filepath.WalkDir(repos, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "link" && filepath.Base(filepath.Dir(p)) == "current" {
			found = true
		}
		return nil
	})
	return found
}

// countFiles counts the files called name under root.
func countFiles(root, name string) int {
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			n++
		}
		return nil
	})
	return n
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// readLink reads a registry link file.
func readLink(t *testing.T, p string) digest.Digest {
	t.Helper()
	return digest.Digest(readFile(t, p))
}

// tagLink is the current link of repo:tag in the registry storage at root.
func tagLink(root, repo, tag string) string {
	return filepath.Join(root, "docker/registry/v2/repositories", repo, "_manifests/tags", tag, "current/link")
}

// TestPushEmptyLayerLink: docker-registry killed while it wrote a blob's link in a repository
// leaves the link empty, and then answers 500 when asked whether that repository has the blob.
// A later push uploads the blob there again without asking, which writes the link anew, and
// every tag pulls.
func TestPushEmptyLayerLink(t *testing.T) {
	testenv.Need(t, "skopeo")
	root := bigStore(t, 2, 64<<10)
	reg := testenv.StartRegistry(t, filepath.Join(t.TempDir(), "dst"))
	dest := "docker://" + reg.Addr + "/site"
	mustBale(t, "push", "registry:"+root, dest)
	links, err := filepath.Glob(filepath.Join(reg.Root, "docker/registry/v2/repositories/site/big/app-0/_layers/sha256/*/link"))
	if err != nil || len(links) == 0 {
		t.Fatalf("no layer links in the registry's storage (%v)", err)
	}
	link := links[0]
	d := "sha256:" + filepath.Base(filepath.Dir(link))
	if err := os.WriteFile(link, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Head("http://" + reg.Addr + "/v2/site/big/app-0/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("docker-registry answers %s for a blob whose link is empty: this test needs the 500 it gave", resp.Status)
	}
	res := mustBale(t, "push", "registry:"+root, dest)
	t.Logf("push over an empty link: %s", res.stderr)
	if !strings.Contains(res.stderr, ": 1 blobs uploaded") {
		t.Errorf("the push did not upload the blob of the empty link once: %s", res.stderr)
	}
	if got, err := os.ReadFile(link); err != nil || string(got) != d {
		t.Errorf("the link after the push holds %q (%v), want %s", got, err, d)
	}
	for i := range 2 {
		repo := fmt.Sprintf("big/app-%d", i)
		reg.CheckPull(t, "site/"+repo, "v1", readLink(t, tagLink(root, repo, "v1")), nil)
	}
}
