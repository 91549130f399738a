package archive

import (
	"archive/tar"
	"fmt"
	"io"
	"os"

	"github.com/bale-project/bale/catalog"
)

// SignatureMember is a signature carried in a bundle (bale pack --sign-key): its member name
// and bytes, checked only for their name and size; bundlesig verifies them.
type SignatureMember struct {
	Name string
	Raw  []byte
}

// Signatures returns the signature members that follow the catalog.
func (r *Reader) Signatures() []SignatureMember { return r.sigs }

// readSignatures reads the signature members the catalog's meta records, right after it:
// each must have its name and the size recorded.
func (r *Reader) readSignatures() error {
	for i, size := range r.cat.Meta.Signatures {
		want := SignatureName(i + 1)
		hdr, err := r.tr.Next()
		if err != nil {
			return fmt.Errorf("reading signature member %s: %v (truncated or damaged): %w", want, err, ErrBundle)
		}
		if hdr.Name != want || !isRegular(hdr) {
			return fmt.Errorf("member %q after the catalog, which records the signature member %s there: %w", hdr.Name, want, ErrBundle)
		}
		if hdr.Size != size {
			return fmt.Errorf("signature member %s of %d bytes, the catalog records %d: %w", want, hdr.Size, size, ErrBundle)
		}
		raw := make([]byte, size)
		if _, err := io.ReadFull(r.tr, raw); err != nil {
			return fmt.Errorf("reading signature member %s: %v (truncated or damaged): %w", want, err, ErrBundle)
		}
		r.sigs = append(r.sigs, SignatureMember{Name: want, Raw: raw})
	}
	return nil
}

// ReadSignatures reads the catalog at the head of the bundle file at path (the first volume of
// a volume set) and the signature members that follow it (none for a volume set: its
// signatures live beside its first volume).
func ReadSignatures(path string) (*catalog.Catalog, []SignatureMember, error) {
	r, err := openHead(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	return r.cat, r.sigs, nil
}

// CarriesSignatures reports whether the member after the catalog (and the list member) of the
// bundle at path (the first volume of a volume set) is a signature member, without parsing
// the catalog: a quick test before the catalog and the signatures are read and checked
// (ReadSignatures).
func CarriesSignatures(path string) (bool, error) {
	// Format 5: from the list member's frame (the seek table), without decompressing the
	// catalog (a few MB decoded instead of the whole catalog member).
	if lh, err := OpenListHead(path); err == nil {
		defer lh.Close()
		return len(lh.Signatures) > 0, nil
	}
	zr, closeHead, _, err := openHeadStream(path)
	if err != nil {
		return false, err
	}
	defer closeHead()
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != CatalogName || hdr.Size > MaxCatalogSize {
		return false, nil // not a bundle: whoever reads it next says why
	}
	if hdr, err = tr.Next(); err != nil {
		return false, nil
	}
	if hdr.Name == ListName { // format 5: the list member comes first
		if hdr, err = tr.Next(); err != nil {
			return false, nil
		}
	}
	return hdr.Name == SignatureName(1), nil
}

// openHead reads the head of the bundle file at path (the first volume of a volume set): the
// catalog and the signature members.
func openHead(path string) (*Reader, error) {
	if first := FirstVolume(path); first != "" {
		path = first
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := newReader(f, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
