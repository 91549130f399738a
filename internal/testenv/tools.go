package testenv

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// GoTool is a Go-built OCI 1.1 client that tests run for real, pinned to one version.
type GoTool struct {
	Name    string // binary name
	Package string // main package path, the argument of go install without @VERSION
	Version string // module version
}

// Pin returns "PACKAGE@VERSION", what go install builds.
func (g GoTool) Pin() string { return g.Package + "@" + g.Version }

// InstallCommand returns the command that builds the pinned tool into $GOBIN ($HOME/go/bin
// by default).
func (g GoTool) InstallCommand() string { return "go install " + g.Pin() }

// GoTools is the one table of pinned tools. .ci/run installs exactly these pins
// (TestToolPinsInCIRun checks that it names each one verbatim).
var GoTools = []GoTool{
	{Name: "cosign", Package: "github.com/sigstore/cosign/v2/cmd/cosign", Version: "v2.6.1"},
	{Name: "oras", Package: "oras.land/oras/cmd/oras", Version: "v1.3.6"},
	{Name: "regctl", Package: "github.com/regclient/regclient/cmd/regctl", Version: "v0.11.7"},
	{Name: "conformance", Package: "github.com/opencontainers/distribution-spec/conformance", Version: "v0.0.0-20260831232431-97274622c111"},
	// versitygw is the S3 server of the s3:// tests (StartS3): ~1 min to build, against ~5 for MinIO.
	{Name: "versitygw", Package: "github.com/versity/versitygw/cmd/versitygw", Version: "v1.8.0"},
	// registry is Distribution v3, the second registry kind of the tests (StartDistribution3).
	{Name: "registry", Package: "github.com/distribution/distribution/v3/cmd/registry", Version: "v3.1.2"},
	// minio: what only MinIO has (bucket quotas, STS session policies) for the s3:// error
	// tests (StartMinIO); ~5 min to build.
	{Name: "minio", Package: "github.com/minio/minio", Version: "v0.0.0-20260212201848-7aac2a2c5b7c"},
	// helm: the chart tests (helm package, repo index, push, pull, template).
	{Name: "helm", Package: "helm.sh/helm/v3/cmd/helm", Version: "v3.21.4"},
}

// ToolTimeout bounds every run of a pinned tool.
const ToolTimeout = 2 * time.Minute

// foundTool is where a pinned tool was found and what it was built from.
type foundTool struct {
	path  string
	built string // "PACKAGE@VERSION" from the binary's build info, "" when it has none
	err   error
}

var (
	foundMu    sync.Mutex
	foundTools = map[string]foundTool{}
)

// NeedTool returns the absolute path of the pinned tool name (a GoTools entry), looked for
// on PATH, then in $GOBIN, each $GOPATH/bin and $HOME/go/bin, preferring a binary built from
// the pinned version. When it is absent the test is skipped with the go install line to run;
// under CI (where .ci/run installs it) that, and a binary of another version, fail the test.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	var tool GoTool
	for _, g := range GoTools {
		if g.Name == name {
			tool = g
		}
	}
	if tool.Name == "" {
		t.Fatalf("NeedTool(%q): not a pinned tool (add it to GoTools and .ci/run)", name)
	}
	foundMu.Lock()
	f, ok := foundTools[name]
	if !ok {
		f = findTool(tool)
		foundTools[name] = f
	}
	foundMu.Unlock()
	ci := os.Getenv("CI") != ""
	if f.err != nil {
		if ci {
			t.Fatalf("%s not found under CI (%v); .ci/run must run: %s", name, f.err, tool.InstallCommand())
		}
		t.Skipf("%s not found (%v); install it with: %s", name, f.err, tool.InstallCommand())
	}
	if f.built != tool.Pin() {
		built := "built from " + f.built
		if f.built == "" {
			built = "without Go build info"
		}
		if ci {
			t.Fatalf("%s is %s, not the pinned %s; .ci/run must run: %s", f.path, built, tool.Pin(), tool.InstallCommand())
		}
		t.Logf("warning: %s is %s, not the pinned %s; to get that: %s", f.path, built, tool.Pin(), tool.InstallCommand())
	}
	return f.path
}

