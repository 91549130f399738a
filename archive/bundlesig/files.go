package bundlesig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/bale-project/bale/archive"
	"github.com/bale-project/bale/catalog"
)

// Suffix ends the name of a signature file beside a bundle.
const Suffix = archive.SignatureSuffix

// maxFiles bounds the signature files beside one bundle.
const maxFiles = 99

// Base is the path signature files of the bundle at path are named after: the bundle file,
// or for a split bundle its first volume (PATH.001).
func Base(path string) string { return archive.SignatureBase(path) }

// Files returns the signature files beside the bundle at path, in order (archive.SignatureFiles):
// <base>.sigstore.json and <base>.<n>.sigstore.json (n from 2), where base is Base(path); more
// than maxFiles of them is ErrUntrusted.
func Files(path string) ([]string, error) {
	out, err := archive.SignatureFiles(path)
	if err != nil {
		return nil, err
	}
	if len(out) > maxFiles {
		return nil, fmt.Errorf("%d signature files beside %s, more than %d: %w", len(out), Base(path), maxFiles, ErrUntrusted)
	}
	return out, nil
}

// ReadFiles reads the signature files beside the bundle at path (Files).
func ReadFiles(path string) ([]Found, error) {
	names, err := Files(path)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, n := range names {
		raw, err := readSmall(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Found{Name: n, Raw: raw})
	}
	return out, nil
}

// readSmall reads the file at path, refusing one larger than a signature.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSignature+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(raw) > maxSignature {
		return nil, fmt.Errorf("%s: more than %d bytes, not a signature: %w", path, maxSignature, ErrUntrusted)
	}
	return raw, nil
}

// VerifyFile reads the catalog of the bundle at path (its head only: the id is recomputed
// from it) and checks every signature of it against t (Verify): those it carries as members
// after the catalog (bale pack --sign-key) and those beside it (bale sign), all of them.
func VerifyFile(path string, t *Trust) (*catalog.Catalog, []Signature, error) {
	c, members, err := archive.ReadSignatures(path)
	if err != nil {
		return nil, nil, err
	}
	found, err := ReadFiles(path)
	if err != nil {
		return c, nil, err
	}
	sigs, err := Verify(c, append(inFile(path, members), found...), t)
	return c, sigs, err
}

// FindAll returns every signature of the bundle at path, whose catalog c was read: the
// members it carries (read again from its head only when c records some), then the files
// beside it.
func FindAll(path string, c *catalog.Catalog) ([]Found, error) {
	var out []Found
	if len(c.Meta.Signatures) > 0 {
		rc, members, err := archive.ReadSignatures(path)
		if err != nil {
			return nil, err
		}
		if rc.Meta.ID != c.Meta.ID {
			return nil, fmt.Errorf("%s changed while it was read (bundle %s, then %s): %w", path, c.Meta.ID, rc.Meta.ID, archive.ErrBundle)
		}
		out = inFile(path, members)
	}
	beside, err := ReadFiles(path)
	if err != nil {
		return nil, err
	}
	return append(out, beside...), nil
}

// FindWith is FindAll for a bundle whose signature members were read already (members,
// from its head): those, then the signatures beside it.
func FindWith(path string, members []archive.SignatureMember) ([]Found, error) {
	beside, err := ReadFiles(path)
	if err != nil {
		return nil, err
	}
	return append(inFile(path, members), beside...), nil
}

// Signed reports whether the bundle at path has any signature, in it or beside it, reading
// no more than the member headers at its head (the catalog is decompressed, not parsed).
func Signed(path string) (bool, error) {
	files, err := Files(path)
	if err != nil || len(files) > 0 {
		return len(files) > 0, err
	}
	return archive.CarriesSignatures(path)
}

// inFile names the signature members of the bundle at path as Found.
func inFile(path string, members []archive.SignatureMember) []Found {
	out := make([]Found, len(members))
	for i, m := range members {
		out[i] = Found{Name: m.Name + " in " + path, Raw: m.Raw}
	}
	return out
}

// WriteFile writes sig, a signature of the bundle at path, beside it: over the file of a
// signature with the same public key hint or certificate (a re-signing replaces it), else
// as the first free name of <base>.sigstore.json, <base>.2.sigstore.json, …. It writes a
// temporary file in the same directory and renames it into place. It returns the path.
func WriteFile(path string, sig []byte) (string, error) {
	base := Base(path)
	existing, err := Files(path)
	if err != nil {
		return "", err
	}
	target := ""
	signer := signerOf(sig)
	for _, e := range existing {
		raw, err := readSmall(e)
		if err == nil && signer != "" && signerOf(raw) == signer {
			target = e
			break
		}
	}
	if target == "" {
		taken := map[string]bool{}
		for _, e := range existing {
			taken[e] = true
		}
		for n := 1; n <= maxFiles && target == ""; n++ {
			if p := archive.SignatureFileName(base, n); !taken[p] {
				if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
					target = p
				}
			}
		}
		if target == "" {
			return "", fmt.Errorf("%d signature files beside %s already", maxFiles, base)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(base), ".bale-tmp-*"+Suffix)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(sig); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", err
	}
	return target, nil
}

// signerOf names the signer of signature raw for WriteFile: its public key hint or its
// certificate's bytes; "" when raw is not a sigstore bundle.
func signerOf(raw []byte) string {
	var b bundle.Bundle
	if b.UnmarshalJSON(raw) != nil {
		return ""
	}
	vm := b.GetVerificationMaterial()
	if pk := vm.GetPublicKey(); pk != nil && pk.GetHint() != "" {
		return "hint:" + pk.GetHint()
	}
	if c := vm.GetCertificate(); c != nil {
		return "cert:" + string(c.GetRawBytes())
	}
	return ""
}
