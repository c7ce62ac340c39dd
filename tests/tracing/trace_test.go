// Package tracing_test follows one trace across services: the real plays,
// royalty and accounts code in one process, with the embedded event store,
// the forwarder and the embedded Kafka broker between them.
package tracing_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/sagas/royalty"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/plays"
	playsadapters "github.com/fanfare/fanfare/services/plays/adapters"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// One trace follows a play: the RecordHeartbeats RPC that counts it is the
// root; the royalty saga's consumer span of the PlayCounted it appended is
// its child; the accounts service's commit of the reward the saga asked for
// is the consumer span's child. The trace context crosses the event store
// in the envelope and Kafka in the message metadata, twice each.
func TestOneTraceFromHeartbeatToLedgerCommit(t *testing.T) {
	rec := recorder()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	store := eventstore.NewStore(estest.Connect(t))
	brokers := servicetest.Bus(t, store)
	pub, key, _ := ed25519.GenerateKey(nil)
	song := uuid.NewString()
	if _, err := store.Append(ctx, "song-"+song, esdb.Any{}, eventstore.Pending{Message: &eventsv1.SongRegistered{Version: 1,
		Description: &eventsv1.SongDescription{SongId: song, ArtistId: "artist", DurationMs: 20_000,
			Splits: []*eventsv1.Split{{PayeeId: "artist", SharePpm: 1_000_000}}}}}); err != nil {
		t.Fatal(err)
	}

	acc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers, IdentityKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	_, stopAccounts := servicetest.Serve(t, acc)
	book := acc.App.Books["FAN"]
	for _, id := range []string{"listener", "node", "artist"} {
		if _, err := book.Open(ctx, accdomain.WalletID(id, "FAN")); err != nil {
			t.Fatal(err)
		}
	}
	saga, err := royalty.New(ctx, royalty.Config{Store: store, Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	sagaCtx, stopSaga := context.WithCancel(ctx)
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- saga.Run(sagaCtx) }()
	defer func() {
		stopSaga()
		if err := <-sagaDone; err != nil {
			t.Errorf("royalty saga: %v", err)
		}
		stopAccounts()
	}()
	clock := servicetest.NewClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	const shards = 2
	svc, err := plays.New(ctx, plays.Config{Store: store, Brokers: brokers, IdentityKey: pub, Shards: shards, Now: clock.Now, ExpireEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := servicetest.Serve(t, svc)
	listener := playsv1connect.NewPlaysServiceClient(http.DefaultClient, url,
		connect.WithInterceptors(identity.CallAs(key, identity.Identity{ID: "listener"})))

	// The song reaches plays through Kafka.
	var session string
	servicetest.Eventually(t, "a session of the registered song", func() error {
		r, err := listener.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: song, NodeId: "node"}))
		if err != nil {
			return err
		}
		session = r.Msg.SessionId
		return nil
	})
	counted := false
	for seq := uint64(1); !counted; seq++ {
		if seq > 4 {
			t.Fatal("the play did not count after 40 s of a 20 s song")
		}
		clock.Set(clock.Now().Add(10 * time.Second))
		r, err := listener.RecordHeartbeats(ctx, connect.NewRequest(&playsv1.RecordHeartbeatsRequest{Heartbeats: []*playsv1.Heartbeat{
			{SessionId: session, Seq: seq, FromMs: (seq - 1) * 10_000, ToMs: seq * 10_000}}}))
		if err != nil {
			t.Fatal(err)
		}
		counted = r.Msg.Results[0].PlayNumber != 0
	}
	play := "play-" + session

	// The reward's commit, recorded in the trace of the saga's request.
	var commit sdktrace.ReadOnlySpan
	servicetest.Eventually(t, "the reward's ledger commit span", func() error {
		for _, s := range rec.Ended() {
			if s.Name() == "ledger commit" && attr(s, "fanfare.ledger.request_id") == play {
				commit = s
				return nil
			}
		}
		return fmt.Errorf("none of %d spans commits %s", len(rec.Ended()), play)
	})
	if got := attr(commit, "fanfare.ledger.status"); got != "committed" {
		t.Fatalf("the reward was %s, not committed", got)
	}
	if b := accountstest.Balances(t, book)[accdomain.WalletID("listener", "FAN")]; b <= 0 {
		t.Fatalf("the listener holds %d FAN units after the committed reward", b)
	}

	spans := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.SpanContext().SpanID()] = s
	}
	parentOf := func(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
		t.Helper()
		p, ok := spans[s.Parent().SpanID()]
		if !s.Parent().IsValid() || !ok {
			t.Fatalf("span %q has parent %v, which is not a recorded span", s.Name(), s.Parent())
		}
		return p
	}
	consume := parentOf(commit)
	if consume.Name() != "consume fanfare.plays.v1.PlayCounted" || consume.SpanKind() != trace.SpanKindConsumer ||
		attr(consume, "messaging.consumer.group.name") != royalty.PlaysGroup {
		t.Fatalf("the commit's parent is %q (%v, group %q); want the royalty saga consuming PlayCounted",
			consume.Name(), consume.SpanKind(), attr(consume, "messaging.consumer.group.name"))
	}
	heartbeat := parentOf(consume)
	if heartbeat.Name() != "fanfare.plays.v1.PlaysService/RecordHeartbeats" || heartbeat.SpanKind() != trace.SpanKindServer {
		t.Fatalf("the consumer's parent is %q (%v); want the RecordHeartbeats RPC", heartbeat.Name(), heartbeat.SpanKind())
	}
	if heartbeat.Parent().IsValid() {
		t.Fatalf("the heartbeat RPC has parent %v; it should start the trace", heartbeat.Parent())
	}
	id := heartbeat.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{consume, commit} {
		if s.SpanContext().TraceID() != id {
			t.Fatalf("span %q is in trace %s, the heartbeat in %s", s.Name(), s.SpanContext().TraceID(), id)
		}
	}
	// The trace crossed the store in the PlayCounted's envelope…
	var playCounted *eventstore.Event
	if _, err := store.ReadStream(ctx, playsadapters.ShardStream(playsadapters.ShardOf(song, shards)), 0, func(e eventstore.Event) error {
		if _, ok := e.Message.(*eventsv1.PlayCounted); ok {
			playCounted = &e
		}
		return nil
	}); err != nil || playCounted == nil {
		t.Fatalf("no PlayCounted in the shard stream (%v)", err)
	}
	if want := tracing.Traceparent(heartbeat.SpanContext()); playCounted.Envelope.Traceparent != want {
		t.Fatalf("PlayCounted's envelope has traceparent %q; want the heartbeat's %q", playCounted.Envelope.Traceparent, want)
	}
	// …and the accounts batch that took the request links to its producer.
	linked := false
	for _, s := range rec.Ended() {
		for _, l := range s.Links() {
			linked = linked || s.Name() == "consume fanfare.accounts.v1" &&
				l.SpanContext.TraceID() == id && l.SpanContext.SpanID() == consume.SpanContext().SpanID()
		}
	}
	if !linked {
		t.Fatal("no accounts batch span links to the royalty consumer span")
	}
	t.Logf("trace %s: %s → %s → %s, %d spans recorded", id, heartbeat.Name(), consume.Name(), commit.Name(), len(spans))
}

// recorder installs the global provider once per process: tracers already
// handed out keep delegating to the first one set (go test -count=N).
var recorder = sync.OnceValue(func() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	return rec
})

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}
