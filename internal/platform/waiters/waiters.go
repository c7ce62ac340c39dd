// Package waiters lets a request wait, for a bounded time, for an outcome
// that a Kafka consumer of the same process records.
package waiters

import (
	"context"
	"sync"
	"time"
)

// Waits a client may ask for.
const (
	DefaultWait = 5 * time.Second
	MaxWait     = 30 * time.Second
)

// For turns a client's wait_ms into the wait: the default for 0, at most
// MaxWait.
func For(ms uint32) time.Duration {
	if ms == 0 {
		return DefaultWait
	}
	return min(time.Duration(ms)*time.Millisecond, MaxWait)
}

// Set lets a call wait for an outcome this process records (an answer
// recorded by another instance is found when the caller asks again). The
// zero value is ready.
type Set struct {
	mu sync.Mutex
	m  map[string]*waitEntry
}

type waitEntry struct {
	ch chan struct{}
	n  int
}

func (w *Set) join(id string) *waitEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]*waitEntry{}
	}
	e, ok := w.m[id]
	if !ok {
		e = &waitEntry{ch: make(chan struct{})}
		w.m[id] = e
	}
	e.n++
	return e
}

func (w *Set) leave(id string, e *waitEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.n--; e.n == 0 && w.m[id] == e {
		delete(w.m, id)
	}
}

// Notify wakes the calls waiting on id.
func (w *Set) Notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.m[id]; ok {
		close(e.ch)
		delete(w.m, id)
	}
}

// Wait calls done until it reports true, after each outcome recorded for
// id, for at most d; running out of time is not an error (the caller
// reports what stands).
func (w *Set) Wait(ctx context.Context, id string, d time.Duration, done func() (bool, error)) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e := w.join(id) // before checking, so no outcome slips between
		ok, err := done()
		if err != nil || ok {
			w.leave(id, e)
			return err
		}
		select {
		case <-e.ch:
			w.leave(id, e)
		case <-deadline.C:
			w.leave(id, e)
			return nil
		case <-ctx.Done():
			w.leave(id, e)
			return ctx.Err()
		}
	}
}
