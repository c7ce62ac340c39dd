package royalty_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/royalty"
	"github.com/fanfare/fanfare/sagas/royalty/domain"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

const fan = domain.UnitsPerFAN

// The saga over the real path: PlayCounted from the event log through
// Kafka, one ledger request per play decided by the accounts service, and
// the answer recorded; duplicates settle once, a policy change applies to
// later plays only, and every FAN balance and the supply add up. A
// restarted saga recovers from its snapshot and still settles a play once.
func TestRewardsThroughTheLedger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	brokers := servicetest.Bus(t, store)
	idKey, _, _ := ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		t.Fatal(err)
	}
	go acc.Run(ctx)
	sagaCfg := royalty.Config{Store: store, Brokers: brokers, SnapshotEvery: 3,
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}}
	sagaCtx, stopSaga := context.WithCancel(ctx)
	saga, err := royalty.New(ctx, sagaCfg)
	if err != nil {
		t.Fatal(err)
	}
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- saga.Run(sagaCtx) }()

	book := acc.App.Books["FAN"]
	for _, id := range []string{"listener", "node", "artist", "charity"} {
		if _, err := book.Open(ctx, accdomain.WalletID(id, "FAN")); err != nil {
			t.Fatal(err)
		}
	}
	song, hit := uuid.NewString(), uuid.NewString()
	appendEv := func(stream string, m proto.Message) {
		t.Helper()
		if _, err := store.Append(ctx, stream, esdb.Any{}, eventstore.Pending{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{song, hit} {
		appendEv("song-"+id, &eventsv1.SongRegistered{Version: 1, Description: &eventsv1.SongDescription{SongId: id, ArtistId: "artist",
			DurationMs: 1000, Splits: []*eventsv1.Split{{PayeeId: "artist", SharePpm: 666_667}, {PayeeId: "charity", SharePpm: 333_333}}}})
	}
	playOf := func(song, id string, number uint64, listener string) *eventsv1.PlayCounted {
		return &eventsv1.PlayCounted{PlayId: id, SessionId: "s-" + id, SongId: song, ListenerId: listener, NodeId: "node", SongPlayNumber: number, ListenerPlayNumber: 1}
	}
	play := func(id string, number uint64, listener string) *eventsv1.PlayCounted {
		return playOf(song, id, number, listener)
	}
	// p1: discovery tier, delivered twice. p2: play 10,001 of a hit, the
	// standard tier (no burn at this supply). p3: a listener without a FAN
	// wallet.
	appendEv("plays-0", play("p1", 1, "listener"))
	appendEv("plays-0", play("p1", 1, "listener"))
	appendEv("plays-0", playOf(hit, "p2", 10_001, "listener"))
	appendEv("plays-0", play("p3", 2, "stranger"))

	answers := waitAnswers(t, ctx, store, "p1", "p2", "p3")
	if _, ok := answers["p1"].(*eventsv1.RewardSettled); !ok {
		t.Fatalf("p1: %v", answers["p1"])
	}
	if s, ok := answers["p2"].(*eventsv1.RewardSettled); !ok || s.Minted.Units != 2*fan || s.Burned.Units != 0 {
		t.Fatalf("p2: %v", answers["p2"])
	}
	if r, ok := answers["p3"].(*eventsv1.RewardRefused); !ok || r.Reason != eventsv1.RewardRefused_REASON_LEDGER_REJECTED {
		t.Fatalf("p3: %v", answers["p3"])
	}

	// Policy v2 doubles the discovery listener reward: only later plays get it.
	rules := domain.DefaultRules()
	rules.DiscoveryListenerReward = 2 * fan
	policy := adapters.PolicyToEvent(accdomain.DefaultPolicy(), "test", "double discovery listener reward")
	policy.Version = 2
	policy.Policy.Rewards = rules.Proto()
	appendEv("policy", policy)
	deadline := time.Now().Add(30 * time.Second)
	for version(t, saga) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the saga did not apply policy v2")
		}
		time.Sleep(20 * time.Millisecond)
	}
	appendEv("plays-0", play("p4", 3, "listener"))
	if s, ok := waitAnswers(t, ctx, store, "p4")["p4"].(*eventsv1.RewardSettled); !ok || s.Minted.Units != 4*fan {
		t.Fatalf("p4 under policy v2: %v", s)
	}

	// Ledger: p1 (1+1+1), p2 (1 split 66.666667/33.333333 + 1), p4 (2+1+1).
	want := map[string]int64{
		accdomain.WalletID("listener", "FAN"):            3 * fan,
		accdomain.WalletID("node", "FAN"):                3 * fan,
		accdomain.EscrowID("discovery", "artist", "FAN"): 2 * fan,
		accdomain.WalletID("artist", "FAN"):              66_666_700,
		accdomain.WalletID("charity", "FAN"):             33_333_300,
		accdomain.Mint:                                   -9 * fan,
	}
	got := accountstest.Balances(t, book) // fails unless they sum to zero
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s holds %d, want %d", id, got[id], w)
		}
	}
	book.Read(func(b *accdomain.Book) error {
		if s := b.Supply(); s.Circulating != 9*fan {
			t.Errorf("ledger supply %d, want %d", s.Circulating, 9*fan)
		}
		return nil
	})
	if got := supply(t, saga); got != 9*fan {
		t.Fatalf("the saga counts supply %d, the ledger 9 FAN", got)
	}
	// The duplicate p1 made one request only.
	if n := requests(t, ctx, store, "p1"); n != 1 {
		t.Fatalf("p1 was requested %d times", n)
	}
	stopSaga()
	if err := <-sagaDone; err != nil {
		t.Fatalf("saga stopped with %v", err)
	}

	// Restarted, the saga starts from its latest snapshot: same supply and
	// policy, and p4 delivered again is not rewarded again.
	if _, _, found, err := store.LoadSnapshot(ctx, royalty.Stream); err != nil || !found {
		t.Fatalf("no snapshot of the saga's stream (%v)", err)
	}
	saga, err = royalty.New(ctx, sagaCfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { sagaDone <- saga.Run(ctx) }()
	if got, v := supply(t, saga), version(t, saga); got != 9*fan || v != 2 {
		t.Fatalf("the restarted saga counts supply %d under policy v%d, want 9 FAN under v2", got, v)
	}
	appendEv("plays-0", play("p4", 3, "listener"))
	appendEv("plays-0", play("p5", 4, "listener"))
	if _, ok := waitAnswers(t, ctx, store, "p5")["p5"].(*eventsv1.RewardSettled); !ok {
		t.Fatal("p5 was not settled")
	}
	if n := requests(t, ctx, store, "p4"); n != 1 {
		t.Fatalf("p4 was requested %d times", n)
	}
	if got := supply(t, saga); got != 13*fan {
		t.Fatalf("supply %d after p5, want 13 FAN", got)
	}
	cancel()
	if err := <-sagaDone; err != nil {
		t.Fatalf("saga stopped with %v", err)
	}
}

