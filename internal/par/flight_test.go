package par

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFlight: overlapping callers of one key run the work once when it succeeds; after a
// failure a waiting caller runs it again; other keys run independently.
func TestFlight(t *testing.T) {
	var f Flight[string]
	var runs atomic.Int32
	var stored atomic.Bool
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.Do("a", stored.Load, func() error {
				runs.Add(1)
				<-release
				stored.Store(true)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("the work ran %d times, want 1", n)
	}

	var tries atomic.Int32
	fail := errors.New("first try fails")
	done := atomic.Bool{}
	errs := make(chan error, 2)
	gate := make(chan struct{})
	go func() {
		errs <- f.Do("b", done.Load, func() error { tries.Add(1); <-gate; return fail })
	}()
	for tries.Load() == 0 {
	}
	go func() {
		errs <- f.Do("b", done.Load, func() error { tries.Add(1); done.Store(true); return nil })
	}()
	close(gate)
	e1, e2 := <-errs, <-errs
	if !(errors.Is(e1, fail) && e2 == nil) && !(errors.Is(e2, fail) && e1 == nil) {
		t.Errorf("errors %v, %v; want the failure once and a success", e1, e2)
	}
	if n := tries.Load(); n != 2 {
		t.Errorf("tries %d, want 2 (the waiting caller tries after the failure)", n)
	}
}
