package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// deposit is a small aggregate made of real event types: requested once,
// then confirmed any number of times (the count is what tests look at).
type deposit struct {
	eventstore.Recorder
	id        string
	requested bool
	confirmed int64
	applied   int // events applied since construction or restore
}

var errAlreadyRequested = errors.New("already requested")

func (d *deposit) Apply(e proto.Message) error {
	d.applied++
	switch e.(type) {
	case *eventsv1.DepositRequested:
		d.requested = true
	case *eventsv1.DepositConfirmed:
		d.confirmed++
	default:
		return fmt.Errorf("deposit: unexpected %T", e)
	}
	return nil
}

func (d *deposit) raise(e proto.Message) error {
	if err := d.Apply(e); err != nil {
		return err
	}
	d.Record(e)
	return nil
}

func (d *deposit) Request() error {
	if d.requested {
		return errAlreadyRequested
	}
	return d.raise(&eventsv1.DepositRequested{DepositId: d.id})
}

func (d *deposit) Confirm() error { return d.raise(&eventsv1.DepositConfirmed{DepositId: d.id}) }

func (d *deposit) Snapshot() (proto.Message, error) {
	return wrapperspb.Int64(d.confirmed), nil
}

func (d *deposit) Restore(m proto.Message) error {
	d.requested = true
	d.confirmed = m.(*wrapperspb.Int64Value).Value
	return nil
}

func newDeposit(id string) *deposit { return &deposit{id: id} }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestUpdateLoadAndEnvelope(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	store.Now = func() time.Time { return at }
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	id := uuid.NewString()
	corr := uuid.New()
	c := eventstore.WithCause(ctx(t), eventstore.Cause{CorrelationID: corr, CausationID: corr, PolicyVersion: 7})
	if err := repo.Update(c, id, func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(c, id, func(d *deposit) error { return d.Request() }); !errors.Is(err, errAlreadyRequested) {
		t.Fatalf("second request: want the domain error, got %v", err)
	}
	d, rev, err := repo.Load(ctx(t), id)
	if err != nil || rev != 0 || !d.requested || d.confirmed != 0 {
		t.Fatalf("load: rev %d requested %v confirmed %d err %v", rev, d.requested, d.confirmed, err)
	}
	var got []eventstore.Event
	if _, err := store.ReadStream(ctx(t), repo.Stream(id), 0, func(e eventstore.Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("stream has %d events, want 1", len(got))
	}
	env := got[0].Envelope
	if env.Type != "fanfare.accounts.v1.DepositRequested" || env.Stream != "deposit-"+id || env.CorrelationID != corr ||
		env.CausationID != corr || env.PolicyVersion != 7 || !env.OccurredAt.Equal(at) {
		t.Fatalf("envelope %+v", env)
	}
	if got[0].Message.(*eventsv1.DepositRequested).DepositId != id {
		t.Fatalf("message %v", got[0].Message)
	}
	_, rev, err = repo.Load(ctx(t), uuid.NewString())
	if err != nil || rev != -1 {
		t.Fatalf("load of a new aggregate: rev %d err %v", rev, err)
	}
}

func TestConcurrentUpdatesRetry(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{Retries: 50})
	id := uuid.NewString()
	if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Confirm() }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	d, rev, err := repo.Load(ctx(t), id)
	if err != nil || d.confirmed != writers || rev != writers {
		t.Fatalf("after %d concurrent confirmations: confirmed %d at revision %d (%v)", writers, d.confirmed, rev, err)
	}

	// With no retries, a writer that keeps losing gives up with ErrConflict.
	strict := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{Retries: 1})
	err = strict.Update(ctx(t), id, func(d *deposit) error {
		// Another writer sneaks in after every load.
		if err := repo.Update(ctx(t), id, func(o *deposit) error { return o.Confirm() }); err != nil {
			return err
		}
		return d.Confirm()
	})
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("want ErrConflict, got %v", err)
	}
}

func TestReactIsIdempotent(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	id := uuid.NewString()
	if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	cause := events.Envelope{ID: uuid.New(), CorrelationID: uuid.New(), PolicyVersion: 3}
	for i := 0; i < 3; i++ { // the same cause delivered three times
		if err := repo.React(ctx(t), id, "confirmer", cause, func(d *deposit) error { return d.Confirm() }); err != nil {
			t.Fatal(err)
		}
	}
	other := events.Envelope{ID: uuid.New(), CorrelationID: uuid.New(), PolicyVersion: 3}
	if err := repo.React(ctx(t), id, "confirmer", other, func(d *deposit) error { return d.Confirm() }); err != nil {
		t.Fatal(err)
	}
	var got []eventstore.Event
	store.ReadStream(ctx(t), repo.Stream(id), 0, func(e eventstore.Event) error { got = append(got, e); return nil })
	if len(got) != 3 {
		t.Fatalf("stream has %d events, want request + 2 reactions", len(got))
	}
	r := got[1].Envelope
	if r.ID != events.ReactionID("confirmer", cause.ID) || r.CausationID != cause.ID || r.CorrelationID != cause.CorrelationID || r.PolicyVersion != 3 {
		t.Fatalf("reaction envelope %+v", r)
	}
}

