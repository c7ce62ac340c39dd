package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// tally is a writer's state: deposits requested, by id.
type tally struct{ ids map[string]bool }

func applyTally(t *tally, e eventstore.Event) error {
	t.ids[e.Message.(*eventsv1.DepositRequested).DepositId] = true
	return nil
}

var errTaken = errors.New("taken")

func request(id string) func(*tally) ([]proto.Message, error) {
	return func(t *tally) ([]proto.Message, error) {
		if t.ids[id] {
			return nil, errTaken
		}
		t.ids[id] = true
		return []proto.Message{&eventsv1.DepositRequested{DepositId: id}}, nil
	}
}

func openTally(t *testing.T, store *eventstore.Store, stream string, opts eventstore.WriterOptions) (*eventstore.Writer[*tally], *tally, chan error, context.CancelFunc) {
	t.Helper()
	state := &tally{ids: map[string]bool{}}
	w, err := eventstore.OpenWriter(ctx(t), store, stream, state, applyTally, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(c) }()
	return w, state, done, cancel
}

func TestWriterBatchesConcurrentWorkAndRecovers(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	// A small append limit makes the big batches split over several appends.
	w, _, done, cancel := openTally(t, store, stream, eventstore.WriterOptions{MaxAppendBytes: 2048})
	var wg sync.WaitGroup
	errs := make([]error, 400)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.Do(ctx(t), request(fmt.Sprint(i%200))) // every id twice
		}()
	}
	wg.Wait()
	ok, taken := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errTaken):
			taken++
		default:
			t.Fatalf("Do: %v", err)
		}
	}
	if ok != 200 || taken != 200 {
		t.Fatalf("%d done and %d refused, want 200 and 200", ok, taken)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n int
	last, err := store.ReadStream(ctx(t), stream, 0, func(eventstore.Event) error { n++; return nil })
	if err != nil || n != 200 || last != 199 {
		t.Fatalf("stream holds %d events (last revision %d, %v), want 200", n, last, err)
	}
	// Reopened, it knows all 200 and keeps the log's revision.
	w2, state, done2, cancel2 := openTally(t, store, stream, eventstore.WriterOptions{})
	defer func() { cancel2(); <-done2 }()
	if len(state.ids) != 200 || w2.Revision() != 199 {
		t.Fatalf("recovered %d ids at revision %d", len(state.ids), w2.Revision())
	}
	if err := w2.Do(ctx(t), request("7")); !errors.Is(err, errTaken) {
		t.Fatalf("a recovered writer accepted a taken id: %v", err)
	}
}

func TestWriterIsFencedByASecondWriter(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	old, _, oldDone, cancelOld := openTally(t, store, stream, eventstore.WriterOptions{})
	defer cancelOld()
	if err := old.Do(ctx(t), request("a")); err != nil {
		t.Fatal(err)
	}
	newer, _, newDone, cancelNew := openTally(t, store, stream, eventstore.WriterOptions{})
	defer func() { cancelNew(); <-newDone }()
	if err := newer.Do(ctx(t), request("b")); err != nil {
		t.Fatal(err)
	}
	err := old.Do(ctx(t), request("c"))
	if !errors.Is(err, eventstore.ErrFenced) {
		t.Fatalf("the old writer appended after a newer one: %v", err)
	}
	if err := <-oldDone; !errors.Is(err, eventstore.ErrFenced) {
		t.Fatalf("the old writer's Run: %v", err)
	}
	if err := old.Do(ctx(t), request("d")); !errors.Is(err, eventstore.ErrWriterStopped) || !strings.Contains(err.Error(), "another writer") {
		t.Fatalf("Do on a stopped writer: %v", err)
	}
	var ids []string
	if _, err := store.ReadStream(ctx(t), stream, 0, func(e eventstore.Event) error {
		ids = append(ids, e.Message.(*eventsv1.DepositRequested).DepositId)
		return nil
	}); err != nil || fmt.Sprint(ids) != "[a b]" {
		t.Fatalf("stream %v (%v), want [a b]", ids, err)
	}
}