// findTool looks for tool's binary; the first candidate built from the pin wins, else the first found.
func findTool(tool GoTool) foundTool {
	var gobins []string // where go install puts binaries
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		gobins = append(gobins, gobin)
	}
	for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
		if gp != "" {
			gobins = append(gobins, filepath.Join(gp, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		gobins = append(gobins, filepath.Join(home, "go", "bin"))
	}
	dirs := gobins
	if p, err := exec.LookPath(tool.Name); err == nil {
		dirs = append([]string{filepath.Dir(p)}, gobins...)
	}
	var first *foundTool
	for _, dir := range dirs {
		p, err := filepath.Abs(filepath.Join(dir, tool.Name))
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			continue
		}
		f := foundTool{path: p}
		if info, err := buildinfo.ReadFile(p); err == nil {
			f.built = info.Path + "@" + info.Main.Version
		}
		if f.built == tool.Pin() {
			return f
		}
		if first == nil {
			first = &f
		}
	}
	if first != nil {
		return *first
	}
	return foundTool{err: fmt.Errorf("not on PATH nor in %s", strings.Join(gobins, ", "))}
}

// toolHome returns a fresh directory to serve as HOME, DOCKER_CONFIG and the XDG
// directories of one tool run, so that no run reads the developer's credentials or config.
func toolHome(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{".docker", ".config", ".cache", ".local/share", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// toolEnv is the environment of a tool run: PATH, TMPDIR and the locale from ours, the
// rest (HOME, DOCKER_CONFIG, XDG_*) pointing into home; no credential, proxy or tool
// variable of the developer's gets through.
func toolEnv(home string) []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "TZ", "LANG", "LC_ALL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"HOME="+home,
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
	)
}

// runTool runs the pinned tool name with args in dir (home when ""), with toolEnv(home)
// plus env, no stdin and ToolTimeout. It returns stdout; the error names the command and
// carries stdout and stderr.
func runTool(t testing.TB, home, dir string, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	bin := NeedTool(t, name)
	if dir == "" {
		dir = home
	}
	ctx, cancel := context.WithTimeout(context.Background(), ToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(toolEnv(home), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after %s)", err, ToolTimeout)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w (after %s)\nstdout:\n%s\nstderr:\n%s",
			name, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// mustRunTool is runTool that fails the test on error.
func mustRunTool(t testing.TB, home, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := runTool(t, home, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toolRef turns "docker://HOST/REPO:TAG" (Registry.Ref's form) into the "HOST/REPO:TAG"
// the tools take; other references are returned as they are.
func toolRef(ref string) string { return strings.TrimPrefix(ref, "docker://") }

// CosignKey is a cosign key pair with an empty password, in its own directory.
type CosignKey struct {
	PrivateKey string // path of cosign.key
	PublicKey  string // path of cosign.pub
}

// cosignEnv makes cosign run without a TTY (an empty key password, yes to every prompt)
// and offline: verify and verify-attestation fetch Sigstore's trusted root from its TUF
// CDN even with --key and --insecure-ignore-tlog (a DNS lookup, then a warning), unless
// the mirror is one without a cached root.json, which fails before any connection.
var cosignEnv = []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "TUF_MIRROR=http://127.0.0.1:9"}

// cosignRegistryFlags let cosign reach plain-HTTP and self-signed registries.
var cosignRegistryFlags = []string{"--allow-http-registry", "--allow-insecure-registry"}

// NewCosignKey runs cosign generate-key-pair in a new directory under t.TempDir().
func NewCosignKey(t testing.TB) *CosignKey {
	t.Helper()
	dir := t.TempDir()
	mustRunTool(t, toolHome(t), dir, cosignEnv, "cosign", "generate-key-pair")
	k := &CosignKey{PrivateKey: filepath.Join(dir, "cosign.key"), PublicKey: filepath.Join(dir, "cosign.pub")}
	for _, p := range []string{k.PrivateKey, k.PublicKey} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cosign generate-key-pair: %v", err)
		}
	}
	return k
}

// ImportCosignKey makes a cosign key pair of the PEM private key at pemKey (cosign
// import-key-pair): for keys generate-key-pair does not make, such as ECDSA P-384.
func ImportCosignKey(t testing.TB, pemKey string) *CosignKey {
	t.Helper()
	dir := t.TempDir()
	mustRunTool(t, toolHome(t), dir, cosignEnv, "cosign", "import-key-pair", "--key", pemKey, "--output-key-prefix", "imported")
	k := &CosignKey{PrivateKey: filepath.Join(dir, "imported.key"), PublicKey: filepath.Join(dir, "imported.pub")}
	for _, p := range []string{k.PrivateKey, k.PublicKey} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cosign import-key-pair: %v", err)
		}
	}
	return k
}

