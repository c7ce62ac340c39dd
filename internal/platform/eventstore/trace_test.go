package eventstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// spanContext is a sampled span context with the given span id byte.
func spanContext(b byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3, b}, SpanID: trace.SpanID{4, 5, b}, TraceFlags: trace.FlagsSampled})
}

func traceparents(t *testing.T, store *eventstore.Store, stream string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := store.ReadStream(ctx(t), stream, 0, func(e eventstore.Event) error {
		out[e.Message.(*eventsv1.DepositRequested).DepositId] = e.Envelope.Traceparent
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// An event appended inside a span records it in its envelope, an event's
// own Trace wins over the ctx's, and one appended outside any has none.
func TestAppendRecordsTheSpanInTheEnvelope(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "traced-" + uuid.NewString()
	inSpan := trace.ContextWithSpanContext(ctx(t), spanContext(1))
	if _, err := store.Append(inSpan, stream, esdb.Any{},
		eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "ctx"}},
		eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "own"}, Trace: spanContext(2)},
		eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "ctx again"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx(t), stream, esdb.Any{}, eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "none"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ctx": tracing.Traceparent(spanContext(1)), "own": tracing.Traceparent(spanContext(2)),
		"ctx again": tracing.Traceparent(spanContext(1)), "none": ""}
	if got := traceparents(t, store, stream); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("traceparents %v; want %v", got, want)
	}
}

// A writer appends many callers' events together: each keeps its caller's
// span, not the writer's.
func TestWriterKeepsEachCallersTrace(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	stream := "tally-" + uuid.NewString()
	w, done, cancel := openTally(t, store, stream, eventstore.WriterOptions[*tally]{})
	defer func() { cancel(); <-done }()
	var wg sync.WaitGroup
	want := map[string]string{}
	for i := range 50 {
		id := fmt.Sprint(i)
		c := ctx(t)
		if i%2 == 0 {
			c = trace.ContextWithSpanContext(c, spanContext(byte(i+1)))
		}
		want[id] = tracing.Traceparent(trace.SpanContextFromContext(c))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Do(c, request(id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := traceparents(t, store, stream); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("traceparents %v; want %v", got, want)
	}
}
