package par

import "sync"

// Flight runs one piece of work per key at a time among overlapping callers: the first does
// it, the others wait for it and then look again (it may have failed, and then one of them
// tries). The zero value is ready to use.
type Flight[K comparable] struct {
	mu      sync.Mutex
	running map[K]chan struct{}
}

// Do returns nil as soon as done reports the work for key done; otherwise it runs work, unless
// another caller runs it for key, whose end it waits for before looking again.
func (f *Flight[K]) Do(key K, done func() bool, work func() error) error {
	for {
		if done() {
			return nil
		}
		f.mu.Lock()
		if f.running == nil {
			f.running = map[K]chan struct{}{}
		}
		wait, busy := f.running[key]
		if !busy {
			f.running[key] = make(chan struct{})
		}
		f.mu.Unlock()
		if busy {
			<-wait // then look again: done, or the other run failed and this one tries
			continue
		}
		// Look again now that this caller holds the key: another may have finished the work
		// between the look above and the claim.
		var err error
		if !done() {
			err = work()
		}
		f.mu.Lock()
		close(f.running[key])
		delete(f.running, key)
		f.mu.Unlock()
		return err
	}
}
