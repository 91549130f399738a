package par

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestEach(t *testing.T) {
	var calls atomic.Int64
	seen := make([]bool, 100)
	err := Each(context.Background(), len(seen), 4, func(i int) error {
		calls.Add(1)
		seen[i] = true
		if i%10 == 3 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if calls.Load() != 100 {
		t.Errorf("%d calls, want 100", calls.Load())
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("item %d not run", i)
		}
	}
	if err == nil || err.Error() != "item 3\nitem 13\nitem 23\nitem 33\nitem 43\nitem 53\nitem 63\nitem 73\nitem 83\nitem 93" {
		t.Errorf("err = %v, want every failure in index order", err)
	}
	if err := Each(context.Background(), 0, 4, func(int) error { return errors.New("never") }); err != nil {
		t.Errorf("no items: %v", err)
	}
}

// TestEachConcurrent: calls overlap, up to the worker count and no more.
func TestEachConcurrent(t *testing.T) {
	var now, peak atomic.Int64
	Each(context.Background(), 32, 4, func(int) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		return nil
	})
	if p := peak.Load(); p < 2 || p > 4 {
		t.Errorf("peak concurrency %d, want 2..4", p)
	}
}

// TestEachCancelled: after the cancel no new call starts and ctx's error is returned.
func TestEachCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	err := Each(ctx, 1000, 1, func(i int) error {
		if calls.Add(1) == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := calls.Load(); n > 7 {
		t.Errorf("%d calls after a cancel at the 5th", n)
	}
}
