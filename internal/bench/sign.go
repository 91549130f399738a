package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// signTarget: signing and verifying add at most 1% to pack and unpack (issue #18).
const signTarget = 1.01

// sign: what signing adds to pack and verifying to unpack (issue #18). sign-pack is
// `bale pack --sign-key K` against `bale pack` (the pack row's run and one more), alternately,
// the faster of two each; a note gives `bale sign` of the written bundle, a process of its
// own, next to `bale --version` (a process start). sign-unpack is `bale unpack --key K.pub`
// against `bale unpack` of the same bundle unsigned, alternately, the faster of two each, and
// a note the signature check alone (checkCost). The signed bundle is S.tar.zst, removed after:
// pack --sign-key writes its signature into the bundle (bale/signatures/1.sigstore.json), and
// the other rows read B.tar.zst unsigned (serve and unpack refuse a signed bundle given no key,
// and the s3 row compares B.tar.zst byte for byte).
func (b *bench) sign() error {
	if !b.packRun.ok() {
		b.rows = append(b.rows, row{name: "sign-pack", bale: "n/a (bale pack failed)", ref: "–", ratio: "–", target: fmt.Sprintf("≤ %.2f", signTarget), result: "n/a"})
		return nil
	}
	priv, pub, err := writeBenchKey(b.work)
	if err != nil {
		return fmt.Errorf("making the signing key: %w", err)
	}
	signedPath := filepath.Join(b.work, "S.tar.zst")
	sig := signedPath + ".sigstore.json" // bale sign's, beside it
	defer b.drop(priv, pub, signedPath, sig)
	pool := "registry:" + b.pool
	plain, signed := b.packRun, (*run)(nil)
	for i := 0; i < 2; i++ {
		if i > 0 {
			pr, err := b.timed([]string{b.pool}, []string{b.bundle}, "", b.bale, "pack", "-o", b.bundle, pool)
			if err != nil {
				return err
			}
			plain = faster(plain, pr)
		}
		sr, err := b.timed([]string{b.pool}, []string{signedPath, sig}, "", b.bale, "pack", "--sign-key", priv, "-o", signedPath, pool)
		if err != nil {
			return err
		}
		signed = faster(signed, sr)
	}
	var checks []error
	if signed.ok() {
		if v := execute(b.ctx, "", b.bale, "verify", "--key", pub, signedPath); v.ok() {
			b.note("check: `%s` ok", b.show(v))
		} else {
			checks = append(checks, fmt.Errorf("`%s`: %v: %s", b.show(v), v.err, v.tail()))
		}
	}
	b.ratioRow("sign-pack", signed, "", plain, signTarget, checks)
	if i := len(b.rows) - 1; b.rows[i].ratio != "–" {
		b.rows[i].ratio += " (faster of 2 runs each)"
	}
	if !signed.ok() {
		return nil
	}
	if sr, vr := execute(b.ctx, "", b.bale, "sign", "--key", priv, signedPath), execute(b.ctx, "", b.bale, "--version"); sr.ok() && vr.ok() && plain.ok() {
		b.note("sign-pack: `bale sign --key` of the written S.tar.zst, a process of its own: %.3f s (`bale --version` alone: %.3f s), %.4f of the faster plain pack", sr.secs, vr.secs, sr.secs/plain.secs)
	}

	// unpack --key of the signed bundle against unpack of the unsigned one, alternately, the
	// faster of two each.
	var plainU, keyed *run
	for i := 0; i < 2; i++ {
		for _, withKey := range []bool{false, true} {
			argv := []string{b.bale, "unpack", "--to", "registry:" + b.unX, b.bundle}
			in := b.bundle
			if withKey {
				argv = []string{b.bale, "unpack", "--key", pub, "--to", "registry:" + b.unX, signedPath}
				in = signedPath
			}
			ur, err := b.timed([]string{in}, []string{b.unX}, "", argv...)
			if err != nil {
				return err
			}
			if withKey {
				keyed = faster(keyed, ur)
			} else {
				plainU = faster(plainU, ur)
			}
		}
	}
	checks = nil
	if keyed.ok() {
		checks = append(checks, b.verify("registry:"+b.unX), b.countNote("X (bale unpack --key)", "registry", b.unX, true))
	}
	b.drop(b.unX)
	b.ratioRow("sign-unpack", keyed, "", plainU, signTarget, checks)
	if i := len(b.rows) - 1; b.rows[i].ratio != "–" {
		b.rows[i].ratio += " (faster of 2 runs each)"
	}
	if keyed.ok() && plainU.ok() && plainU.cpu > 0 {
		b.note("sign-unpack: CPU time (user+sys) of unpack %.2f s with --key, %.2f s without: %.3f", keyed.cpu, plainU.cpu, keyed.cpu/plainU.cpu)
	}
	b.checkCost(pub, signedPath, plainU)
	return nil
}

// checkCost notes what the signature check alone costs, which the two unpacks' noise hides:
// bale list (the catalog only) of the signed bundle with --key against list of the unsigned
// one, the faster of 3 runs each, and that difference over the plain unpack.
func (b *bench) checkCost(pub, signedPath string, unpack *run) {
	var best [2]float64
	for i := 0; i < 3; i++ {
		for k, argv := range [][]string{{b.bale, "list", b.bundle}, {b.bale, "list", "--key", pub, signedPath}} {
			r := execute(b.ctx, "", argv...)
			if !r.ok() {
				b.note("`%s` failed: %v: %s", b.show(r), r.err, r.tail())
				return
			}
			if i == 0 || r.secs < best[k] {
				best[k] = r.secs
			}
		}
	}
	msg := fmt.Sprintf("sign-unpack: the signature check alone: `bale list --key` %.3f s, `bale list` %.3f s (faster of 3 each): %.3f s", best[1], best[0], best[1]-best[0])
	if unpack.ok() {
		msg += fmt.Sprintf(", %.4f of the plain unpack", (best[1]-best[0])/unpack.secs)
	}
	b.note("%s", msg)
}

// writeBenchKey writes a new ECDSA P-256 key pair, PEM PKCS#8 and PKIX (what bale sign and
// --key take), under dir.
func writeBenchKey(dir string) (priv, pub string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	pder, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", "", err
	}
	priv, pub = filepath.Join(dir, "sign.key"), filepath.Join(dir, "sign.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644); err != nil {
		return "", "", err
	}
	return priv, pub, nil
}

// faster is the faster of two runs, or the one that failed; a is nil before the first.
func faster(a, b *run) *run {
	switch {
	case a == nil || !b.ok():
		return b
	case !a.ok() || a.secs <= b.secs:
		return a
	}
	return b
}
