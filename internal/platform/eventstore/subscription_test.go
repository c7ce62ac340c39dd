package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/google/uuid"
)

type seen struct {
	mu  sync.Mutex
	ids []string
}

func (s *seen) handle(prefix string) func(context.Context, *esdb.RecordedEvent) error {
	return func(_ context.Context, rec *esdb.RecordedEvent) error {
		if strings.HasPrefix(rec.StreamID, prefix) {
			s.mu.Lock()
			s.ids = append(s.ids, rec.EventID.String())
			s.mu.Unlock()
		}
		return nil
	}
}

func (s *seen) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.ids) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A subscription resumes from its checkpoint: after a clean stop it
// redelivers nothing, and it sees every later event exactly once, in order.
func TestSubscriptionCheckpointsAndResumes(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	prefix := "deposit-" + uuid.NewString()[:8]
	for i := 0; i < 5; i++ {
		if err := repo.Update(ctx(t), prefix[len("deposit-"):]+uuid.NewString(), func(d *deposit) error { return d.Request() }); err != nil {
			t.Fatal(err)
		}
	}
	var got seen
	name := "test-" + uuid.NewString()
	run := func() (context.CancelFunc, chan error) {
		c, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		sub := &eventstore.Subscription{Store: store, Name: name, Handle: got.handle(prefix)}
		go func() { done <- sub.Run(c) }()
		return cancel, done
	}
	cancel, done := run()
	waitUntil(t, "5 events", func() bool { return got.len() == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := repo.Update(ctx(t), prefix[len("deposit-"):]+uuid.NewString(), func(d *deposit) error { return d.Request() }); err != nil {
			t.Fatal(err)
		}
	}
	cancel, done = run()
	defer func() { cancel(); <-done }()
	waitUntil(t, "8 events", func() bool { return got.len() == 8 })
	time.Sleep(200 * time.Millisecond) // room for a wrong redelivery to show
	got.mu.Lock()
	defer got.mu.Unlock()
	uniq := map[string]bool{}
	for _, id := range got.ids {
		uniq[id] = true
	}
	if len(got.ids) != 8 || len(uniq) != 8 {
		t.Fatalf("delivered %d events (%d distinct), want 8 once each", len(got.ids), len(uniq))
	}
}

// A second instance of the same subscription fences the first.
func TestSubscriptionFencing(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	repo := eventstore.NewRepository(store, "deposit", newDeposit, eventstore.RepositoryOptions{})
	name := "fence-" + uuid.NewString()
	var a, b seen
	first := &eventstore.Subscription{Store: store, Name: name, Handle: a.handle("deposit-"), CheckpointEvery: 1}
	firstDone := make(chan error, 1)
	c1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	go func() { firstDone <- first.Run(c1) }()
	firstID := uuid.NewString()
	if err := repo.Update(ctx(t), firstID, func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "first instance handles an event", func() bool { return a.len() == 1 })
	// The last checkpoint: its $all position and the instance that wrote it.
	last := func() (pos uint64, owner string) {
		evs, _ := estest.ReadStream(t, store.Client, "checkpoint-"+name, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
		if len(evs) == 1 {
			var cp struct {
				Position uint64 `json:"position"`
				Owner    string `json:"owner"`
			}
			if json.Unmarshal(evs[0].Data, &cp) == nil {
				return cp.Position, cp.Owner
			}
		}
		return 0, ""
	}
	dep, err := estest.ReadStream(t, store.Client, "deposit-"+firstID, esdb.ReadStreamOptions{From: esdb.Start{}}, 1)
	if err != nil || len(dep) != 1 {
		t.Fatalf("read the deposit: %v", err)
	}
	// Once the first has checkpointed past the event it has nothing left to
	// write until another event comes.
	var firstOwner string
	waitUntil(t, "first instance checkpoints the event", func() bool {
		pos, owner := last()
		firstOwner = owner
		return pos >= dep[0].Position.Commit
	})

	second := &eventstore.Subscription{Store: store, Name: name, Handle: b.handle("deposit-"), CheckpointEvery: 1}
	c2, cancel2 := context.WithCancel(context.Background())
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.Run(c2) }()
	defer func() { cancel2(); <-secondDone }()
	// Only once the second's claim is on the stream does the next event
	// make the first's checkpoint write collide (a fixed sleep lost this
	// race on a loaded machine: the first handled and checkpointed the
	// event before the claim and was never fenced).
	waitUntil(t, "second instance claims the subscription", func() bool { _, owner := last(); return owner != firstOwner })
	if err := repo.Update(ctx(t), uuid.NewString(), func(d *deposit) error { return d.Request() }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-firstDone:
		if !errors.Is(err, eventstore.ErrFenced) {
			t.Fatalf("first instance stopped with %v, want ErrFenced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first instance kept running after a second one claimed the subscription")
	}
	waitUntil(t, "second instance handles the new event", func() bool { return b.len() == 1 })
}
