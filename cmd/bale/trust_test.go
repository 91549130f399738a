package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bale-project/bale/internal/imagetest"
	"github.com/bale-project/bale/internal/testenv"
)

// trustChain packs the bundles of signBundles' a and a patch of a that adds b's image, signs
// a with a new cosign key, and returns them, the key pair and another key's public key.
func trustChain(t *testing.T) (a, patch, priv, pub, otherPub string) {
	t.Helper()
	a, _ = signBundles(t)
	priv, pub = cosignKey(t)
	_, otherPub = cosignKey(t)
	c := imagetest.Standard()
	both := filepath.Join(t.TempDir(), "ab")
	for _, img := range c.Images[:3] {
		if _, err := c.WriteDir(both, img); err != nil {
			t.Fatal(err)
		}
	}
	patch = filepath.Join(filepath.Dir(a), "patch.tar.zst")
	mustBale(t, "pack", "--base", a, "-o", patch, "dir:"+both)
	mustBale(t, "sign", "--key", priv, a)
	return a, patch, priv, pub, otherPub
}

// trustRefusals are the command lines (after the command and its trust flag) each command
// must refuse with exit 6: a bundle signed by another key, and a signed base with an unsigned
// patch; pub is the key that signed the base.
func trustRefusals(a, patch, pub, otherPub string) []struct {
	what string
	args []string
} {
	return []struct {
		what string
		args []string
	}{
		{"another key", []string{"--key", otherPub, a}},
		{"unsigned patch on a signed base", []string{"--key", pub, a, patch}},
	}
}

