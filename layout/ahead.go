package layout

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/internal/par"
)

// AheadMaxBlob is the largest blob an AheadReader keeps: a larger one is read on its own, as
// it spans frames, each decoded once by its own read anyway.
const AheadMaxBlob = 64 << 10

// eachAhead is par.Each(ctx, n, workers, f), after reading ahead what needs says the items
// read when src (or the source it wraps) is an AheadReader; it is let go once all have run.
// All at once, not in windows of items: a bundle reads what a window needs in one pass over
// its frames, so windows would cost a pass each (#19).
func eachAhead(ctx context.Context, src Source, n, workers int, needs func(i int) []digest.Digest, f func(i int) error) error {
	ar, ok := unwrap(src).(AheadReader)
	if !ok {
		return par.Each(ctx, n, workers, f)
	}
	var ds []digest.Digest
	for i := range n {
		ds = append(ds, needs(i)...)
	}
	done := ar.ReadAhead(ds)
	defer done()
	return par.Each(ctx, n, workers, f)
}
