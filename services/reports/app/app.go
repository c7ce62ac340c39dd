// Package app holds the reports service's use cases: the projection kept
// up to date from the services' events and saved to the event store, its
// queries and watches, the settlement export and the audit with its
// comparison against the projection.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/reports/audit"
	"github.com/fanfare/fanfare/services/reports/domain"
	"google.golang.org/protobuf/proto"
)

// SnapshotStream is where the projection is saved (with its marks).
const SnapshotStream = "reports-projection"

// snapshotFormat changes when the saved shape does; an old snapshot is
// then ignored and the projection rebuilt from the topics. 2: pending
// transfers (a format-1 projection marked the transfer streams applied
// without keeping them). 3: marks per topic and stream (a format-2
// projection could skip a saga's RewardRequested: see domain.MarkKey).
const snapshotFormat = 3

// bookBatch is the type whose marks say how far the books were applied.
var bookBatch = &eventsv1.BookBatchAppended{}

// App is the reports service's state.
type App struct {
	Store *eventstore.Store
	// URL is the event store's connection string (the export and the
	// audit read the log with their own connection).
	URL string

	mu       sync.RWMutex
	p        *domain.Projection
	saved    uint64 // projection version last saved
	watchers map[string]map[chan struct{}]bool
	// changed is closed by the next Apply; made only while an audit waits
	// for the projection, so applying costs nothing otherwise.
	changed chan struct{}
}

// New is an app with an empty projection.
func New(store *eventstore.Store, url string) *App {
	return &App{Store: store, URL: url, p: domain.New(), watchers: map[string]map[chan struct{}]bool{}}
}

type snapshot struct {
	Format     int
	Projection *domain.Projection
}

// Load restores the last saved projection, if any.
func (a *App) Load(ctx context.Context) error {
	_, data, found, err := a.Store.LoadSnapshot(ctx, SnapshotStream)
	if err != nil || !found {
		return err
	}
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil || s.Format != snapshotFormat || s.Projection == nil {
		return nil // unreadable or old: rebuild from the topics
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.p, a.saved = s.Projection, s.Projection.Version
	return nil
}

// Save stores the projection if it changed since the last save. The marks
// are saved with what they cover, so a restart counts nothing twice.
func (a *App) Save(ctx context.Context) error {
	a.mu.RLock()
	if a.p.Version == a.saved {
		a.mu.RUnlock()
		return nil
	}
	version := a.p.Version
	data, err := json.Marshal(snapshot{Format: snapshotFormat, Projection: a.p})
	a.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := a.Store.SaveSnapshot(ctx, SnapshotStream, version, data); err != nil {
		return err
	}
	a.mu.Lock()
	a.saved = max(a.saved, version)
	a.mu.Unlock()
	return nil
}

// Apply takes one event and wakes the watchers of the dashboards it
// changed.
func (a *App) Apply(src domain.Source, msg proto.Message) {
	a.mu.Lock()
	touched, _ := a.p.Apply(src, msg)
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
	for _, who := range touched {
		for ch := range a.watchers[who] {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
	a.mu.Unlock()
}

// Dashboard reads an artist's dashboard.
func (a *App) Dashboard(artist string) domain.Dashboard {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.p.Dashboard(artist)
}

// Watch wakes the returned channel whenever artist's dashboard changes;
// stop ends the watch.
func (a *App) Watch(artist string) (wake <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	if a.watchers[artist] == nil {
		a.watchers[artist] = map[chan struct{}]bool{}
	}
	a.watchers[artist][ch] = true
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.watchers[artist], ch)
		if len(a.watchers[artist]) == 0 {
			delete(a.watchers, artist)
		}
		a.mu.Unlock()
	}
}

// Activity reads an account's activity.
func (a *App) Activity(account string) (string, []domain.Activity) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.p.Activity(account)
}

// PendingTransfers lists the deposits and withdrawals of kind
// (domain.TransferDeposit, domain.TransferWithdrawal, or "" for both) that
// finance has not closed yet, oldest request first, ties by id.
func (a *App) PendingTransfers(kind string) []domain.PendingTransfer {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.p.Pending(kind)
}

// AuditReport is the audit's result with the projection's differences.
type AuditReport struct {
	*audit.Result
	Differences []string
}

// CatchUpWait bounds how long the audit waits for the projection to reach
// the books it replayed before comparing.
var CatchUpWait = 10 * time.Second

// Audit replays the whole log, then compares every replayed balance with
// the projection's, once the projection has applied every book batch the
// replay read (a projection still behind after CatchUpWait is a
// difference itself).
func (a *App) Audit(ctx context.Context) (*AuditReport, error) {
	res, err := audit.Replay(ctx, a.URL, audit.Options{})
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err)
	}
	rep := &AuditReport{Result: res}
	deadline := time.After(CatchUpWait)
	for {
		a.mu.Lock()
		behind := ""
		for _, b := range res.Books {
			if mark := a.p.Marks[domain.MarkKey(b.Stream, bookBatch)]; mark <= b.Revision {
				behind = fmt.Sprintf("the projection has applied %s up to revision %d of %d", b.Stream, int64(mark)-1, b.Revision)
				break
			}
		}
		if behind == "" {
			rep.Differences = a.compare(res.Books)
			a.mu.Unlock()
			return rep, nil
		}
		if a.changed == nil {
			a.changed = make(chan struct{})
		}
		changed := a.changed
		a.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			rep.Differences = []string{behind + " after " + CatchUpWait.String()}
			return rep, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// compare lists where the projection's balances differ from the replay's
// (lock held). The projection may have moved past the replay; only
// the books' revisions were waited for, and a book's later batches would
// show here, so an audit of a busy ledger can list movements in flight.
func (a *App) compare(books []audit.BookTotals) []string {
	var diffs []string
	replayed := map[string]bool{}
	for _, b := range books {
		for _, acc := range b.Accounts {
			replayed[acc.ID] = true
			var got int64
			if pa := a.p.Accounts[acc.ID]; pa != nil {
				got = pa.Balance
			}
			if got != acc.Total {
				diffs = append(diffs, fmt.Sprintf("%s: replayed %d, projection %d", acc.ID, acc.Total, got))
			}
		}
	}
	for id, pa := range a.p.Accounts {
		if !replayed[id] && pa.Balance != 0 {
			diffs = append(diffs, fmt.Sprintf("%s: not in the replayed books, projection %d", id, pa.Balance))
		}
	}
	slices.Sort(diffs)
	return diffs
}
