package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fanfare/fanfare/events"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// Aggregate is an event-sourced aggregate root. Its command methods check
// invariants, Apply the new event to themselves and Record it (Recorder
// provides Record and Flush).
type Aggregate interface {
	// Apply evolves the state by one event, for replay and new events alike.
	Apply(event proto.Message) error
	// Flush returns the events recorded since the last Flush and forgets them.
	Flush() []proto.Message
}

// Snapshotter is an Aggregate whose state can be saved and restored, so
// loading it does not replay its whole stream.
type Snapshotter interface {
	Snapshot() (proto.Message, error)
	Restore(proto.Message) error
}

// Recorder collects an aggregate's new events; embed it.
type Recorder = events.Recorder

// ErrConflict is returned by Update when concurrent writers kept winning
// for every retry.
var ErrConflict = errors.New("eventstore: concurrent update conflict, retries exhausted")

// RepositoryOptions tune a Repository.
type RepositoryOptions struct {
	// Retries is how often Update reloads and retries after losing an
	// optimistic-concurrency race (default 3).
	Retries int
	// SnapshotEvery takes a snapshot when an update crosses a multiple of
	// this many events (0 = never). The aggregate must be a Snapshotter.
	SnapshotEvery uint64
}

// Repository loads and saves one aggregate type; the stream of aggregate id
// is "<category>-<id>".
type Repository[A Aggregate] struct {
	store    *Store
	category string
	newAgg   func(id string) A
	opts     RepositoryOptions
	locks    streamLocks
}

// streamLocks serialize a process's updates of one stream: concurrent
// callers (e.g. many pledges to one campaign) queue instead of losing
// optimistic-concurrency races until the retries run out. Other
// processes still race, and retry.
type streamLocks struct {
	mu sync.Mutex
	m  map[string]*streamLock
}

type streamLock struct {
	mu sync.Mutex
	n  int
}

func (l *streamLocks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*streamLock{}
	}
	e := l.m[id]
	if e == nil {
		e = &streamLock{}
		l.m[id] = e
	}
	e.n++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.n--; e.n == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

// NewRepository makes a repository for aggregates created by newAgg.
func NewRepository[A Aggregate](store *Store, category string, newAgg func(id string) A, opts RepositoryOptions) *Repository[A] {
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	return &Repository[A]{store: store, category: category, newAgg: newAgg, opts: opts}
}

// Stream is the stream name of aggregate id.
func (r *Repository[A]) Stream(id string) string { return r.category + "-" + id }

// Load rebuilds aggregate id and returns it with its revision (-1 when the
// stream does not exist yet).
func (r *Repository[A]) Load(ctx context.Context, id string) (A, int64, error) {
	return r.load(ctx, id, true, nil)
}

func (r *Repository[A]) load(ctx context.Context, id string, useSnapshot bool, seen map[uuid.UUID]bool) (A, int64, error) {
	agg := r.newAgg(id)
	from := uint64(0)
	if snap, ok := any(agg).(Snapshotter); ok && useSnapshot && r.opts.SnapshotEvery > 0 {
		rev, found, err := r.restore(ctx, id, snap)
		if err != nil {
			return agg, -1, err
		}
		if found {
			from = rev + 1
		}
	}
	last, err := r.store.ReadStream(ctx, r.Stream(id), from, func(e Event) error {
		if seen != nil {
			seen[e.Envelope.ID] = true
		}
		return agg.Apply(e.Message)
	})
	if err != nil {
		return agg, -1, err
	}
	if last < 0 && from > 0 {
		// The stream vanished under a snapshot: that is corruption, not a new aggregate.
		return agg, -1, fmt.Errorf("%s: snapshot at revision %d but no stream", r.Stream(id), from-1)
	}
	agg.Flush() // replay is not news
	return agg, last, nil
}

func (r *Repository[A]) restore(ctx context.Context, id string, s Snapshotter) (uint64, bool, error) {
	rev, msg, found, err := r.store.loadMessage(ctx, r.Stream(id))
	if err != nil || !found {
		return 0, false, err
	}
	return rev, true, s.Restore(msg)
}

