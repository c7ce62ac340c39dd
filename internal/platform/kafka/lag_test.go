package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	"github.com/fanfare/fanfare/internal/platform/metrics"
)

// lagOf is the fanfare_consumer_lag series of group on topic's partition,
// and whether there is one.
func lagOf(t *testing.T, group, topic string, partition int32) (float64, bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"group": group, "topic": topic, "partition": strconv.Itoa(int(partition))}
	for _, f := range families {
		if f.GetName() != "fanfare_consumer_lag" {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func publishN(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	if err := kafka.EnsureTopics(context.Background(), brokers, []string{topic}, 1); err != nil {
		t.Fatal(err)
	}
	pub := mustPublisher(t, brokers)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = keyed("k", fmt.Sprint(i))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

// A batch consumer taking one record per poll reports, with each batch,
// how many records are still behind it, down to 0.
func TestConsumeBatchesReportsLag(t *testing.T) {
	broker := kafkatest.NewBroker(t)
	topic, group := uniqueTopic("lag-batches"), "lag-batches-group"
	const n = 5
	publishN(t, broker.Brokers(), topic, n)

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var seen []float64
	err := kafka.ConsumeBatches(ctx, kafka.BatchConfig{Brokers: broker.Brokers(), ConsumerGroup: group, Topic: topic, MaxRecords: 1},
		func(ctx context.Context, msgs []*message.Message) error {
			for _, m := range msgs {
				info, _ := kafka.RecordFromContext(m.Context())
				lag, ok := lagOf(t, group, topic, 0)
				if !ok {
					t.Errorf("no lag reported with offset %d", info.Offset)
				}
				if want := float64(n - 1 - info.Offset); lag != want {
					t.Errorf("lag %v with offset %d, want %v", lag, info.Offset, want)
				}
				seen = append(seen, lag)
				if info.Offset == n-1 {
					cancel()
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || seen[0] != n-1 || seen[n-1] != 0 {
		t.Fatalf("lags seen %v, want %d down to 0", seen, n-1)
	}
}

// A group subscriber reports no lag once it consumed everything, and drops
// the series when it leaves the group.
func TestSubscriberReportsLag(t *testing.T) {
	broker := kafkatest.NewBroker(t)
	topic, group := uniqueTopic("lag-sub"), "lag-sub-group"
	const n = 10
	publishN(t, broker.Brokers(), topic, n)

	sub := mustSubscriber(t, kafka.SubscriberConfig{Brokers: broker.Brokers(), ConsumerGroup: group})
	ch := mustSubscribe(t, sub, topic)
	for i := range n {
		msg := receive(t, ch, waitLong)
		info, _ := kafka.RecordFromContext(msg.Context())
		// Reported with the poll that returned the record: at most what
		// follows it.
		lag, ok := lagOf(t, group, topic, 0)
		if !ok || lag > float64(n-1-info.Offset) || lag < 0 {
			t.Fatalf("message %d (offset %d): lag %v (reported %v)", i, info.Offset, lag, ok)
		}
		msg.Ack()
	}
	if lag, ok := lagOf(t, group, topic, 0); !ok || lag != 0 {
		t.Fatalf("lag %v (reported %v) after consuming everything, want 0", lag, ok)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if lag, ok := lagOf(t, group, topic, 0); ok {
		t.Fatalf("lag %v still reported after leaving the group", lag)
	}
}
