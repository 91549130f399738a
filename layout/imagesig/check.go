package imagesig

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// ErrUnsigned marks images without a valid signature by one of the keys: callers test it
// (bale exits 6).
var ErrUnsigned = errors.New("no valid image signature")

// Failure is one image without a valid signature, and why each signature it has was refused.
type Failure struct {
	Ref    layout.Ref
	Digest digest.Digest
	// Reasons say why each signature found was refused; empty when none was found.
	Reasons []string
}

// String names the image and why it failed.
func (f Failure) String() string {
	if len(f.Reasons) == 0 {
		return fmt.Sprintf("%s (%s): no cosign signature", f.Ref, f.Digest)
	}
	return fmt.Sprintf("%s (%s): %s", f.Ref, f.Digest, strings.Join(f.Reasons, "; "))
}

// Error is every image of a check without a valid signature; it wraps ErrUnsigned.
type Error struct {
	Failures []Failure
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		lines[i] = "  " + f.String()
	}
	return fmt.Sprintf("%d image(s) without a valid signature by the signers given (--image-key, --image-certificate-identity):\n%s", len(e.Failures), strings.Join(lines, "\n"))
}

// Unwrap makes errors.Is(err, ErrUnsigned) true.
func (e *Error) Unwrap() error { return ErrUnsigned }

// Signed is one image with a valid signature: which key made it and where it is.
type Signed struct {
	Ref    layout.Ref
	Digest digest.Digest
	Key    string // the key file, or the certificate identity and issuer
	By     string // the cosign tag or the bundle referrer's digest
}

// candidate is one signature manifest found for an image.
type candidate struct {
	ref    layout.Ref // the cosign tag, or the referrer by digest
	img    *layout.Image
	bundle bool // a sigstore bundle referrer; else a cosign .sig tag
}

// Check checks that every image refs names in src (every image of src when refs is empty,
// cosign and referrers tags aside: they are the signatures) has a valid signature by one of
// the keys among its referrers, found as bale finds them to carry (layout.FindReferrers). It
// returns the signed images, and an *Error naming every other one (ErrUnsigned); any other
// error is one reading src. Nothing but manifests and the signatures' small blobs is read.
func (k *Keys) Check(src layout.Source, refs []layout.Ref) ([]Signed, error) {
	images, err := layout.ResolveImages(src, refs, nil)
	if err != nil {
		return nil, err
	}
	images = layout.MarkReferrers(layout.WithoutReferrerTags(images))
	var subjects []layout.Resolved
	for _, r := range images {
		if _, _, tag := layout.ParseReferrerTag(r.Ref.Tag); !r.Referrer && !tag {
			subjects = append(subjects, r)
		}
	}
	found, err := layout.FindReferrers(src, subjects, layout.ReferrerOptions{})
	if err != nil {
		return nil, err
	}
	bySubject := map[string][]candidate{} // repo@digest -> its signatures
	for _, r := range found {
		if subject, suffix, ok := layout.ParseReferrerTag(r.Ref.Tag); ok && suffix == "sig" {
			k := r.Ref.Repo + "@" + subject.String()
			bySubject[k] = append(bySubject[k], candidate{ref: r.Ref, img: r.Image})
		} else if r.Referrer && r.Image.Manifest.Subject != nil && isBundleType(r.Image.Manifest.ReferrerDescriptor().ArtifactType) {
			k := r.Ref.Repo + "@" + r.Image.Manifest.Subject.Digest.String()
			bySubject[k] = append(bySubject[k], candidate{ref: r.Ref, img: r.Image, bundle: true})
		}
	}
	var (
		signed []Signed
		failed []Failure
	)
	for _, r := range subjects {
		d := r.Image.Digest()
		s, reasons, err := k.checkImage(src, r.Ref.Repo, d, bySubject[r.Ref.Repo+"@"+d.String()])
		if err != nil {
			return nil, fmt.Errorf("checking the signatures of %s: %w", r.Ref, err)
		}
		if s != nil {
			s.Ref = r.Ref
			signed = append(signed, *s)
			continue
		}
		failed = append(failed, Failure{Ref: r.Ref, Digest: d, Reasons: reasons})
	}
	if len(failed) > 0 {
		return signed, &Error{Failures: failed}
	}
	return signed, nil
}

// checkImage tries the signatures cands of image d of repo with every key: the first that
// verifies signs it; otherwise reasons say why each was refused. err is a failure to read src.
func (k *Keys) checkImage(src layout.Source, repo string, d digest.Digest, cands []candidate) (*Signed, []string, error) {
	var reasons []string
	for _, c := range cands {
		var (
			key string
			err error
		)
		if c.bundle {
			key, err = k.checkBundle(src, repo, d, c.img)
		} else {
			key, err = k.checkSimpleSigning(src, repo, d, c.img)
		}
		var bad *badSignature
		switch {
		case err == nil:
			return &Signed{Digest: d, Key: key, By: c.ref.String()}, nil, nil
		case errors.As(err, &bad):
			reasons = append(reasons, fmt.Sprintf("%s: %v", c.ref, bad.err))
		default:
			return nil, nil, fmt.Errorf("%s: %w", c.ref, err)
		}
	}
	return nil, reasons, nil
}

// badSignature is a signature that is there but does not verify (as opposed to one that
// cannot be read).
type badSignature struct{ err error }

func (b *badSignature) Error() string { return b.err.Error() }

func refused(format string, a ...any) error { return &badSignature{fmt.Errorf(format, a...)} }

// maxSignatureBlob bounds what is read of a signature's payload or bundle: cosign's are a few
// kilobytes.
const maxSignatureBlob = 4 << 20

// readSmall reads blob d of repo whole, verified against its digest.
func readSmall(src layout.Source, repo string, d layout.Descriptor) ([]byte, error) {
	if d.Size > maxSignatureBlob || d.Size < 0 {
		return nil, refused("blob %s: %d bytes, more than a signature holds", d.Digest, d.Size)
	}
	rc, err := src.OpenBlob(repo, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if err := layout.VerifyBytes(b, d); err != nil {
		return nil, err
	}
	return b, nil
}