// Update loads aggregate id, runs fn on it and appends what fn recorded,
// expecting the revision it loaded. When another writer got there first it
// reloads and runs fn again, up to the retry bound. fn must be free of side
// effects other than on the aggregate, since it may run more than once.
//
// Errors: whatever fn returns (unwrapped), ErrConflict, or store errors.
func (r *Repository[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return r.update(ctx, id, fn, nil)
}

// React is Update for work done in reaction to an event: the new events get
// ids derived from (consumer, cause), and a cause that was already handled
// (its reaction is in the stream) is a no-op. Reactions replay the whole
// stream, not a snapshot, because the check needs every event id.
func (r *Repository[A]) React(ctx context.Context, id, consumer string, cause events.Envelope, fn func(A) error) error {
	ctx = WithCause(ctx, CausedBy(cause))
	return r.update(ctx, id, fn, &reaction{consumer: consumer, cause: cause.ID})
}

// ReactWorkers bounds the streams one ReactEach reacts on at once.
const ReactWorkers = 16

// ReactEach reacts once per stream to a cause that concerns many streams
// (the ledger's decisions in one book batch): key names the stream id of
// each item ("" skips it), each stream's items go through fn in order,
// and the streams are handled side by side, at most ReactWorkers at once
// (a book's batches all come through one partition, so one at a time).
// The consumer name gets "/<id>", so the streams' event ids, which share
// the cause, differ. done, if not nil, runs after each stream's reaction
// succeeded, with the aggregate it applied the items to, or A's zero value
// when the stream already held the reaction (a redelivery).
func ReactEach[A Aggregate, T any](ctx context.Context, r *Repository[A], consumer string, cause events.Envelope, items []T,
	key func(T) string, fn func(A, T) error, done func(id string, agg A, items []T)) error {
	byID := map[string][]T{}
	var ids []string
	for _, it := range items {
		id := key(it)
		if id == "" {
			continue
		}
		if byID[id] == nil {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], it)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ReactWorkers)
	for _, id := range ids {
		g.Go(func() error {
			var agg A
			err := r.React(gctx, id, consumer+"/"+id, cause, func(a A) error {
				agg = a
				for _, it := range byID[id] {
					if err := fn(a, it); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil && done != nil {
				done(id, agg, byID[id])
			}
			return err
		})
	}
	return g.Wait()
}

type reaction struct {
	consumer string
	cause    uuid.UUID
}

// eventID is the id of the i-th event a reaction appends.
func (re *reaction) eventID(i int) uuid.UUID {
	if i == 0 {
		return events.ReactionID(re.consumer, re.cause)
	}
	return events.ReactionID(fmt.Sprintf("%s#%d", re.consumer, i), re.cause)
}

func (r *Repository[A]) update(ctx context.Context, id string, fn func(A) error, re *reaction) error {
	defer r.locks.lock(id)()
	for attempt := 0; attempt <= r.opts.Retries; attempt++ {
		var seen map[uuid.UUID]bool
		if re != nil {
			seen = map[uuid.UUID]bool{}
		}
		agg, rev, err := r.load(ctx, id, re == nil, seen)
		if err != nil {
			return err
		}
		if re != nil && seen[re.eventID(0)] {
			return nil // already handled: redelivery appends nothing
		}
		if err := fn(agg); err != nil {
			return err
		}
		changes := agg.Flush()
		if len(changes) == 0 {
			return nil
		}
		pending := make([]Pending, len(changes))
		for i, c := range changes {
			pending[i] = Pending{Message: c}
			if re != nil {
				pending[i].ID = re.eventID(i)
			}
		}
		res, err := r.store.Append(ctx, r.Stream(id), expectedFor(rev), pending...)
		if errors.Is(err, ErrWrongExpectedRevision) {
			continue
		}
		if err != nil {
			return err
		}
		r.maybeSnapshot(ctx, id, agg, uint64(rev+1), res.NextExpectedVersion)
		return nil
	}
	return fmt.Errorf("%s: %w", r.Stream(id), ErrConflict)
}

// maybeSnapshot saves a snapshot when the update crossed a multiple of
// SnapshotEvery. A failed snapshot only costs a longer replay later, so it
// does not fail the update.
func (r *Repository[A]) maybeSnapshot(ctx context.Context, id string, agg A, firstNew, last uint64) {
	snap, ok := any(agg).(Snapshotter)
	n := r.opts.SnapshotEvery
	if !ok || n == 0 || (last+1)/n == firstNew/n {
		return
	}
	msg, err := snap.Snapshot()
	if err != nil {
		return
	}
	_ = r.store.saveMessage(ctx, r.Stream(id), last, msg)
}
