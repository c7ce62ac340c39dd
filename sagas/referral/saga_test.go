package referral_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/referral"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

func wallet(id string) string { return accdomain.WalletID(id, "USD") }

func usd(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: "USD", Units: units} }

// Purchases over the real path: PurchaseRequested and the chains service's
// answer through Kafka into the saga, one ledger request decided by the
// accounts service, and the decision recorded. After each purchase every
// USD balance is checked to the cent, and all of them (system accounts
// included) sum to zero.
func TestPurchasesThroughTheLedger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	brokers := servicetest.Bus(t, store)
	idKey, _, _ := ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers, IdentityKey: idKey})
	if err != nil {
		t.Fatal(err)
	}
	accDone := make(chan error, 1)
	go func() { accDone <- acc.Run(ctx) }()
	saga, err := referral.New(referral.Config{Store: store, Brokers: brokers,
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- saga.Run(ctx) }()

	book := acc.App.Books["USD"]
	want := map[string]int64{} // every USD balance the book should hold
	bank := accdomain.ExternalID("bank")
	for _, id := range []string{"ann", "bob", "cat", "d1", "d2", "d3", "d4"} {
		if _, err := book.Open(ctx, wallet(id)); err != nil {
			t.Fatal(err)
		}
	}
	fund := func(id string, units int64) {
		t.Helper()
		accountstest.Fund(t, book, wallet(id), "fund-"+id, units)
		want[wallet(id)] += units
		want[bank] -= units
	}
	move := func(deltas map[string]int64) {
		for id, d := range deltas {
			want[wallet(id)] += d
		}
	}
	appendEv := func(stream string, id uuid.UUID, m proto.Message) {
		t.Helper()
		if _, err := store.Append(ctx, stream, esdb.Any{}, eventstore.Pending{ID: id, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	splits := []*eventsv1.Split{{PayeeId: "ann", SharePpm: 333_333}, {PayeeId: "bob", SharePpm: 333_333}, {PayeeId: "cat", SharePpm: 333_334}}
	register := func(price int64, pol *eventsv1.DistributorPolicy) string {
		id := uuid.NewString()
		appendEv("song-"+id, uuid.Nil, &eventsv1.SongRegistered{Version: 1, Description: &eventsv1.SongDescription{SongId: id, Title: "t", ArtistId: "ann",
			DurationMs: 1000, Splits: splits, Price: usd(price), DistributorPolicy: pol}})
		return id
	}
	request := func(purchase, song, by string, price int64) *eventsv1.PurchaseRequested {
		return &eventsv1.PurchaseRequested{PurchaseId: purchase, SongId: song, PurchaserId: by, Price: usd(price), ReferralToken: []byte("token")}
	}
	resolved := func(purchase, song, by string, chain ...string) *eventsv1.DistributorChainResolved {
		return &eventsv1.DistributorChainResolved{PurchaseId: purchase, SongId: song, PurchaserId: by, DistributorIds: chain, TokenHash: make([]byte, 32)}
	}
	// 1.99, distributors paid by the purchaser on top: 60%, 50%, 30%
	// (S = 1.4e6, so n = 2): 119, 100, 60; a fourth hop earns nothing.
	percentSong := register(199, &eventsv1.DistributorPolicy{Mode: eventsv1.DistributorPolicy_MODE_PERCENT,
		Payer: eventsv1.DistributorPolicy_PAYER_PURCHASER, PercentPpm: []uint32{600_000, 500_000, 300_000}})
	// 1.99, fixed fees of 0.10 and 0.05 out of the price.
	fixedSong := register(199, &eventsv1.DistributorPolicy{Mode: eventsv1.DistributorPolicy_MODE_FIXED,
		Payer: eventsv1.DistributorPolicy_PAYER_HOLDER, FixedUnits: []int64{10, 5}})
	for id, units := range map[string]int64{"pat": 1000, "quinn": 500, "rae": 1000, "sid": 100, "tia": 1000, "uma": 1000} {
		fund(id, units)
	}
	checkBalances(t, book, want)

	t.Run("a: request first, 4-hop chain, percent paid by the purchaser", func(t *testing.T) {
		p := uuid.NewString()
		appendEv("purchase-"+p, uuid.Nil, request(p, percentSong, "pat", 199))
		waitStream(t, ctx, store, p, "ReferralPurchaseNoted")
		appendEv("purchasechain-"+p, uuid.Nil, resolved(p, percentSong, "pat", "d1", "d2", "d3", "d4"))
		evs := waitStream(t, ctx, store, p, "ReferralPurchaseNoted", "ReferralPayoutPlanned", "LedgerTransactionRequested", "ReferralPayoutCompleted")
		if c := evs[3].(*eventsv1.ReferralPayoutCompleted); c.TransactionId != p || c.Sequence == 0 || c.PurchaserId != "pat" || c.SongId != percentSong {
			t.Fatalf("completed %v", c)
		}
		if r := evs[2].(*eventsv1.LedgerTransactionRequested); r.RequestedBy != referral.RequestedBy || r.TransactionId != p || len(r.Postings) != 6 {
			t.Fatalf("requested %v", r)
		}
		// Payees share 1.99 as 0.66/0.66/0.67; the purchaser pays 1.99 + 2.79 = 4.78.
		move(map[string]int64{"pat": -478, "ann": 66, "bob": 66, "cat": 67, "d1": 119, "d2": 100, "d3": 60, "d4": 0})
		checkBalances(t, book, want)
		if got := want[wallet("pat")]; got != 522 {
			t.Fatalf("pat should hold 5.22, the test expects %d", got)
		}
	})

	t.Run("b: chain first, fixed paid by the holder", func(t *testing.T) {
		p := uuid.NewString()
		appendEv("purchasechain-"+p, uuid.Nil, resolved(p, fixedSong, "quinn", "d1", "d2", "d3"))
		waitStream(t, ctx, store, p, "ReferralChainNoted")
		appendEv("purchase-"+p, uuid.Nil, request(p, fixedSong, "quinn", 199))
		waitStream(t, ctx, store, p, "ReferralChainNoted", "ReferralPayoutPlanned", "LedgerTransactionRequested", "ReferralPayoutCompleted")
		// 1.99 − 0.15 = 1.84 three ways: 0.61, 0.61, 0.62.
		move(map[string]int64{"quinn": -199, "ann": 61, "bob": 61, "cat": 62, "d1": 10, "d2": 5})
		checkBalances(t, book, want)
	})

	t.Run("c: the same request delivered again, and copied", func(t *testing.T) {
		p := uuid.NewString()
		first := uuid.New()
		req := request(p, percentSong, "rae", 199)
		appendEv("purchase-"+p, first, req)
		appendEv("purchase-"+p, first, req)      // the same event again
		appendEv("purchase-"+p, uuid.New(), req) // a copy with a new id
		appendEv("purchasechain-"+p, uuid.Nil, resolved(p, percentSong, "rae", "d1"))
		waitOutcome(t, ctx, store, p)
		appendEv("purchase-"+p, uuid.New(), req) // and one after the purchase completed
		// A marker behind the copies on the same stream (so the same
		// partition, handled in order): once the saga noted it, it has
		// handled every copy before it.
		marker := uuid.NewString()
		appendEv("purchase-"+p, uuid.Nil, request(marker, percentSong, "rae", 199))
		waitStream(t, ctx, store, marker, "ReferralPurchaseNoted")

		count := map[string]int{}
		for _, e := range readStream(t, ctx, store, p) {
			count[name(e)]++
		}
		if count["ReferralPayoutPlanned"] != 1 || count["LedgerTransactionRequested"] != 1 || count["ReferralPayoutCompleted"] != 1 ||
			count["ReferralPayoutFailed"] != 0 || count["ReferralPurchaseNoted"]+count["ReferralChainNoted"] != 1 {
			t.Fatalf("saga stream of a repeated request: %v", count)
		}
		if n := committed(t, ctx, store, p); n != 1 {
			t.Fatalf("the ledger committed %d transactions for the purchase", n)
		}
		move(map[string]int64{"rae": -318, "ann": 66, "bob": 66, "cat": 67, "d1": 119})
		checkBalances(t, book, want)
	})

	t.Run("d: insufficient funds", func(t *testing.T) {
		p := uuid.NewString()
		appendEv("purchase-"+p, uuid.Nil, request(p, percentSong, "sid", 199))
		appendEv("purchasechain-"+p, uuid.Nil, resolved(p, percentSong, "sid"))
		out := waitOutcome(t, ctx, store, p)
		f, ok := out.(*eventsv1.ReferralPayoutFailed)
		if !ok || f.Reason != eventsv1.PurchaseFailed_REASON_INSUFFICIENT_FUNDS || f.PurchaserId != "sid" {
			t.Fatalf("outcome %v", out)
		}
		if n := committed(t, ctx, store, p); n != 0 {
			t.Fatalf("the ledger committed %d transactions", n)
		}
		checkBalances(t, book, want)
	})

	t.Run("e: rejected chain", func(t *testing.T) {
		p := uuid.NewString()
		appendEv("purchase-"+p, uuid.Nil, request(p, percentSong, "tia", 199))
		appendEv("purchasechain-"+p, uuid.Nil, &eventsv1.DistributorChainRejected{PurchaseId: p, SongId: percentSong, PurchaserId: "tia",
			Reason: eventsv1.DistributorChainRejected_REASON_BAD_SIGNATURE, Detail: "hop 2: bad signature"})
		out := waitOutcome(t, ctx, store, p)
		f, ok := out.(*eventsv1.ReferralPayoutFailed)
		if !ok || f.Reason != eventsv1.PurchaseFailed_REASON_INVALID_REFERRAL || f.Detail != "hop 2: bad signature" {
			t.Fatalf("outcome %v", out)
		}
		for _, e := range readStream(t, ctx, store, p) {
			if _, ok := e.(*eventsv1.LedgerTransactionRequested); ok {
				t.Fatal("the ledger was asked to pay a rejected referral")
			}
		}
		checkBalances(t, book, want)
	})

	t.Run("f: price changed before planning", func(t *testing.T) {
		song := register(199, nil)
		p := uuid.NewString()
		appendEv("purchase-"+p, uuid.Nil, request(p, song, "uma", 199))
		waitStream(t, ctx, store, p, "ReferralPurchaseNoted")
		appendEv("song-"+song, uuid.Nil, &eventsv1.SongUpdated{Version: 2, Description: &eventsv1.SongDescription{SongId: song, Title: "t", ArtistId: "ann",
			DurationMs: 1000, Splits: splits, Price: usd(249)}})
		waitFor(t, "the saga to see the new price", func() bool {
			d, ok := saga.Saga.Songs.Get(song)
			return ok && d.GetPrice().GetUnits() == 249
		})
		appendEv("purchasechain-"+p, uuid.Nil, resolved(p, song, "uma", "d1"))
		out := waitOutcome(t, ctx, store, p)
		f, ok := out.(*eventsv1.ReferralPayoutFailed)
		if !ok || f.Reason != eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE {
			t.Fatalf("outcome %v", out)
		}
		checkBalances(t, book, want)
	})

	cancel()
	if err := <-sagaDone; err != nil {
		t.Fatalf("saga stopped with %v", err)
	}
	<-accDone
}

// checkBalances checks every USD account of the book against want (an
// account want does not name must hold nothing) and that all of them sum to
// zero.
func checkBalances(t *testing.T, book *adapters.BookWriter, want map[string]int64) {
	t.Helper()
	got := accountstest.Balances(t, book)
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if got[id] != want[id] {
			t.Errorf("%s holds %d, want %d", id, got[id], want[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[id]; !ok {
			t.Errorf("%s is not in the book", id)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func name(m proto.Message) string { return string(m.ProtoReflect().Descriptor().Name()) }

// readStream is the saga's stream of a purchase.
func readStream(t *testing.T, ctx context.Context, store *eventstore.Store, purchase string) []proto.Message {
	t.Helper()
	var out []proto.Message
	if _, err := store.ReadStream(ctx, referral.Category+"-"+purchase, 0, func(e eventstore.Event) error {
		out = append(out, e.Message)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitStream waits until the saga's stream of a purchase holds exactly the
// events named, in order, and returns them; more events, or others, fail
// the test at once.
func waitStream(t *testing.T, ctx context.Context, store *eventstore.Store, purchase string, names ...string) []proto.Message {
	t.Helper()
	var evs []proto.Message
	waitFor(t, fmt.Sprintf("stream of %s to be %v", purchase, names), func() bool {
		evs = readStream(t, ctx, store, purchase)
		var got []string
		for _, e := range evs {
			got = append(got, name(e))
		}
		if len(got) > len(names) || !slices.Equal(got, names[:len(got)]) {
			t.Fatalf("stream of %s is %v, want %v", purchase, got, names)
		}
		return len(got) == len(names)
	})
	return evs
}

// waitOutcome waits for ReferralPayoutCompleted or ReferralPayoutFailed of
// a purchase.
func waitOutcome(t *testing.T, ctx context.Context, store *eventstore.Store, purchase string) proto.Message {
	t.Helper()
	var out proto.Message
	waitFor(t, "the outcome of "+purchase, func() bool {
		for _, e := range readStream(t, ctx, store, purchase) {
			switch e.(type) {
			case *eventsv1.ReferralPayoutCompleted, *eventsv1.ReferralPayoutFailed:
				out = e
			}
		}
		return out != nil
	})
	return out
}

// committed counts the USD book's committed decisions on a transaction.
func committed(t *testing.T, ctx context.Context, store *eventstore.Store, tx string) (n int) {
	t.Helper()
	if _, err := store.ReadStream(ctx, adapters.BookStream("USD"), 0, func(e eventstore.Event) error {
		if b, ok := e.Message.(*eventsv1.BookBatchAppended); ok {
			for _, en := range b.Entries {
				if d := en.GetDecision(); d.GetRequest().GetTransactionId() == tx && d.GetCommitted() != nil {
					n++
				}
				if c := en.GetCommitted(); c.GetTransactionId() == tx {
					n++
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