// TestTrustPush: push with the trust flags refuses (exit 6) a bundle signed by another key and
// an unsigned patch on a signed base before anything is pushed: the docker-registry it pushes
// to keeps an empty catalog. Signed by the key given, base and patch push.
func TestTrustPush(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, patch, priv, pub, otherPub := trustChain(t)
	dst := testenv.StartRegistry(t, t.TempDir())
	for _, r := range trustRefusals(a, patch, pub, otherPub) {
		args := append(append([]string{"push", "--dest-tls-verify=false"}, r.args...), "docker://"+dst.Addr)
		stderr := wantExit6(t, "push, "+r.what, args...)
		if r.what != "another key" && !strings.Contains(stderr, patch) {
			t.Errorf("push does not name the unsigned patch:\n%s", stderr)
		}
		if got := dst.Catalog(t); len(got) != 0 {
			t.Fatalf("push, %s: the registry holds %v after a refused push", r.what, got)
		}
	}
	if res := bale(t, "push", "--key", pub, "--dest-tls-verify=false", "dir:"+t.TempDir(), "docker://"+dst.Addr); res.code != exitUsage {
		t.Errorf("push --key from a dir: source: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	mustBale(t, "sign", "--key", priv, patch)
	res := mustBale(t, "push", "--key", pub, "--dest-tls-verify=false", a, patch, "docker://"+dst.Addr)
	if !strings.Contains(res.stderr, patch+": signed by key "+keyFingerprint(t, pub)) {
		t.Errorf("push does not say who signed the patch:\n%s", res.stderr)
	}
	c := imagetest.Standard()
	for _, img := range c.Images[:3] {
		dst.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
}

// TestTrustServe: serve with the trust flags refuses to start (exit 6, it never says where it
// listens) for a bundle signed by another key or an unsigned patch on a signed base; signed by
// the key given, it serves the patched release.
func TestTrustServe(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, patch, priv, pub, otherPub := trustChain(t)
	for _, r := range trustRefusals(a, patch, pub, otherPub) {
		res := baleTimeout(t, time.Minute, append([]string{"serve", "--addr", "127.0.0.1:0"}, r.args...)...)
		if res.code != exitUnsigned || strings.Contains(res.stderr, "serving") {
			t.Fatalf("serve, %s: exit %d, want %d, and no address\n%s", r.what, res.code, exitUnsigned, res.stderr)
		}
		t.Logf("serve, %s: %s", r.what, strings.TrimSpace(res.stderr))
	}
	mustBale(t, "sign", "--key", priv, patch)
	srv := startServeArgs(t, "http", "serve", "--addr", "127.0.0.1:0", "--key", pub, a, patch)
	c := imagetest.Standard()
	for _, img := range c.Images[:3] {
		srv.CheckPull(t, img.Repo, img.Tag, img.Digest, img.Children)
	}
}

// TestTrustCopy: copy from a bundle with the trust flags refuses (exit 6) a bundle signed by
// another key and an unsigned patch on a signed base before anything is written into
// registry:, dir: or oci: (the target is not even made), and so does a site policy with no
// flag; signed by the key given (or the policy's), it copies.
func TestTrustCopy(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, patch, priv, pub, otherPub := trustChain(t)
	site := t.TempDir()
	for _, kind := range []string{"registry", "dir", "oci"} {
		target := filepath.Join(site, kind)
		for _, r := range trustRefusals(a, patch, pub, otherPub) {
			wantExit6(t, "copy to "+kind+":, "+r.what, append(append([]string{"copy"}, r.args...), kind+":"+target)...)
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("copy to %s:, %s: %s exists after a refused copy (%v)", kind, r.what, target, err)
			}
		}
	}
	if res := bale(t, "copy", "--key", pub, "dir:"+t.TempDir(), "dir:"+filepath.Join(site, "x")); res.code != exitUsage {
		t.Errorf("copy --key from a dir: source: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	// A site policy (BALE_POLICY) refuses the unsigned patch with no flag given.
	t.Setenv("BALE_POLICY", writeFile(t, t.TempDir(), "policy.yaml", "bundles:\n  keys: ["+pub+"]\n"))
	wantExit6(t, "copy under a policy, unsigned patch", "copy", a, patch, "dir:"+filepath.Join(site, "dir"))
	if _, err := os.Stat(filepath.Join(site, "dir")); !os.IsNotExist(err) {
		t.Fatalf("copy under a policy wrote %s (%v)", filepath.Join(site, "dir"), err)
	}
	mustBale(t, "sign", "--key", priv, patch)
	mustBale(t, "copy", a, patch, "dir:"+filepath.Join(site, "dir")) // the policy's key signed both
	os.RemoveAll(filepath.Join(site, "dir"))
	t.Setenv("BALE_POLICY", "")
	mustBale(t, "copy", "--key", pub, a, patch, "dir:"+filepath.Join(site, "dir"))
	checkList(t, "dir:"+filepath.Join(site, "dir"), imagetest.Standard().Images[:3])
}

// baleTimeout is bale with the run killed after d (a command that should have refused and
// serves instead).
func baleTimeout(t *testing.T, d time.Duration, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, baleBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("bale %s still ran after %s (killed)\n%s", strings.Join(args, " "), d, res.stderr)
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("running bale %v: %v", args, err)
	}
	return res
}

// TestSignPack: pack --sign-key signs the bundle it writes (beside it, as bale sign does): a
// bundle, a patch of it and a split bundle each verify with the public key, and unpack --key
// takes the signed chain; a wrong COSIGN_PASSWORD fails before anything is written.
func TestSignPack(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	priv, pub := cosignKey(t)
	c := imagetest.Standard()
	dir := t.TempDir()
	one, both := filepath.Join(dir, "one"), filepath.Join(dir, "both")
	for i, img := range c.Images[:2] {
		for _, root := range []string{one, both}[i:] { // one: the first image; both: the two
			if _, err := c.WriteDir(root, img); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, patch, split := filepath.Join(dir, "a.tar.zst"), filepath.Join(dir, "patch.tar.zst"), filepath.Join(dir, "split.tar.zst")
	mustBale(t, "pack", "--sign-key", priv, "-o", a, "dir:"+one)
	mustBale(t, "pack", "--sign-key", priv, "--base", a, "-o", patch, "dir:"+both)
	mustBale(t, "pack", "--sign-key", priv, "--volume-size", "64K", "-o", split, "dir:"+both)
	fp := keyFingerprint(t, pub)
	for _, b := range []string{a, patch, split} {
		if out := mustBale(t, "verify", "--key", pub, b).stdout; !strings.Contains(out, "signed by key "+fp) || !strings.Contains(out, "covers bundle "+bundleID(t, b)) {
			t.Errorf("verify --key of %s:\n%s", b, out)
		}
	}
	if _, err := os.Stat(split + ".001.sigstore.json"); err != nil {
		t.Errorf("the split bundle's signature is not beside its first volume: %v", err)
	}
	site := filepath.Join(t.TempDir(), "site")
	mustBale(t, "unpack", "--key", pub, "--to", "registry:"+site, a, patch)
	checkList(t, "registry:"+site, c.Images[:2])

	t.Setenv("COSIGN_PASSWORD", "not the password")
	bad := filepath.Join(dir, "bad.tar.zst")
	if res := bale(t, "pack", "--sign-key", priv, "-o", bad, "dir:"+one); res.code == 0 || !strings.Contains(res.stderr, "COSIGN_PASSWORD") {
		t.Errorf("pack --sign-key with a wrong password: exit %d\n%s", res.code, res.stderr)
	}
	if m, _ := filepath.Glob(bad + "*"); len(m) != 0 {
		t.Errorf("a pack refused for its key wrote %v", m)
	}
}

// TestTrustUnpackS3: unpack into s3:// refuses (exit 6) a bundle signed by another key, and an
// unsigned patch on a signed base, before anything is written: the bucket (versitygw or MinIO,
// started by the test) holds no object afterwards; signed by the key given, it unpacks.
func TestTrustUnpackS3(t *testing.T) {
	testenv.NeedTool(t, "cosign")
	a, patch, _, pub, otherPub := trustChain(t)
	srv := testenv.StartS3(t)
	srv.SetEnv(t)
	srv.MakeBucket(t, "site")
	objects := func() int {
		out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("site")})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}
	for _, r := range trustRefusals(a, patch, pub, otherPub) {
		wantExit6(t, "unpack to s3://, "+r.what, append([]string{"unpack", "--to", "s3://site/x"}, r.args...)...)
		if n := objects(); n != 0 {
			t.Fatalf("unpack to s3://, %s: %d objects in the bucket after a refused unpack", r.what, n)
		}
	}
	mustBale(t, "unpack", "--key", pub, "--to", "s3://site/x", a)
	if objects() == 0 {
		t.Fatal("unpack --key of the signed bundle wrote nothing")
	}
}
