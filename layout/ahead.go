package layout

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
)

// Windows of images read ahead (AheadReader): at most aheadImages images, and aheadBytes of
// the blobs of at most AheadMaxBlob bytes they need, are read ahead at once, then written,
// then let go.
const (
	aheadImages = 2048
	aheadBytes  = 8 << 20
	// AheadMaxBlob is the largest blob an AheadReader keeps: a larger one is read on its own,
	// as it spans frames, each decoded once by its own read anyway.
	AheadMaxBlob = 64 << 10
)

// eachAhead is par.Each(ctx, n, workers, f), in windows when src (or the source it wraps) is
// an AheadReader: before the items of a window run, what needs says they read (digests, and
// their bytes when known) is read ahead; once they have run it is let go. Every error is
// returned, as par.Each does.
func eachAhead(ctx context.Context, src Source, n, workers int, needs func(i int) ([]digest.Digest, int64), f func(i int) error) error {
	ar, ok := unwrap(src).(AheadReader)
	if !ok {
		return par.Each(ctx, n, workers, f)
	}
	var errs []error
	for lo := 0; lo < n; {
		hi, bytes := lo, int64(0)
		var ds []digest.Digest
		for hi < n && hi-lo < aheadImages && bytes < aheadBytes {
			d, b := needs(hi)
			ds = append(ds, d...)
			bytes += b
			hi++
		}
		done := ar.ReadAhead(ds)
		err := par.Each(ctx, hi-lo, workers, func(i int) error { return f(lo + i) })
		done()
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		lo = hi
	}
	return errors.Join(errs...)
}
