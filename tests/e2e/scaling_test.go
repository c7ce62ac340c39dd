package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/cluster"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// TestScaledOutConsumers runs the scenario with two processes of the plays
// service (the gateway spreads calls over both; they write the same shard
// streams at the revisions they read) and two of the royalty saga (one
// consumer group, sharing the partitions). Both royalty processes must
// have consumed, no play may be counted or rewarded twice, every song's
// play numbers must be exactly 1..n, and the outcome must equal the calm
// single-instance run's to the cent.
func TestScaledOutConsumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	size := profile(t).size
	want := calmOutcome(t, ctx, size)

	c := startCluster(t, ctx, cluster.Config{Instances: map[string]int{"plays": 2, "royalty": 2}})
	got := run(t, ctx, c, size)
	if err := got.Compare(want); err != nil {
		t.Fatalf("scaled-out run differs from the single-instance run: %v", err)
	}

	// Play numbers: every PlayCounted in the log, per song 1..n with no gap
	// or repeat, one per session.
	numbers := map[string][]uint64{}
	sessions := map[string]bool{}
	err := eventstore.ScanAll(ctx, c.EventStoreURL(), func(evs []eventstore.RawEvent) error {
		for _, e := range evs {
			if e.Type != "fanfare.plays.v1.PlayCounted" {
				continue
			}
			var pc eventsv1.PlayCounted
			if err := proto.Unmarshal(e.Data, &pc); err != nil {
				return err
			}
			if sessions[pc.SessionId] {
				return fmt.Errorf("session %s counted twice", pc.SessionId)
			}
			sessions[pc.SessionId] = true
			numbers[pc.SongId] = append(numbers[pc.SongId], pc.SongPlayNumber)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for song, ns := range numbers {
		for i, n := range ns {
			if n != uint64(i+1) {
				t.Fatalf("song %s: play numbers %v, want 1..%d in order", song, ns, len(ns))
			}
		}
		total += len(ns)
	}
	if total == 0 || total != want.Plays {
		t.Fatalf("%d plays counted in the log, the calm run counted %d", total, want.Plays)
	}

	// Both royalty processes consumed: each reports lag for the partitions
	// it was given (the metric exists only for partitions it polled).
	for _, name := range []string{"royalty", "royalty-2"} {
		body, err := httpGet(ctx, "http://"+c.Proc(name).Addr+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "fanfare_consumer_lag{") {
			t.Errorf("%s reports no consumer lag: it was given no partition", name)
		}
	}
	t.Logf("%d plays of %d songs over 2 plays and 2 royalty processes: numbers exact, none counted twice", total, len(numbers))
}
