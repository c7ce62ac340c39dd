package kafka_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// A handler that always fails, and one that panics, end in the poison topic
// with the reason after their retries; the partition then moves on; one
// that meets an outage waits it out; messages handled fine pass their
// correlation id on.
func TestRouterPoisonsFailuresAndRecoversPanics(t *testing.T) {
	b := kafkatest.NewBroker(t)
	in, out := uniqueTopic("router-in"), uniqueTopic("router-out")
	pub := mustPublisher(t, b.Brokers())

	router, err := kafka.NewRouter(kafka.RouterConfig{
		Retry: kafka.RetryConfig{MaxRetries: 2, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
	}, pub)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
	)
	const handlerName = "ledger-projection"
	// An outage longer than the retries (1 + 2 per delivery) is waited out
	// through redeliveries, in order, not poisoned.
	const outageAttempts = 7
	router.AddHandler(handlerName, in,
		mustSubscriber(t, testSubscriberConfig(b.Brokers(), handlerName)),
		out, pub,
		func(msg *message.Message) ([]*message.Message, error) {
			mu.Lock()
			attempts[string(msg.Payload)]++
			n := attempts[string(msg.Payload)]
			mu.Unlock()
			switch string(msg.Payload) {
			case "fail":
				return nil, errors.New("boom: account frozen")
			case "panic":
				panic("kaboom")
			case "outage":
				if n <= outageAttempts {
					return nil, apperr.New(apperr.Unavailable, "event store unreachable")
				}
				return nil, nil
			}
			return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte("handled"))}, nil
		})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case <-time.After(waitLong):
		t.Fatal("router did not start")
	}

	fail, boom, outage, ok := keyed("stream-1", "fail"), keyed("stream-1", "panic"), keyed("stream-1", "outage"), keyed("stream-1", "ok")
	middleware.SetCorrelationID("corr-7", ok)
	if err := pub.Publish(in, fail, boom, outage, ok); err != nil {
		t.Fatal(err)
	}

	poisoned := mustSubscribe(t, mustSubscriber(t, testSubscriberConfig(b.Brokers(), "")), kafka.PoisonTopic)
	reasons := map[string]string{}
	for len(reasons) < 2 {
		msg := receive(t, poisoned, waitLong)
		msg.Ack()
		if msg.Metadata.Get(middleware.PoisonedTopicKey) != in ||
			msg.Metadata.Get(middleware.PoisonedHandlerKey) != handlerName ||
			msg.Metadata.Get(kafka.PartitionKeyMetadataKey) != "stream-1" {
			t.Fatalf("poisoned message metadata %v", msg.Metadata)
		}
		reasons[msg.UUID] = msg.Metadata.Get(kafka.PoisonReasonMetadataKey)
	}
	if r := reasons[fail.UUID]; !strings.Contains(r, "boom: account frozen") {
		t.Fatalf("reason for the failing message = %q", r)
	}
	if r := reasons[boom.UUID]; !strings.Contains(r, "panic occurred") || !strings.Contains(r, "kaboom") {
		t.Fatalf("reason for the panicking message = %q", r)
	}

	handled := receive(t, mustSubscribe(t, mustSubscriber(t, testSubscriberConfig(b.Brokers(), "")), out), waitLong)
	handled.Ack()
	if string(handled.Payload) != "handled" || middleware.MessageCorrelationID(handled) != "corr-7" {
		t.Fatalf("handler output %q with correlation id %q", handled.Payload, middleware.MessageCorrelationID(handled))
	}

	mu.Lock()
	got := map[string]int{"fail": attempts["fail"], "panic": attempts["panic"], "outage": attempts["outage"], "ok": attempts["ok"]}
	mu.Unlock()
	if got["fail"] != 3 || got["panic"] != 3 || got["outage"] != outageAttempts+1 || got["ok"] != 1 {
		t.Fatalf("attempts %v, want fail and panic 3 (1 + 2 retries), outage %d, ok 1", got, outageAttempts+1)
	}
	select {
	case msg := <-poisoned:
		t.Fatalf("also poisoned: %s (%s)", msg.Payload, msg.Metadata.Get(kafka.PoisonReasonMetadataKey))
	default:
	}

	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

func TestNewRouterNeedsPublisher(t *testing.T) {
	if _, err := kafka.NewRouter(kafka.RouterConfig{}, nil); err == nil {
		t.Fatal("NewRouter accepted a nil poison publisher")
	}
}
