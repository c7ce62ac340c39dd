package forwarder_test

import (
	"context"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// A forwarded event written inside a span carries it as the message's
// traceparent metadata; one written outside any has no such key.
func TestMessageCarriesTheEventsTraceparent(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	ctx := context.Background()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	stream := "deposit-" + uuid.NewString()
	if _, err := store.Append(trace.ContextWithSpanContext(ctx, sc), stream, esdb.Any{}, eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "traced"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, stream, esdb.Any{}, eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "untraced"}}); err != nil {
		t.Fatal(err)
	}
	rs, err := store.Client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for _, want := range []string{tracing.Traceparent(sc), ""} {
		ev, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		_, msg, err := forwarder.Message(ev.OriginalEvent())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := msg.Metadata[forwarder.MetaTraceparent]
		if got != want || ok != (want != "") {
			t.Fatalf("traceparent metadata %q (present %v); want %q", got, ok, want)
		}
	}
}
