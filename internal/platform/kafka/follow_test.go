package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

func deposit(t *testing.T, id string) *message.Message {
	t.Helper()
	data, err := proto.Marshal(&eventsv1.DepositRequested{DepositId: id})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(watermill.NewUUID(), data)
	msg.Metadata.Set(kafka.TypeMetadataKey, "fanfare.accounts.v1.DepositRequested")
	kafka.SetPartitionKey(msg, id)
	return msg
}

// Follow says it caught up only once fn has seen everything the topic held
// when it started (spread over partitions), and at once on an empty topic;
// later messages still reach fn.
func TestFollowReportsCatchingUp(t *testing.T) {
	b := kafkatest.NewBroker(t)
	brokers := b.Brokers()
	topic := uniqueTopic("follow")
	if err := kafka.EnsureTopics(context.Background(), brokers, []string{topic}, 4); err != nil {
		t.Fatal(err)
	}
	pub := mustPublisher(t, brokers)
	const backlog = 200
	for i := range backlog {
		if err := pub.Publish(topic, deposit(t, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := 0
	atCatchUp := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		done <- kafka.Follow(ctx, brokers, topic, func(context.Context, proto.Message) error {
			mu.Lock()
			seen++
			mu.Unlock()
			return nil
		}, func() {
			mu.Lock()
			atCatchUp <- seen
			mu.Unlock()
		})
	}()
	select {
	case n := <-atCatchUp:
		if n != backlog {
			t.Fatalf("caught up after %d messages, want %d", n, backlog)
		}
	case <-time.After(waitLong):
		t.Fatal("Follow never caught up")
	}
	if err := pub.Publish(topic, deposit(t, "late")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLong)
	for {
		mu.Lock()
		n := seen
		mu.Unlock()
		if n == backlog+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fn saw %d messages, want %d", n, backlog+1)
		}
		time.Sleep(10 * time.Millisecond)
	}

	empty := make(chan struct{})
	go func() {
		_ = kafka.Follow(ctx, brokers, uniqueTopic("empty"), func(context.Context, proto.Message) error { return nil }, func() { close(empty) })
	}()
	select {
	case <-empty:
	case <-time.After(waitLong):
		t.Fatal("Follow of an empty topic never caught up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow after its context ended: %v", err)
	}
}
