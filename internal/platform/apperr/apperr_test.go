package apperr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestKindsAndCodes(t *testing.T) {
	sentinel := errors.New("taken")
	err := fmt.Errorf("register: %w", apperr.Wrap(apperr.Conflict, fmt.Errorf("%w: song 1", sentinel)))
	if !errors.Is(err, sentinel) || apperr.KindOf(err) != apperr.Conflict || apperr.Code(err) != connect.CodeAlreadyExists {
		t.Fatalf("wrapped error: is %v, kind %q, code %v", errors.Is(err, sentinel), apperr.KindOf(err), apperr.Code(err))
	}
	if apperr.KindOf(sentinel) != "" || apperr.Code(sentinel) != connect.CodeInternal {
		t.Fatalf("plain error: kind %q, code %v", apperr.KindOf(sentinel), apperr.Code(sentinel))
	}
	if c := apperr.Code(apperr.New(apperr.Exhausted, "too many")); c != connect.CodeResourceExhausted {
		t.Fatalf("exhausted: %v", c)
	}
	for _, id := range []string{"", string(make([]byte, 129))} {
		if err := apperr.CheckRequestID(id); apperr.KindOf(err) != apperr.InvalidInput {
			t.Fatalf("request id of %d bytes: %v", len(id), err)
		}
	}
	if err := apperr.CheckRequestID("r-1"); err != nil {
		t.Fatal(err)
	}
}

// TestEventStoreOutageIsUnavailable: an append to an event store that went
// away, as the official client reports it, answers unavailable (try
// again), not internal; so does a gRPC Unavailable from any dependency.
func TestEventStoreOutageIsUnavailable(t *testing.T) {
	srv, err := eventstored.Start(eventstored.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := eventstore.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev := esdb.EventData{EventType: "t", ContentType: esdb.ContentTypeBinary, Data: []byte("x")}
	if _, err := client.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, ev); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_, err = client.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, ev)
	if err == nil {
		t.Fatal("append to a stopped event store succeeded")
	}
	if c := apperr.Code(fmt.Errorf("append to book-FAN: %w", err)); c != connect.CodeUnavailable {
		t.Fatalf("event store outage %q: code %v, want unavailable", err, c)
	}
	if c := apperr.Code(fmt.Errorf("read: %w", status.Error(codes.Unavailable, "connection refused"))); c != connect.CodeUnavailable {
		t.Fatalf("gRPC unavailable: code %v", c)
	}
	if c := apperr.Code(fmt.Errorf("read: %w", status.Error(codes.InvalidArgument, "bad"))); c != connect.CodeInternal {
		t.Fatalf("another gRPC error: code %v, want internal", c)
	}
}
