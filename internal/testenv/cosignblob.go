package testenv

import "testing"

// EmptyTrustedRoot is a sigstore trusted root with no authorities: what cosign 2.6.1 needs as
// --trusted-root to verify a --new-bundle-format signature with a key and
// --insecure-ignore-tlog (docs: ecosystem-notes.md).
const EmptyTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

// Cosign runs the pinned cosign with args in dir, offline and without a TTY (an empty key
// password, yes to every prompt; env, e.g. COSIGN_PASSWORD=…, overrides), in a HOME of its
// own. It returns stdout, or an error naming the command with its output.
func Cosign(t testing.TB, dir string, env []string, args ...string) ([]byte, error) {
	t.Helper()
	return runTool(t, toolHome(t), dir, append(append([]string(nil), cosignEnv...), env...), "cosign", args...)
}
