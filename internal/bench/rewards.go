package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/royalty"
	"github.com/fanfare/fanfare/services/accounts"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// rewardLatency measures, at a steady rate of counted plays, the time from
// a PlayCounted being appended to the event store to its reward being
// committed in the FAN book: forwarder → Kafka → royalty saga (append of
// its request) → forwarder → Kafka → accounts (book append). It returns
// the latencies (sorted) and how many plays were sent.
func rewardLatency(ctx context.Context, st *stack, rate int, d time.Duration, log func(string, ...any)) ([]time.Duration, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idKey, _, _ := ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: st.store, Brokers: st.broker.Brokers(), IdentityKey: idKey})
	if err != nil {
		return nil, 0, err
	}
	errs := make(chan error, 2)
	go func() { errs <- acc.Run(ctx) }()
	saga, err := royalty.New(ctx, royalty.Config{Store: st.store, Brokers: st.broker.Brokers()})
	if err != nil {
		return nil, 0, err
	}
	go func() { errs <- saga.Run(ctx) }()

	const listeners = 500
	book := acc.App.Books["FAN"]
	for i := 0; i < listeners; i++ {
		if _, err := book.Open(ctx, accdomain.WalletID(fmt.Sprint("listener-", i), "FAN")); err != nil {
			return nil, 0, err
		}
	}
	if _, err := book.Open(ctx, accdomain.WalletID("node", "FAN")); err != nil {
		return nil, 0, err
	}
	// As in the plays service, each song's plays are numbered in one
	// stream (so they reach the saga in order): 16 songs, 16 streams.
	const songs = 16
	songIDs := make([]string, songs)
	for i := range songIDs {
		songIDs[i] = uuid.NewString()
		if _, err := st.store.Append(ctx, "song-"+songIDs[i], esdb.Any{}, eventstore.Pending{Message: &eventsv1.SongRegistered{Version: 1,
			Description: &eventsv1.SongDescription{SongId: songIDs[i], ArtistId: "artist", DurationMs: 1000,
				Splits: []*eventsv1.Split{{PayeeId: "artist", SharePpm: 1_000_000}}}}}); err != nil {
			return nil, 0, err
		}
	}
	song := songIDs[0]

	// Commits are observed on the FAN book's stream, live.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	if err := followCommits(ctx, st.store.Client, "book-FAN", func(tx string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if t0, ok := sent[tx]; ok {
			lat = append(lat, at.Sub(t0))
			delete(sent, tx)
		}
	}); err != nil {
		return nil, 0, err
	}

	// A warm-up play makes sure every consumer is running before timing.
	warm := func(id string, n uint64) proto.Message {
		return &eventsv1.PlayCounted{PlayId: id, SessionId: "s-" + id, SongId: song, ListenerId: "listener-0", NodeId: "node", SongPlayNumber: n}
	}
	mu.Lock()
	sent["warm"] = time.Now()
	mu.Unlock()
	if _, err := st.store.Append(ctx, "plays-bench-0", esdb.Any{}, eventstore.Pending{Message: warm("warm", 1)}); err != nil {
		return nil, 0, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		_, waiting := sent["warm"]
		lat = lat[:0]
		mu.Unlock()
		if !waiting {
			break
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("the warm-up play was not rewarded within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	log("counting %d plays/s for %s", rate, d)
	const tick = 10 * time.Millisecond
	perTick := rate / int(time.Second/tick)
	t := time.NewTicker(tick)
	defer t.Stop()
	n := 0
	numbers := make([]uint64, songs)
	numbers[0] = 1 // the warm-up play
	start := time.Now()
	for tk := 0; time.Since(start) < d; tk++ {
		<-t.C
		s := tk % songs
		batch := make([]eventstore.Pending, perTick)
		now := time.Now()
		mu.Lock()
		for i := range batch {
			n++
			numbers[s]++
			id := fmt.Sprint("play-", n)
			sent[id] = now
			batch[i] = eventstore.Pending{Message: &eventsv1.PlayCounted{PlayId: id, SessionId: "s-" + id, SongId: songIDs[s],
				ListenerId: fmt.Sprint("listener-", n%listeners), NodeId: "node", SongPlayNumber: numbers[s]}}
		}
		mu.Unlock()
		if _, err := st.store.Append(ctx, fmt.Sprint("plays-bench-", s), esdb.Any{}, batch...); err != nil {
			return nil, 0, err
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("%d of %d plays not rewarded within 60s", left, n)
		}
		select {
		case err := <-errs:
			return nil, 0, fmt.Errorf("a service stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := append([]time.Duration(nil), lat...)
	sortDurations(out)
	return out, n, nil
}

// followCommits calls committed with the transaction id of every request
// committed in a book's stream from now on, and the time it was seen,
// until ctx ends (or the subscription drops).
func followCommits(ctx context.Context, client *esdb.Client, stream string, committed func(tx string, at time.Time)) error {
	sub, err := client.SubscribeToStream(ctx, stream, esdb.SubscribeToStreamOptions{From: esdb.End{}})
	if err != nil {
		return err
	}
	go func() {
		defer sub.Close()
		for {
			ev := sub.Recv()
			if ev.SubscriptionDropped != nil {
				return
			}
			if ev.EventAppeared == nil {
				continue
			}
			now := time.Now()
			e, err := eventstore.Decode(ev.EventAppeared.OriginalEvent())
			if err != nil {
				continue
			}
			b, ok := e.Message.(*eventsv1.BookBatchAppended)
			if !ok {
				continue
			}
			for _, en := range b.Entries {
				if d := en.GetDecision(); d.GetCommitted() != nil {
					committed(d.Request.TransactionId, now)
				}
			}
		}
	}()
	return nil
}
