package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// One stream's events share a partition and arrive in publish order, while
// the stream ids spread over several partitions.
func TestPartitionKeyKeepsStreamOrder(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("order")
	pub := mustPublisher(t, b.Brokers())

	const streams, perStream = 20, 25
	var batch []*message.Message
	for i := 0; i < perStream; i++ {
		for s := 0; s < streams; s++ {
			batch = append(batch, keyed(fmt.Sprintf("stream-%d", s), fmt.Sprint(i)))
		}
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}

	sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
	ch := mustSubscribe(t, sub, topic)
	next := map[string]int{}
	partitionOfStream := map[string]int32{}
	partitions := map[int32]bool{}
	for n := 0; n < streams*perStream; n++ {
		msg := receive(t, ch, waitLong)
		stream := msg.Metadata.Get(kafka.PartitionKeyMetadataKey)
		if got, want := string(msg.Payload), fmt.Sprint(next[stream]); got != want {
			t.Fatalf("%s: got event %s, want %s", stream, got, want)
		}
		next[stream]++
		p := partitionOf(t, msg)
		if prev, ok := partitionOfStream[stream]; ok && prev != p {
			t.Fatalf("%s: events in partitions %d and %d", stream, prev, p)
		}
		partitionOfStream[stream] = p
		partitions[p] = true
		msg.Ack()
	}
	if len(partitions) < 2 {
		t.Fatalf("20 streams landed in %d partition(s), want them spread", len(partitions))
	}
}

// A partition's next message waits for the previous one's ack; other
// partitions keep flowing meanwhile.
func TestAckGatesOnlyItsPartition(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("gate")
	pub := mustPublisher(t, b.Brokers())

	first, second := keyed("held", "held-1"), keyed("held", "held-2")
	if err := pub.Publish(topic, first, second); err != nil {
		t.Fatal(err)
	}
	var others []*message.Message
	for i := 0; i < 40; i++ {
		others = append(others, keyed(fmt.Sprintf("other-%d", i), "other"))
	}
	if err := pub.Publish(topic, others...); err != nil {
		t.Fatal(err)
	}

	sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
	ch := mustSubscribe(t, sub, topic)

	var held *message.Message
	var heldPartition int32
	received := map[string]*message.Message{}
	// Read until the held message shows up and nothing else arrives for a
	// while; ack everything but it.
	deadline := time.After(waitLong)
	for held == nil || len(received) < 1+len(others) {
		var msg *message.Message
		select {
		case msg = <-ch:
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("timed out")
		}
		if msg == nil {
			if held != nil {
				break
			}
			continue
		}
		if msg.UUID == second.UUID {
			t.Fatal("second message of the held partition delivered before the first was acked")
		}
		if held != nil && partitionOf(t, msg) == heldPartition {
			t.Fatalf("message %q of the held partition %d delivered while it waits for an ack", msg.Payload, heldPartition)
		}
		received[msg.UUID] = msg
		if msg.UUID == first.UUID {
			held, heldPartition = msg, partitionOf(t, msg)
			continue
		}
		msg.Ack()
	}
	if len(received) < 2 {
		t.Fatalf("no other partition delivered while one message was held (got %d messages)", len(received))
	}

	held.Ack()
	msg := receive(t, ch, waitLong)
	if msg.UUID != second.UUID {
		t.Fatalf("after the ack got %q, want held-2", msg.Payload)
	}
	msg.Ack()
}

// A nack redelivers the same message before anything later of its
// partition; order survives.
func TestNackRedeliversInOrder(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("nack")
	pub := mustPublisher(t, b.Brokers())
	m1, m2, m3 := keyed("s", "1"), keyed("s", "2"), keyed("s", "3")
	if err := pub.Publish(topic, m1, m2, m3); err != nil {
		t.Fatal(err)
	}
	sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
	ch := mustSubscribe(t, sub, topic)

	expect := func(want *message.Message) *message.Message {
		t.Helper()
		got := receive(t, ch, waitLong)
		if got.UUID != want.UUID {
			t.Fatalf("got message %q, want %q", got.Payload, want.Payload)
		}
		return got
	}
	expect(m1).Nack()
	expect(m1).Ack()
	expect(m2).Nack()
	expect(m2).Nack()
	expect(m2).Ack()
	expect(m3).Ack()
}

