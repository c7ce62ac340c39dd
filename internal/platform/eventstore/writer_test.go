package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// tally is a writer's state: deposits requested, by id, and how many
// events were applied to build it.
type tally struct {
	ids     map[string]bool
	applied int
}

func newTally() *tally { return &tally{ids: map[string]bool{}} }

func applyTally(t *tally, e eventstore.Event) error {
	t.ids[e.Message.(*eventsv1.DepositRequested).DepositId] = true
	t.applied++
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

// next takes the next number: exact only if every decision saw the whole log.
func next(t *tally) ([]proto.Message, error) {
	id := fmt.Sprint(len(t.ids) + 1)
	t.ids[id] = true
	return []proto.Message{&eventsv1.DepositRequested{DepositId: id}}, nil
}

// tallySnapshot keeps the ids as a list of strings.
func tallySnapshot(t *tally) (proto.Message, error) {
	l := &structpb.ListValue{}
	for id := range t.ids {
		l.Values = append(l.Values, structpb.NewStringValue(id))
	}
	return l, nil
}

func restoreTally(t *tally, m proto.Message) error {
	for _, v := range m.(*structpb.ListValue).Values {
		t.ids[v.GetStringValue()] = true
	}
	return nil
}

func openTally(t *testing.T, store *eventstore.Store, stream string, opts eventstore.WriterOptions[*tally]) (*eventstore.Writer[*tally], chan error, context.CancelFunc) {
	t.Helper()
	w, err := eventstore.OpenWriter(ctx(t), store, stream, newTally, applyTally, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(c) }()
	return w, done, cancel
}

// read returns a copy of the writer's state, read inside the writer.
func read(t *testing.T, w *eventstore.Writer[*tally]) tally {
	t.Helper()
	var out tally
	if err := w.Do(ctx(t), func(s *tally) ([]proto.Message, error) {
		out = tally{ids: map[string]bool{}, applied: s.applied}
		for id := range s.ids {
			out.ids[id] = true
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func streamIDs(t *testing.T, store *eventstore.Store, stream string) []string {
	t.Helper()
	var ids []string
	if _, err := store.ReadStream(ctx(t), stream, 0, func(e eventstore.Event) error {
		ids = append(ids, e.Message.(*eventsv1.DepositRequested).DepositId)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestWriterBatchesConcurrentWorkAndRecovers(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	// A small append limit makes the big batches split over several appends.
	w, done, cancel := openTally(t, store, stream, eventstore.WriterOptions[*tally]{MaxAppendBytes: 2048})
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
	if ids := streamIDs(t, store, stream); len(ids) != 200 {
		t.Fatalf("stream holds %d events, want 200", len(ids))
	}
	if err := w.Do(ctx(t), request("x")); !errors.Is(err, eventstore.ErrWriterStopped) {
		t.Fatalf("Do on a stopped writer: %v", err)
	}
	// Reopened, it knows all 200 and keeps the log's revision.
	w2, done2, cancel2 := openTally(t, store, stream, eventstore.WriterOptions[*tally]{})
	defer func() { cancel2(); <-done2 }()
	if got := read(t, w2); len(got.ids) != 200 || w2.Revision() != 199 {
		t.Fatalf("recovered %d ids at revision %d", len(got.ids), w2.Revision())
	}
	if err := w2.Do(ctx(t), request("7")); !errors.Is(err, errTaken) {
		t.Fatalf("a recovered writer accepted a taken id: %v", err)
	}
}

// Two writers of one stream, as two service instances would be: every
// number is taken exactly once and in order, with no lost call, even when
// their batches race and split over several appends.
func TestWritersOfOneStreamKeepNumbersExact(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	opts := eventstore.WriterOptions[*tally]{MaxAppendBytes: 1024, Retries: 1000}
	a, doneA, cancelA := openTally(t, store, stream, opts)
	defer func() { cancelA(); <-doneA }()
	b, doneB, cancelB := openTally(t, store, stream, opts)
	defer func() { cancelB(); <-doneB }()
	const per = 300
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, w := range []*eventstore.Writer[*tally]{a, b} {
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.Do(ctx(t), next); err != nil {
					failed.Add(1)
					t.Errorf("Do: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	ids := streamIDs(t, store, stream)
	if len(ids) != 2*per {
		t.Fatalf("stream holds %d numbers, want %d", len(ids), 2*per)
	}
	for i, id := range ids {
		if id != fmt.Sprint(i+1) {
			t.Fatalf("event %d took number %s", i, id)
		}
	}
	// Each writer knows every number, whoever took it.
	for _, w := range []*eventstore.Writer[*tally]{a, b} {
		if got := read(t, w); len(got.ids) != 2*per {
			t.Fatalf("a writer knows %d numbers, want %d", len(got.ids), 2*per)
		}
	}
}

func TestWriterSnapshotsInPartsAndRecoversFromThem(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	opts := eventstore.WriterOptions[*tally]{SnapshotEvery: 500, Snapshot: tallySnapshot, Restore: restoreTally}
	w, done, cancel := openTally(t, store, stream, opts)
	// 1 KiB ids: a snapshot of 2,000 is about 2 MB, more than two appends take.
	pad := strings.Repeat("x", 1024)
	for i := range 2100 {
		if err := w.Do(ctx(t), request(fmt.Sprint(i, pad))); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rev, data, found, err := store.LoadSnapshot(ctx(t), stream)
	if err != nil || !found || rev < 1999 || len(data) <= 2*900<<10 {
		t.Fatalf("latest snapshot: revision %d, %d bytes, found %v, %v; want ≥ 1999 and over two parts of 900 KiB", rev, len(data), found, err)
	}
	var parts int
	rs, err := store.Client.ReadStream(ctx(t), eventstore.SnapshotStream(stream), esdb.ReadStreamOptions{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := rs.Recv(); err != nil {
			break
		}
		parts++
	}
	rs.Close()
	if parts < 3 {
		t.Fatalf("%d snapshot events, want at least the 3 parts of the latest", parts)
	}
	// A snapshot whose writer died after its first part is passed over.
	if _, err := store.Client.AppendToStream(ctx(t), eventstore.SnapshotStream(stream), esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
		esdb.EventData{EventType: "fanfare-snapshot", ContentType: esdb.ContentTypeBinary, Data: []byte("junk"),
			Metadata: []byte(`{"revision":2099,"id":"half","part":0,"parts":2}`)}); err != nil {
		t.Fatal(err)
	}
	w2, done2, cancel2 := openTally(t, store, stream, opts)
	defer func() { cancel2(); <-done2 }()
	got := read(t, w2)
	if len(got.ids) != 2100 || w2.Revision() != 2099 {
		t.Fatalf("recovered %d ids at revision %d, want 2100 at 2099", len(got.ids), w2.Revision())
	}
	if want := 2099 - int(rev); got.applied != want {
		t.Fatalf("recovery replayed %d events, want the %d after the snapshot", got.applied, want)
	}
	if err := w2.Do(ctx(t), request(fmt.Sprint(7, pad))); !errors.Is(err, errTaken) {
		t.Fatalf("a writer recovered from a snapshot accepted a taken id: %v", err)
	}
}

func TestWriterOptionsNeedBothSnapshotFuncs(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	_, err := eventstore.OpenWriter(ctx(t), store, "tally-"+uuid.NewString(), newTally, applyTally,
		eventstore.WriterOptions[*tally]{SnapshotEvery: 10, Snapshot: tallySnapshot})
	if err == nil || !strings.Contains(err.Error(), "Restore") {
		t.Fatalf("OpenWriter without Restore: %v", err)
	}
}

// A writer stopped while it appends has stopped, not failed: Run returns
// nil, and the caller whose events could not be written is told the
// writer stopped (the append on the dead context failed, and so did the
// rebuild after it, which Run used to return as a failure).
func TestWriterStoppedMidAppendIsAStop(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	w, done, stop := openTally(t, store, "tally-stop", eventstore.WriterOptions[*tally]{})
	err := w.Do(ctx(t), func(s *tally) ([]proto.Message, error) {
		stop() // while the writer decides: its append runs on a dead context
		return request("d1")(s)
	})
	if !errors.Is(err, eventstore.ErrWriterStopped) {
		t.Errorf("Do = %v, want ErrWriterStopped", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil for a stop", err)
	}
}
