package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// TestConsumeKeyed: plays of 20 songs, each song's in order in one
// partition, with other event types between them. Every play is handled
// once, in order per song, several songs at once; one the handler keeps
// failing is poisoned (and the rest go on), one that meets an outage
// waits it out; the group's offsets are
// committed, so the next consumer of the group gets nothing again.
func TestConsumeKeyed(t *testing.T) {
	broker := kafkatest.NewBroker(t)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	playType, _ := events.TypeName(&eventsv1.PlayCounted{})
	topic, _ := events.Topic(playType)
	const songs, perSong = 20, 15
	var msgs []*message.Message
	for n := 1; n <= perSong; n++ {
		for s := 0; s < songs; s++ {
			song := fmt.Sprint("song-", s)
			b, _ := proto.Marshal(&eventsv1.PlayCounted{PlayId: fmt.Sprint(song, "/", n), SongId: song, SongPlayNumber: uint64(n)})
			m := message.NewMessage(fmt.Sprint("00000000-0000-4000-8000-", fmt.Sprintf("%012d", s*1000+n)), b)
			m.Metadata.Set(kafka.TypeMetadataKey, playType)
			kafka.SetPartitionKey(m, "plays-"+song)
			msgs = append(msgs, m)
			if n == 3 { // another type on the topic, skipped
				other := message.NewMessage(fmt.Sprint("00000000-0000-4000-9000-", fmt.Sprintf("%012d", s)), []byte("x"))
				other.Metadata.Set(kafka.TypeMetadataKey, "fanfare.plays.v1.SessionStarted")
				kafka.SetPartitionKey(other, "plays-"+song)
				msgs = append(msgs, other)
			}
		}
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	poisonSub := mustSubscriber(t, kafka.SubscriberConfig{Brokers: broker.Brokers()})
	poisoned := mustSubscribe(t, poisonSub, "keyed-poison")

	var mu sync.Mutex
	seen := map[string][]uint64{}
	var inFlight, maxInFlight, outage atomic.Int32
	// song-3's 5th play meets an outage longer than its retries (1 + 2 per
	// delivery): it is waited out, in order, not poisoned.
	const outageAttempts = 7
	cfg := kafka.KeyedConfig{Brokers: broker.Brokers(), ConsumerGroup: "keyed",
		Router: kafka.RouterConfig{Retry: kafka.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond}, PoisonTopic: "keyed-poison"}}
	run := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err := kafka.ConsumeKeyed(ctx, cfg, func(e *eventsv1.PlayCounted) string { return e.SongId },
			func(ctx context.Context, cause events.Envelope, e *eventsv1.PlayCounted) error {
				if cause.ID == uuid.Nil || ctx.Err() != nil {
					return errors.New("no source event")
				}
				if e.PlayId == "song-7/9" {
					return errors.New("this play cannot be handled")
				}
				if e.PlayId == "song-3/5" && outage.Add(1) <= outageAttempts {
					return apperr.New(apperr.Unavailable, "event store unreachable")
				}
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
				}
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				defer mu.Unlock()
				seen[e.SongId] = append(seen[e.SongId], e.SongPlayNumber)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		total := 0
		for _, ns := range seen {
			total += len(ns)
		}
		mu.Unlock()
		if total == songs*perSong-1 || time.Now().After(deadline) {
			break
		}
		run(2 * time.Second)
	}
	for s := 0; s < songs; s++ {
		song := fmt.Sprint("song-", s)
		var want []uint64
		for n := 1; n <= perSong; n++ {
			if song != "song-7" || n != 9 {
				want = append(want, uint64(n))
			}
		}
		if fmt.Sprint(seen[song]) != fmt.Sprint(want) {
			t.Fatalf("%s handled %v, want %v", song, seen[song], want)
		}
	}
	if maxInFlight.Load() < 2 {
		t.Fatalf("at most %d play handled at once: songs did not go in parallel", maxInFlight.Load())
	}
	if n := outage.Load(); n != outageAttempts+1 {
		t.Fatalf("song-3/5 handled in %d attempts, want %d", n, outageAttempts+1)
	}
	p := receive(t, poisoned, 10*time.Second)
	var pc eventsv1.PlayCounted
	if err := proto.Unmarshal(p.Payload, &pc); err != nil || pc.PlayId != "song-7/9" || p.Metadata.Get(kafka.PoisonReasonMetadataKey) == "" {
		t.Fatalf("poisoned %q (%v), reason %q", pc.PlayId, err, p.Metadata.Get(kafka.PoisonReasonMetadataKey))
	}
	// Committed: another member of the group starts after everything.
	before := len(seen["song-0"])
	run(2 * time.Second)
	if len(seen["song-0"]) != before {
		t.Fatalf("a new consumer of the group handled song-0 again: %v", seen["song-0"])
	}
	t.Logf("%d plays of %d songs, up to %d at once, one poisoned", songs*perSong-1, songs, maxInFlight.Load())
}