// Only acked messages are committed: the next member of the group starts
// right after the last ack, at the message that was nacked or left pending.
func TestGroupCommitsOnlyAcked(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("commit")
	pub := mustPublisher(t, b.Brokers())
	var msgs []*message.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, keyed("s", fmt.Sprint(i)))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	const group = "commit-group"

	// Member one acks 0..4, nacks 5, then sees 5 again and leaves it pending.
	sub1 := mustSubscriber(t, testSubscriberConfig(b.Brokers(), group))
	ch1 := mustSubscribe(t, sub1, topic)
	for i := 0; i < 5; i++ {
		msg := receive(t, ch1, waitLong)
		if msg.UUID != msgs[i].UUID {
			t.Fatalf("got %q, want %d", msg.Payload, i)
		}
		msg.Ack()
	}
	receive(t, ch1, waitLong).Nack()
	pending := receive(t, ch1, waitLong)
	if pending.UUID != msgs[5].UUID {
		t.Fatalf("redelivery got %q, want 5", pending.Payload)
	}
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pending.Context().Done():
	default:
		t.Fatal("message context of an abandoned message is still live after Close")
	}

	adm, err := kadm.NewOptClient(kgo.SeedBrokers(b.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offsets, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := kafka.RecordFromContext(pending.Context())
	committed, ok := offsets.Lookup(topic, info.Partition)
	if !ok || committed.At != info.Offset {
		t.Fatalf("committed offset %+v (found %v), want %d: the first unacked message", committed.Offset, ok, info.Offset)
	}

	sub2 := mustSubscriber(t, testSubscriberConfig(b.Brokers(), group))
	ch2 := mustSubscribe(t, sub2, topic)
	for i := 5; i < 10; i++ {
		msg := receive(t, ch2, waitLong)
		if msg.UUID != msgs[i].UUID {
			t.Fatalf("second member got %q, want %d", msg.Payload, i)
		}
		msg.Ack()
	}
	receiveNone(t, ch2, 500*time.Millisecond)
}

// Close waits for a message in flight, commits it once acked, and only then
// returns.
func TestCloseWaitsForInFlightAck(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("graceful")
	pub := mustPublisher(t, b.Brokers())
	m1, m2 := keyed("s", "1"), keyed("s", "2")
	if err := pub.Publish(topic, m1, m2); err != nil {
		t.Fatal(err)
	}
	cfg := testSubscriberConfig(b.Brokers(), "graceful-group")
	cfg.CloseTimeout = 10 * time.Second
	sub1 := mustSubscriber(t, cfg)
	msg := receive(t, mustSubscribe(t, sub1, topic), waitLong)

	closed := make(chan struct{})
	go func() {
		_ = sub1.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a delivered message was not yet acked")
	case <-time.After(300 * time.Millisecond):
	}
	if err := msg.Context().Err(); err != nil {
		t.Fatalf("message context canceled before CloseTimeout: %v", err)
	}
	msg.Ack()
	select {
	case <-closed:
	case <-time.After(waitLong):
		t.Fatal("Close did not return after the ack")
	}

	sub2 := mustSubscriber(t, testSubscriberConfig(b.Brokers(), "graceful-group"))
	next := receive(t, mustSubscribe(t, sub2, topic), waitLong)
	if next.UUID != m2.UUID {
		t.Fatalf("after a graceful close the group resumed at %q, want 2", next.Payload)
	}
}

// The message context carries the Subscribe context's values and where the
// record came from, and ends with the ack.
func TestMessageContext(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("ctx")
	pub := mustPublisher(t, b.Brokers())
	sent := keyed("stream-7", "payload")
	sent.Metadata.Set("correlation_id", "c-1")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}

	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "request-42")
	sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	msg := receive(t, ch, waitLong)
	if msg.UUID != sent.UUID || string(msg.Payload) != "payload" {
		t.Fatalf("got %s %q, want %s %q", msg.UUID, msg.Payload, sent.UUID, "payload")
	}
	if got := msg.Metadata.Get("correlation_id"); got != "c-1" {
		t.Fatalf("metadata correlation_id = %q", got)
	}
	if got := msg.Context().Value(ctxKey{}); got != "request-42" {
		t.Fatalf("subscribe context value = %v", got)
	}
	info, ok := kafka.RecordFromContext(msg.Context())
	if !ok || info.Topic != topic || string(info.Key) != "stream-7" || info.Offset != 0 || info.Timestamp.IsZero() {
		t.Fatalf("record info %+v (ok %v)", info, ok)
	}
	msg.Ack()
	select {
	case <-msg.Context().Done():
	case <-time.After(waitLong):
		t.Fatal("message context not canceled after ack")
	}
}

// Records from other producers (no watermill headers) get their key as the
// partition key and a message UUID that is the same on every delivery.
func TestForeignRecordsGetStableIDs(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("foreign")
	if err := kafka.EnsureTopics(context.Background(), b.Brokers(), []string{topic}, 0); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("s-1"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for i := 0; i < 2; i++ {
		sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
		msg := receive(t, mustSubscribe(t, sub, topic), waitLong)
		if got := msg.Metadata.Get(kafka.PartitionKeyMetadataKey); got != "s-1" {
			t.Fatalf("partition key metadata = %q, want s-1", got)
		}
		ids = append(ids, msg.UUID)
		msg.Ack()
		_ = sub.Close()
	}
	if ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("message ids %q and %q, want one stable id", ids[0], ids[1])
	}
}