// Sign signs the image ref (HOST/REPO@DIGEST or :TAG, "docker://" allowed) with k, without
// the transparency log; cosign stores the signature as tag sha256-<hex>.sig in the repository.
func (k *CosignKey) Sign(t testing.TB, ref string) {
	t.Helper()
	args := append([]string{"sign", "--key", k.PrivateKey, "--tlog-upload=false", "-y"}, cosignRegistryFlags...)
	mustRunTool(t, toolHome(t), "", cosignEnv, "cosign", append(args, toolRef(ref))...)
}

// SignNewBundle signs ref like Sign, in the sigstore bundle format (cosign sign
// --new-bundle-format): an OCI 1.1 referrer of artifact type
// application/vnd.dev.sigstore.bundle.v0.3+json, listed in the referrers tag sha256-<hex> on a
// registry without the referrers API.
func (k *CosignKey) SignNewBundle(t testing.TB, ref string) {
	t.Helper()
	args := append([]string{"sign", "--new-bundle-format", "--key", k.PrivateKey, "--tlog-upload=false", "-y"}, cosignRegistryFlags...)
	mustRunTool(t, toolHome(t), "", cosignEnv, "cosign", append(args, toolRef(ref))...)
}

// VerifyNewBundle runs cosign verify --new-bundle-format of ref against k's public key: cosign
// 2.6.1 does so with a key only given a trusted root, here one with no authorities, and
// --insecure-ignore-tlog. It returns cosign's error with its output.
func (k *CosignKey) VerifyNewBundle(t testing.TB, ref string, flags ...string) error {
	t.Helper()
	home := toolHome(t)
	root := filepath.Join(home, "trusted_root.json")
	if err := os.WriteFile(root, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"verify", "--new-bundle-format", "--key", k.PublicKey, "--trusted-root", root, "--insecure-ignore-tlog"}, cosignRegistryFlags...), flags...)
	_, err := runTool(t, home, "", cosignEnv, "cosign", append(args, toolRef(ref))...)
	return err
}

// Attest attaches an in-toto attestation of predicateFile, of predicate type typ
// (slsaprovenance, spdxjson, cyclonedx, custom or a URI, as cosign attest --type takes),
// to ref, signed with k and without the transparency log (tag sha256-<hex>.att).
func (k *CosignKey) Attest(t testing.TB, ref, predicateFile, typ string) {
	t.Helper()
	args := append([]string{"attest", "--key", k.PrivateKey, "--predicate", predicateFile, "--type", typ, "--tlog-upload=false", "-y"}, cosignRegistryFlags...)
	mustRunTool(t, toolHome(t), "", cosignEnv, "cosign", append(args, toolRef(ref))...)
}

// Verify runs cosign verify of ref against k's public key, ignoring the transparency log.
// It returns cosign's error with its output (e.g. "no signatures found") instead of
// failing the test.
func (k *CosignKey) Verify(t testing.TB, ref string, flags ...string) error {
	t.Helper()
	args := append(append([]string{"verify", "--key", k.PublicKey, "--insecure-ignore-tlog"}, cosignRegistryFlags...), flags...)
	_, err := runTool(t, toolHome(t), "", cosignEnv, "cosign", append(args, toolRef(ref))...)
	return err
}

// VerifyAttestation runs cosign verify-attestation of ref for predicate type typ against
// k's public key, ignoring the transparency log; it returns cosign's error with its output.
func (k *CosignKey) VerifyAttestation(t testing.TB, ref, typ string) error {
	t.Helper()
	args := append([]string{"verify-attestation", "--key", k.PublicKey, "--type", typ, "--insecure-ignore-tlog"}, cosignRegistryFlags...)
	_, err := runTool(t, toolHome(t), "", cosignEnv, "cosign", append(args, toolRef(ref))...)
	return err
}

// OrasCreated is the org.opencontainers.image.created annotation OrasPush and OrasAttach
// give their manifests (oras would write the current time), so the same files always make
// the same manifest digest.
const OrasCreated = "2000-01-01T00:00:00Z"