// requests counts the saga's ledger requests for a play.
func requests(t *testing.T, ctx context.Context, store *eventstore.Store, play string) (n int) {
	t.Helper()
	if _, err := store.ReadStream(ctx, royalty.Stream, 0, func(e eventstore.Event) error {
		if r, ok := e.Message.(*eventsv1.LedgerTransactionRequested); ok && r.TransactionId == play {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func version(t *testing.T, s *royalty.Service) (v uint64) {
	if err := s.Saga.W.Do(context.Background(), func(st *royalty.State) ([]proto.Message, error) { v = st.PolicyVersion; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	return v
}

func supply(t *testing.T, s *royalty.Service) (units int64) {
	if err := s.Saga.W.Do(context.Background(), func(st *royalty.State) ([]proto.Message, error) { units = st.Supply; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	return units
}

// waitAnswers waits for the saga's answer (RewardSettled or RewardRefused)
// to each play.
func waitAnswers(t *testing.T, ctx context.Context, store *eventstore.Store, plays ...string) map[string]proto.Message {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := map[string]proto.Message{}
		if _, err := store.ReadStream(ctx, royalty.Stream, 0, func(e eventstore.Event) error {
			switch m := e.Message.(type) {
			case *eventsv1.RewardSettled:
				got[m.PlayId] = m
			case *eventsv1.RewardRefused:
				got[m.PlayId] = m
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		all := true
		for _, p := range plays {
			if got[p] == nil {
				all = false
			}
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("answers so far: %v; want %v", got, plays)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
