package kafka_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// A record acknowledged before the broker stopped is readable after it
// restarts on the same data directory, headers and key included.
func TestBrokerRestartKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	topic := uniqueTopic("persist")
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []string{topic}, 3); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: b.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	sent := keyed("account-1", "credited")
	sent.Metadata.Set("event_type", "Credited")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = kafka.StartBroker(kafka.BrokerConfig{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = b.Close() })

	sub := mustSubscriber(t, kafka.SubscriberConfig{Brokers: b.Brokers(), DisableTopicCreation: true})
	msg := receive(t, mustSubscribe(t, sub, topic), waitLong)
	if msg.UUID != sent.UUID || string(msg.Payload) != "credited" ||
		msg.Metadata.Get("event_type") != "Credited" ||
		msg.Metadata.Get(kafka.PartitionKeyMetadataKey) != "account-1" {
		t.Fatalf("after restart got %s %q %v", msg.UUID, msg.Payload, msg.Metadata)
	}
	msg.Ack()

	// The topic kept its three partitions: EnsureTopics leaves it alone.
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []string{topic}, 12); err != nil {
		t.Fatal(err)
	}
	if got := partitionCount(t, b.Brokers(), topic); got != 3 {
		t.Fatalf("topic has %d partitions after restart and EnsureTopics, want 3", got)
	}
}

func TestEnsureTopics(t *testing.T) {
	b := kafkatest.NewBroker(t)
	fresh, existing := uniqueTopic("fresh"), uniqueTopic("existing")
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, b.Brokers(), []string{existing}, 2); err != nil {
		t.Fatal(err)
	}
	// Twice, to show it is idempotent; 0 means the default of 12.
	for i := 0; i < 2; i++ {
		if err := kafka.EnsureTopics(ctx, b.Brokers(), []string{fresh, existing}, 0); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if got := partitionCount(t, b.Brokers(), fresh); got != kafka.DefaultPartitions {
		t.Fatalf("fresh topic has %d partitions, want %d", got, kafka.DefaultPartitions)
	}
	if got := partitionCount(t, b.Brokers(), existing); got != 2 {
		t.Fatalf("existing topic has %d partitions, want its original 2", got)
	}
	// Real Kafka rejects these names; the embedded broker would not, so
	// the package checks them itself.
	for _, bad := range []string{"bad topic name!", "..", "a/b"} {
		if err := kafka.EnsureTopics(ctx, b.Brokers(), []string{bad}, 0); err == nil {
			t.Fatalf("EnsureTopics accepted the invalid topic name %q", bad)
		}
		if err := mustPublisher(t, b.Brokers()).Publish(bad, keyed("s", "x")); err == nil {
			t.Fatalf("Publish accepted the invalid topic name %q", bad)
		}
	}
}

func TestStartBrokerErrors(t *testing.T) {
	if _, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "no-port"}); err == nil {
		t.Fatal("StartBroker accepted an address without a port")
	}
	b := kafkatest.NewBroker(t)
	if _, err := kafka.StartBroker(kafka.BrokerConfig{Addr: b.Addr()}); err == nil {
		t.Fatal("StartBroker listened on an address already in use")
	}
}

func partitionCount(t *testing.T, brokers []string, topic string) int32 {
	t.Helper()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	details, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: found %v, err %v", topic, ok, d.Err)
	}
	return int32(len(d.Partitions))
}
