// Package par runs independent file-system work on several goroutines. Creating directories,
// files and links is bound by the latency of each call (0.1-0.5 ms on the disks bale was
// measured on), not by the CPU, so a few calls in flight at once finish sooner.
package par

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// Workers is how many calls bale keeps in flight for metadata-bound work: twice the CPUs,
// at least 4.
func Workers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Each runs f(0) … f(n-1) on up to workers goroutines and returns every error, joined in
// index order. Once ctx is done no new call starts, and ctx's error is returned with the rest.
func Each(ctx context.Context, n, workers int, f func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	var cerr error
	for i := range n {
		if cerr = ctx.Err(); cerr != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(append(errs, cerr)...)
}