// ReactEach groups one cause's items by stream, applies each stream's
// items in one reaction whose event ids carry the stream, reports each
// stream once (a redelivery with the zero aggregate) and appends nothing
// when the cause comes again.
func TestReactEach(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	a, b := uuid.NewString(), uuid.NewString()
	items := []string{a, b, "", a, a}
	cause := events.Envelope{ID: uuid.New(), CorrelationID: uuid.New()}
	for round := 0; round < 2; round++ {
		var mu sync.Mutex
		done := map[string]int{}
		err := eventstore.ReactEach(ctx(t), repo, "confirmer", cause, items, func(s string) string { return s },
			func(d *deposit, _ string) error { return d.Confirm() },
			func(id string, d *deposit, its []string) {
				mu.Lock()
				defer mu.Unlock()
				if (round == 0) != (d != nil) {
					t.Errorf("round %d: stream %s reported with aggregate %v", round, id, d)
				}
				done[id] += len(its)
			})
		if err != nil {
			t.Fatal(err)
		}
		if done[a] != 3 || done[b] != 1 || len(done) != 2 {
			t.Fatalf("round %d: done %v", round, done)
		}
	}
	for id, want := range map[string]int{a: 3, b: 1} {
		var got []eventstore.Event
		store.ReadStream(ctx(t), repo.Stream(id), 0, func(e eventstore.Event) error { got = append(got, e); return nil })
		if len(got) != want || got[0].Envelope.ID != events.ReactionID("confirmer/"+id, cause.ID) {
			t.Fatalf("stream %s: %d events (first %v), want %d with ids of consumer confirmer/<id>", id, len(got), got[0].Envelope.ID, want)
		}
	}
}

func TestSnapshots(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{SnapshotEvery: 5})
	id := uuid.NewString()
	if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 11; i++ {
		if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Confirm() }); err != nil {
			t.Fatal(err)
		}
	}
	d, rev, err := repo.Load(ctx(t), id)
	if err != nil || d.confirmed != 11 || rev != 11 {
		t.Fatalf("confirmed %d rev %d err %v", d.confirmed, rev, err)
	}
	// The last snapshot was at revision 9 (crossing 10 events), so only
	// revisions 10 and 11 are replayed.
	if d.applied != 2 {
		t.Fatalf("load replayed %d events, want 2 after the snapshot", d.applied)
	}
	noSnap := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	full, _, _ := noSnap.Load(ctx(t), id)
	if full.applied != 12 || full.confirmed != d.confirmed {
		t.Fatalf("full replay applied %d, confirmed %d", full.applied, full.confirmed)
	}
}

func TestDecodeUnknownTypeIsAnError(t *testing.T) {
	c := estest.Connect(t)
	s := "odd-" + uuid.NewString()
	if _, err := c.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "fanfare.nowhere.v1.Nope", Data: []byte{1}, Metadata: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := eventstore.NewStore(c).ReadStream(ctx(t), s, 0, func(eventstore.Event) error { return nil })
	if err == nil {
		t.Fatal("an event with a bad envelope and unknown type decoded without error")
	}
}

func TestCatchUpReadsMatchingStreamsInOrderAndStops(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	prefix := "cu" + uuid.NewString()[:8] + "-"
	other := "cx" + uuid.NewString()[:8] + "-"
	repo := eventstore.NewRepository(store, prefix+"deposit", newDeposit, eventstore.RepositoryOptions{})
	noise := eventstore.NewRepository(store, other+"deposit", newDeposit, eventstore.RepositoryOptions{})
	var want []string
	for i := 0; i < 5; i++ {
		id := fmt.Sprint(i)
		if err := repo.Update(ctx(t), id, func(d *deposit) error { return d.Request() }); err != nil {
			t.Fatal(err)
		}
		if err := noise.Update(ctx(t), id, func(d *deposit) error { return d.Request() }); err != nil {
			t.Fatal(err)
		}
		want = append(want, repo.Stream(id))
	}
	var got []string
	var lastPos uint64
	pos, err := store.CatchUp(ctx(t), []string{prefix}, func(e eventstore.Event) error {
		if e.Position <= lastPos {
			t.Errorf("position %d after %d: not in commit order", e.Position, lastPos)
		}
		lastPos = e.Position
		got = append(got, e.Envelope.Stream)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pos != lastPos {
		t.Fatalf("caught up with %v (last position %d, returned %d), want %v", got, lastPos, pos, want)
	}
	stop := errors.New("stop")
	if _, err := store.CatchUp(ctx(t), []string{prefix}, func(eventstore.Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("a handler error was not returned: %v", err)
	}
}
