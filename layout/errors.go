package layout

import "errors"

// ErrNotFound reports a reference, manifest or blob that a layout does not hold.
var ErrNotFound = errors.New("not found")

// ErrDigestMismatch reports content whose sha256 or size differs from the digest that names it.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrUnsupported reports content bale refuses to handle, such as Docker schema1 manifests.
var ErrUnsupported = errors.New("unsupported")

// ErrInvalid reports malformed input: a bad reference, digest, manifest or path.
var ErrInvalid = errors.New("invalid")
