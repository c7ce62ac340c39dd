package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/fanfare/fanfare/internal/platform/kafka"
)

// waitLong is how long a test waits for something that should happen; the
// machine is shared, so it is generous.
const waitLong = 20 * time.Second

func uniqueTopic(prefix string) string {
	return prefix + "-" + watermill.NewShortUUID()
}

func mustPublisher(t *testing.T, brokers []string) *kafka.Publisher {
	t.Helper()
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func mustSubscriber(t *testing.T, cfg kafka.SubscriberConfig) *kafka.Subscriber {
	t.Helper()
	sub, err := kafka.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func mustSubscribe(t *testing.T, sub *kafka.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func keyed(key, payload string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	kafka.SetPartitionKey(msg, key)
	return msg
}

// receive returns the next message or fails the test after d.
func receive(t *testing.T, ch <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return msg
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
		return nil
	}
}

// receiveNone fails the test if a message arrives within d.
func receiveNone(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message %s (%q)", msg.UUID, msg.Payload)
		}
	case <-time.After(d):
	}
}

func partitionOf(t *testing.T, msg *message.Message) int32 {
	t.Helper()
	info, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		t.Fatalf("message %s has no record info in its context", msg.UUID)
	}
	return info.Partition
}
