package kafka_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	"go.opentelemetry.io/otel/trace"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A consumed message's context has its producer's span (the traceparent
// metadata) as remote parent, through the Subscriber and ConsumeBatches
// alike; a message without one, or with a malformed one, has none.
func TestConsumedMessagesContinueTheProducersTrace(t *testing.T) {
	broker := kafkatest.NewBroker(t)
	pub := mustPublisher(t, broker.Brokers())
	topic := uniqueTopic("trace")
	traced, untraced, malformed := keyed("k", "traced"), keyed("k", "untraced"), keyed("k", "malformed")
	traced.Metadata.Set(kafka.TraceparentMetadataKey, traceparent)
	malformed.Metadata.Set(kafka.TraceparentMetadataKey, "00-zz")
	if err := pub.Publish(topic, traced, untraced, malformed); err != nil {
		t.Fatal(err)
	}
	want := map[string]trace.SpanContext{"traced": tracing.Parse(traceparent), "untraced": {}, "malformed": {}}
	check := func(how string, m *message.Message) {
		t.Helper()
		got := trace.SpanContextFromContext(m.Context())
		if w := want[string(m.Payload)]; !got.Equal(w) {
			t.Errorf("%s: %s message has span context %+v; want %+v", how, m.Payload, got, w)
		}
	}

	ch := mustSubscribe(t, mustSubscriber(t, kafka.SubscriberConfig{Brokers: broker.Brokers()}), topic)
	for range want {
		m := receive(t, ch, waitLong)
		check("subscriber", m)
		m.Ack()
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	seen := 0
	err := kafka.ConsumeBatches(ctx, kafka.BatchConfig{Brokers: broker.Brokers(), ConsumerGroup: "g", Topic: topic, MaxRecords: 10},
		func(_ context.Context, msgs []*message.Message) error {
			for _, m := range msgs {
				check("batch", m)
			}
			if seen += len(msgs); seen == len(want) {
				cancel()
			}
			return nil
		})
	if err != nil || seen != len(want) {
		t.Fatalf("ConsumeBatches = %v after %d of %d messages", err, seen, len(want))
	}
}
