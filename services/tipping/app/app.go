// Package app holds the tipping service's use cases: tips, thumbs-up and
// auto-tips, subscriptions, purchases, and its reactions to plays, ledger
// decisions and the referral saga's payouts.
package app

import (
	"context"
	"sync"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
)

// Consumer names of the service's reactions (part of their event ids:
// never rename).
const (
	AutoTipConsumer         = "tipping.autotip"
	TipOutcomeConsumer      = "tipping.tip-outcome"
	PurchaseOutcomeConsumer = "tipping.purchase-outcome"
)

// Id namespaces: a request id is scoped to its caller.
var (
	tipIDs          = uuid.MustParse("7f4e2c1a-9b3d-4a5e-8c6f-1d2e3f4a5b6c")
	purchaseIDs     = uuid.MustParse("2b8d4f6a-1c3e-4b5d-9e7f-a1b2c3d4e5f6")
	subscriptionIDs = uuid.MustParse("9c1e3a5b-7d2f-4e6a-8b0c-d1e2f3a4b5c6")
)

// Waits a call may ask for.
const (
	DefaultWait = 5 * time.Second
	MaxWait     = 30 * time.Second
)

// App is the tipping service's application layer.
type App struct {
	Rules     domain.Rules
	Fans      *eventstore.Repository[*domain.Fan]
	Purchases *eventstore.Repository[*domain.Purchase]
	Subs      *eventstore.Writer[*domain.Subscriptions]
	Songs     *songview.Catalog
	// SongWait bounds how long a counted play waits for its song.
	SongWait time.Duration
	Now      func() time.Time

	waits waiters
}

// WaitFor turns a client's wait_ms into the wait: the default for 0, at
// most MaxWait.
func WaitFor(ms uint32) time.Duration {
	if ms == 0 {
		return DefaultWait
	}
	return min(time.Duration(ms)*time.Millisecond, MaxWait)
}

// waiters lets a call wait for an outcome this process records (an answer
// recorded by another instance is found when the caller asks again).
type waiters struct {
	mu sync.Mutex
	m  map[string]*waitEntry
}

type waitEntry struct {
	ch chan struct{}
	n  int
}

func (w *waiters) join(id string) *waitEntry {
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

func (w *waiters) leave(id string, e *waitEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.n--; e.n == 0 && w.m[id] == e {
		delete(w.m, id)
	}
}

func (w *waiters) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.m[id]; ok {
		close(e.ch)
		delete(w.m, id)
	}
}

// wait calls done until it reports true, after each outcome recorded for
// id, for at most d; running out of time is not an error (the caller
// reports what stands).
func (w *waiters) wait(ctx context.Context, id string, d time.Duration, done func() (bool, error)) error {
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