// Media types of a Helm chart in a registry, as OrasPush pushes it.
const (
	HelmConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// orasPushed is what oras push and oras attach print with --format json.
type orasPushed struct {
	Reference string        `json:"reference"`
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// orasFiles splits each "PATH[:MEDIATYPE]" (oras's spelling: the last ':' starts the media
// type, so a path holding ':' ends with ':') into the directory all paths share and the
// arguments relative to it: oras records each name as the layer's title annotation and
// refuses absolute paths.
func orasFiles(t testing.TB, files []string) (string, []string) {
	t.Helper()
	dir := ""
	var args []string
	for _, f := range files {
		path, mt := f, ""
		if i := strings.LastIndex(f, ":"); i >= 0 {
			path, mt = f[:i], f[i+1:]
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		if d := filepath.Dir(abs); dir == "" {
			dir = d
		} else if d != dir {
			t.Fatalf("oras files must share one directory (their names become layer titles): %s is not in %s", f, dir)
		}
		arg := filepath.Base(abs)
		if mt != "" || strings.Contains(arg, ":") {
			arg += ":" + mt
		}
		args = append(args, arg)
	}
	return dir, args
}

// orasPush runs an oras command that pushes a manifest (push or attach) with --format json
// and returns the digest it printed, checked to be a valid digest.
func orasPush(t testing.TB, dir string, args ...string) digest.Digest {
	t.Helper()
	out := mustRunTool(t, toolHome(t), dir, nil, "oras", args...)
	var p orasPushed
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("oras %s: output is not JSON: %v\n%s", args[0], err, out)
	}
	if err := p.Digest.Validate(); err != nil {
		t.Fatalf("oras %s: digest %q: %v\n%s", args[0], p.Digest, err, out)
	}
	return p.Digest
}

// OrasAttach attaches files ("PATH[:MEDIATYPE]", all in one directory) to ref as an OCI 1.1
// artifact of artifactType over plain HTTP, and returns the digest of the artifact manifest
// (oras attach --format json). On a registry without the referrers API, oras also updates
// the tag-schema index, tag sha256-<hex of the subject>.
func OrasAttach(t testing.TB, ref, artifactType string, files ...string) digest.Digest {
	t.Helper()
	args := []string{"attach", "--plain-http", "--format", "json", "--artifact-type", artifactType,
		"--annotation", "org.opencontainers.image.created=" + OrasCreated, toolRef(ref)}
	dir := ""
	if len(files) > 0 {
		var names []string
		dir, names = orasFiles(t, files)
		args = append(args, names...)
	}
	return orasPush(t, dir, args...)
}

// OrasPush pushes a Helm-chart-like artifact to ref (HOST/REPO:TAG) over plain HTTP, as
// helm push lays it out: an image manifest with config of HelmConfigMediaType and one layer
// of HelmChartMediaType (titled chart.tgz), no artifactType; it returns the manifest digest.
func OrasPush(t testing.TB, ref string, config, chart []byte) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chart.tgz"), chart, 0o644); err != nil {
		t.Fatal(err)
	}
	return orasPush(t, dir, "push", "--plain-http", "--format", "json",
		"--annotation", "org.opencontainers.image.created="+OrasCreated,
		"--config", "config.json:"+HelmConfigMediaType, toolRef(ref), "chart.tgz:"+HelmChartMediaType)
}

// Descriptor is a manifest as oras discover --format json lists it, with its own referrers.
type Descriptor struct {
	Reference    string            `json:"reference"` // HOST/REPO@DIGEST
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Referrers    []Descriptor      `json:"referrers,omitempty"`
}

// OrasDiscover lists the referrers of ref (over plain HTTP; the referrers API or, where
// the registry lacks it, the tag schema), only those of artifactType unless it is "".
// Each referrer carries its own referrers.
func OrasDiscover(t testing.TB, ref, artifactType string) []Descriptor {
	t.Helper()
	args := []string{"discover", "--plain-http", "--format", "json"}
	if artifactType != "" {
		args = append(args, "--artifact-type", artifactType)
	}
	out := mustRunTool(t, toolHome(t), "", nil, "oras", append(args, toolRef(ref))...)
	var subject Descriptor
	if err := json.Unmarshal(out, &subject); err != nil {
		t.Fatalf("oras discover %s: output is not JSON: %v\n%s", ref, err, out)
	}
	var check func([]Descriptor)
	check = func(ds []Descriptor) {
		for _, d := range ds {
			if err := d.Digest.Validate(); err != nil {
				t.Fatalf("oras discover %s: referrer digest %q: %v\n%s", ref, d.Digest, err, out)
			}
			check(d.Referrers)
		}
	}
	check(subject.Referrers)
	return subject.Referrers
}

// Regctl runs regctl args... and returns its stdout, failing the test on error. Its
// configuration is a fresh file (REGCTL_CONFIG, never ~/.regctl) in which host
// ("127.0.0.1:PORT"; none when "") is set to plain HTTP (regctl registry set --tls disabled).
func Regctl(t testing.TB, host string, args ...string) []byte {
	t.Helper()
	home := toolHome(t)
	env := []string{"REGCTL_CONFIG=" + filepath.Join(home, ".regctl", "config.json")}
	if host != "" {
		mustRunTool(t, home, "", env, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", host)
	}
	return mustRunTool(t, home, "", env, "regctl", args...)
}
