package catalog

import "github.com/opencontainers/go-digest"

// interner keeps one copy of each digest and media type a catalog read decodes: at 20,000 tags
// a digest appears about three times (a blob's key, a manifest's blob list, a revision or a
// tag) and a media type once a record, each a string of its own as decoded, which was a fifth
// of a decoded catalog. It lives only while the catalog is read.
type interner map[string]string

// bytes returns the string of b, the copy kept if there is one; a nil interner keeps none.
func (in interner) bytes(b []byte) string {
	if in == nil {
		return string(b)
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

// str returns the copy of s kept, keeping s if there is none.
func (in interner) str(s string) string {
	if k, ok := in[s]; ok {
		return k
	}
	in[s] = s
	return s
}

// digest is str for a digest.
func (in interner) digest(d digest.Digest) digest.Digest { return digest.Digest(in.str(string(d))) }

// digests replaces each digest of ds with the copy kept.
func (in interner) digests(ds []digest.Digest) {
	for i, d := range ds {
		ds[i] = in.digest(d)
	}
}
