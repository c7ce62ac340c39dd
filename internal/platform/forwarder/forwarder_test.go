package forwarder_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/forwarder"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

type received struct {
	topic string
	msg   *message.Message
}

func consume(t *testing.T, brokers []string, topics []string, out chan<- received) {
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	for _, topic := range topics {
		ch, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		go func(topic string) {
			for m := range ch {
				m.Ack()
				out <- received{topic, m}
			}
		}(topic)
	}
}

// Every service event reaches its service's topic once, keyed by stream,
// in stream order, with the envelope; a restarted forwarder resumes from
// its checkpoint without re-publishing what was acknowledged.
func TestForwarderPublishesEveryEventInStreamOrder(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	broker := kafkatest.NewBroker(t)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type sent struct {
		stream string
		id     uuid.UUID
		topic  string
	}
	var all []sent
	appendSome := func(round int) {
		for s := 0; s < 5; s++ {
			stream := fmt.Sprintf("deposit-r%d-%d", round, s)
			for i := 0; i < 4; i++ {
				id := uuid.New()
				msg := proto.Message(&eventsv1.DepositRequested{DepositId: stream, Reference: strconv.Itoa(i)})
				topic := "fanfare.accounts.v1"
				if i == 3 {
					msg, topic = &eventsv1.PlayCounted{SongId: stream}, "fanfare.plays.v1"
				}
				if _, err := store.Append(ctx, stream, anyRev{}.rev(), eventstore.Pending{ID: id, Message: msg}); err != nil {
					t.Fatal(err)
				}
				all = append(all, sent{stream, id, topic})
			}
		}
	}
	appendSome(0)

	got := make(chan received, 1000)
	consume(t, broker.Brokers(), []string{"fanfare.accounts.v1", "fanfare.plays.v1"}, got)

	run := func() (context.CancelFunc, chan error) {
		fctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- forwarder.Run(fctx, forwarder.Config{Store: store, Publisher: pub, Name: "fwd-test"}) }()
		return stop, done
	}
	stop, done := run()
	byStream := map[string][]received{}
	collect := func(n int) {
		for i := 0; i < n; i++ {
			select {
			case r := <-got:
				s := r.msg.Metadata.Get(forwarder.MetaStream)
				byStream[s] = append(byStream[s], r)
			case <-time.After(20 * time.Second):
				t.Fatalf("only %d of %d events arrived", i, n)
			}
		}
	}
	collect(20)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	appendSome(1)
	stop, done = run()
	defer func() { stop(); <-done }()
	collect(20)
	select {
	case r := <-got:
		t.Fatalf("an extra message arrived after the restart: %s %s", r.msg.Metadata.Get(forwarder.MetaStream), r.msg.UUID)
	case <-time.After(500 * time.Millisecond):
	}

	i := 0
	streams := map[string][]sent{}
	for _, s := range all {
		streams[s.stream] = append(streams[s.stream], s)
	}
	keys := make([]string, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, stream := range keys {
		want := streams[stream]
		recv := byStream[stream]
		// Per topic, a stream's events arrive in stream order.
		var gotAccounts, wantAccounts []string
		for _, r := range recv {
			if r.topic == "fanfare.accounts.v1" {
				gotAccounts = append(gotAccounts, r.msg.UUID)
			}
			if r.msg.Metadata.Get(kafka.PartitionKeyMetadataKey) != stream {
				t.Fatalf("%s: partition key %q", stream, r.msg.Metadata.Get(kafka.PartitionKeyMetadataKey))
			}
			env, err := events.UnmarshalEnvelope([]byte(r.msg.Metadata.Get(forwarder.MetaEnvelope)))
			if err != nil || env.ID.String() != r.msg.UUID || env.Stream != stream {
				t.Fatalf("%s: envelope %+v (%v)", stream, env, err)
			}
		}
		for _, s := range want {
			if s.topic == "fanfare.accounts.v1" {
				wantAccounts = append(wantAccounts, s.id.String())
			}
		}
		if fmt.Sprint(gotAccounts) != fmt.Sprint(wantAccounts) || len(recv) != len(want) {
			t.Fatalf("%s: got %d messages, accounts order %v, want %v", stream, len(recv), gotAccounts, wantAccounts)
		}
		i++
	}
	if i != 10 {
		t.Fatalf("checked %d streams", i)
	}
}

type anyRev struct{}

// A second forwarder fences the first: only one publishes at a time.
func TestSecondForwarderFencesFirst(t *testing.T) {
	store := eventstore.NewStore(estest.Connect(t))
	broker := kafkatest.NewBroker(t)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	start := func(name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := forwarder.Run(ctx, forwarder.Config{Store: store, Publisher: pub, Name: "fence"})
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		}()
	}
	start("first")
	time.Sleep(200 * time.Millisecond)
	start("second")
	time.Sleep(200 * time.Millisecond)
	if _, err := store.Append(ctx, "deposit-fence", anyRev{}.rev(), eventstore.Pending{Message: &eventsv1.DepositRequested{DepositId: "x"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		err, stopped := errs["first"]
		mu.Unlock()
		if stopped {
			if err == nil || !isFenced(err) {
				t.Fatalf("first forwarder stopped with %v, want fenced", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first forwarder kept running beside the second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if errs["second"] != nil {
		t.Fatalf("second forwarder: %v", errs["second"])
	}
}