// A broker restart (same address, same data directory) interrupts neither
// subscribers nor publishers: both reconnect and carry on.
func TestSubscriberSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	// Registered first, so it runs after the clients' cleanups.
	t.Cleanup(func() { _ = b.Close() })

	topic := uniqueTopic("restart")
	pub := mustPublisher(t, []string{addr})
	grouped := mustSubscriber(t, testSubscriberConfig([]string{addr}, "restart-group"))
	plain := mustSubscriber(t, testSubscriberConfig([]string{addr}, ""))
	if err := grouped.SubscribeInitialize(topic); err != nil {
		t.Fatal(err)
	}
	chGroup := mustSubscribe(t, grouped, topic)
	chPlain := mustSubscribe(t, plain, topic)

	before := keyed("s", "before")
	if err := pub.Publish(topic, before); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan *message.Message{chGroup, chPlain} {
		msg := receive(t, ch, waitLong)
		if msg.UUID != before.UUID {
			t.Fatalf("got %q, want before", msg.Payload)
		}
		msg.Ack()
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let clients notice the broker is gone
	b, err = kafka.StartBroker(kafka.BrokerConfig{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart broker on %s: %v", addr, err)
	}

	after := keyed("s", "after")
	if err := pub.Publish(topic, after); err != nil {
		t.Fatalf("publish after broker restart: %v", err)
	}
	for name, ch := range map[string]<-chan *message.Message{"group": chGroup, "no-group": chPlain} {
		// At-least-once: "before" may come again if its commit was lost;
		// "after" must come.
		for {
			msg := receive(t, ch, waitLong)
			msg.Ack()
			if msg.UUID == after.UUID {
				break
			}
			if msg.UUID != before.UUID {
				t.Fatalf("%s subscriber: unexpected %q", name, msg.Payload)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := kafka.NewPublisher(kafka.PublisherConfig{}); !errors.Is(err, kafka.ErrNoBrokers) {
		t.Fatalf("NewPublisher without brokers: %v, want ErrNoBrokers", err)
	}
	if _, err := kafka.NewSubscriber(kafka.SubscriberConfig{}); !errors.Is(err, kafka.ErrNoBrokers) {
		t.Fatalf("NewSubscriber without brokers: %v, want ErrNoBrokers", err)
	}
	if err := kafka.EnsureTopics(context.Background(), nil, []string{"t"}, 0); !errors.Is(err, kafka.ErrNoBrokers) {
		t.Fatalf("EnsureTopics without brokers: %v, want ErrNoBrokers", err)
	}
	if _, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: []string{"x:1"}, PublishTimeout: time.Millisecond}); err == nil {
		t.Fatal("NewPublisher accepted a 1ms PublishTimeout")
	}
}

func TestPublishErrors(t *testing.T) {
	b := kafkatest.NewBroker(t)
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on addr any more.
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:              []string{addr},
		PublishTimeout:       time.Second,
		DisableTopicCreation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = pub.Publish("nowhere", keyed("s", "x"))
	if err == nil {
		t.Fatal("publish to a dead broker succeeded")
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("publish failed only after %s", took)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("nowhere", keyed("s", "x")); !errors.Is(err, kafka.ErrPublisherClosed) {
		t.Fatalf("publish after close: %v, want ErrPublisherClosed", err)
	}

	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(context.Background(), "t"); !errors.Is(err, kafka.ErrSubscriberClosed) {
		t.Fatalf("subscribe after close: %v, want ErrSubscriberClosed", err)
	}
}

// A member joining while another is in the middle of delivering a poll
// makes the first one stop early: it commits what was acked, rewinds the
// rest, and lets the rebalance through. Nothing is lost, and the newcomer
// gets work although the first member's reader is stalled.
func TestGroupRebalanceMidPollLosesNothing(t *testing.T) {
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("rebalance")
	pub := mustPublisher(t, b.Brokers())
	want := map[string]bool{}
	var msgs []*message.Message
	for i := 0; i < 300; i++ {
		msg := keyed(fmt.Sprintf("stream-%d", i%30), fmt.Sprint(i))
		want[msg.UUID] = true
		msgs = append(msgs, msg)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	const group = "rebalance-group"
	got := map[string]bool{}

	subA := mustSubscriber(t, testSubscriberConfig(b.Brokers(), group))
	chA := mustSubscribe(t, subA, topic)
	first := receive(t, chA, waitLong)
	got[first.UUID] = true
	first.Ack()
	// A now holds a poll with undelivered records of every partition and
	// nobody reads chA.

	subB := mustSubscriber(t, testSubscriberConfig(b.Brokers(), group))
	chB := mustSubscribe(t, subB, topic)
	fromB := receive(t, chB, waitLong)
	got[fromB.UUID] = true
	fromB.Ack()

	deadline := time.After(waitLong)
	for len(got) < len(want) {
		select {
		case msg := <-chA:
			got[msg.UUID] = true
			msg.Ack()
		case msg := <-chB:
			got[msg.UUID] = true
			msg.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d messages: records were skipped across the rebalance", len(got), len(want))
		}
	}
	for id := range got {
		if !want[id] {
			t.Fatalf("unexpected message %s", id)
		}
	}
}
