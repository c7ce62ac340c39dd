package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// Batches keep each key's order, commit what was handled, and hand a failed
// batch over again to the next consumer of the group.
func TestConsumeBatches(t *testing.T) {
	broker := kafkatest.NewBroker(t)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const topic = "batch-test"
	publish := func(from, to int) {
		var msgs []*message.Message
		for i := from; i < to; i++ {
			m := message.NewMessage(fmt.Sprint("m", i), []byte(fmt.Sprint(i)))
			kafka.SetPartitionKey(m, fmt.Sprint("key", i%20))
			msgs = append(msgs, m)
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, 600)

	type seenT struct {
		mu      sync.Mutex
		byKey   map[string][]int
		count   int
		batches int
	}
	run := func(seen *seenT, want int, fail bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return kafka.ConsumeBatches(ctx, kafka.BatchConfig{Brokers: broker.Brokers(), ConsumerGroup: "g", Topic: topic},
			func(_ context.Context, msgs []*message.Message) error {
				if fail {
					return errors.New("handler failed")
				}
				seen.mu.Lock()
				defer seen.mu.Unlock()
				seen.batches++
				for _, m := range msgs {
					var n int
					fmt.Sscan(string(m.Payload), &n)
					k := m.Metadata.Get(kafka.PartitionKeyMetadataKey)
					seen.byKey[k] = append(seen.byKey[k], n)
					seen.count++
				}
				if seen.count >= want {
					cancel()
				}
				return nil
			})
	}
	first := &seenT{byKey: map[string][]int{}}
	if err := run(first, 600, false); err != nil {
		t.Fatal(err)
	}
	if first.count != 600 {
		t.Fatalf("got %d messages, want 600", first.count)
	}
	for k, ns := range first.byKey {
		for i := 1; i < len(ns); i++ {
			if ns[i] <= ns[i-1] {
				t.Fatalf("%s out of order: %v", k, ns)
			}
		}
	}
	if first.batches >= 600 {
		t.Fatalf("%d batches for 600 messages: nothing was batched", first.batches)
	}

	// New messages; a failing handler commits nothing, so the next consumer
	// of the group gets exactly those again — and none of the first 600.
	publish(600, 700)
	if err := run(&seenT{byKey: map[string][]int{}}, 100, true); err == nil {
		t.Fatal("a failing handler did not stop the consumer")
	}
	again := &seenT{byKey: map[string][]int{}}
	if err := run(again, 100, false); err != nil {
		t.Fatal(err)
	}
	if again.count != 100 {
		t.Fatalf("after the failure %d messages were redelivered, want the 100 uncommitted", again.count)
	}
	for _, ns := range again.byKey {
		for _, n := range ns {
			if n < 600 {
				t.Fatalf("committed message %d delivered again", n)
			}
		}
	}
}
