package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/audit"
	"google.golang.org/protobuf/proto"
)

// seed moves money through the real accounts service: deposits, tips, a
// hold left open and a captured one, FAN rewards from the mint. It returns
// the service's books as they are at the end.
func seed(t *testing.T, ctx context.Context, store *eventstore.Store) map[string][]domain.AccountBalance {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: store, IdentityKey: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := servicetest.Serve(t, acc)
	usd, fan := acc.App.Books["USD"], acc.App.Books["FAN"]
	apply := func(w *adapters.BookWriter, req domain.Request) {
		t.Helper()
		out, err := w.Apply(ctx, req)
		if err != nil || !out.Committed() {
			t.Fatalf("%s: %+v %v", req.ID, out, err)
		}
	}
	for i := range 5 {
		for _, w := range []*adapters.BookWriter{usd, fan} {
			if _, err := w.Open(ctx, domain.WalletID(fmt.Sprint("u", i), w.Asset())); err != nil {
				t.Fatal(err)
			}
		}
		apply(usd, domain.Request{ID: fmt.Sprint("dep-", i), Asset: "USD", Kind: domain.KindDeposit,
			Postings: []domain.Posting{{Debit: domain.ExternalID("bank"), Credit: domain.WalletID(fmt.Sprint("u", i), "USD"), Amount: 1000 + int64(i)}}})
		apply(fan, domain.Request{ID: fmt.Sprint("play-", i), Asset: "FAN", Kind: domain.KindRoyalty, RequestedBy: "royalty",
			Postings: []domain.Posting{{Debit: domain.Mint, Credit: domain.WalletID(fmt.Sprint("u", i), "FAN"), Amount: 100_000_000}}})
	}
	for i := range 5 {
		apply(usd, domain.Request{ID: fmt.Sprint("tip-", i), Asset: "USD", Kind: domain.KindTip,
			Postings: []domain.Posting{{Debit: domain.WalletID(fmt.Sprint("u", i), "USD"), Credit: domain.WalletID(fmt.Sprint("u", (i+1)%5), "USD"), Amount: 333}}})
	}
	apply(usd, domain.Request{ID: "pledge-1", Asset: "USD", Kind: domain.KindTip,
		Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "h1", Account: domain.WalletID("u1", "USD"), Amount: 250}}})
	apply(usd, domain.Request{ID: "pledge-2", Asset: "USD", Kind: domain.KindTip,
		Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "h2", Account: domain.WalletID("u2", "USD"), Amount: 120}}})
	apply(usd, domain.Request{ID: "capture-2", Asset: "USD", Kind: domain.KindTip,
		Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "h2", Credit: domain.WalletID("u3", "USD")}}})
	out := map[string][]domain.AccountBalance{}
	for asset, w := range acc.App.Books {
		w.Read(func(b *domain.Book) error { out[asset] = b.Accounts(); return nil })
	}
	stop()
	return out
}

func replay(t *testing.T, url string) *audit.Result {
	t.Helper()
	var last uint64
	res, err := audit.Replay(context.Background(), url, audit.Options{Progress: func(n, pos, head uint64) {
		if pos > head {
			t.Errorf("progress at position %d past the head %d", pos, head)
		}
		last = n
	}, ProgressEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	if last != res.Events || res.Events == 0 {
		t.Fatalf("progress ended at %d of %d events", last, res.Events)
	}
	return res
}

// The replay rebuilds the same balances as the live ledger, finds nothing
// wrong in an honest log and gives the same hash twice.
func TestReplayMatchesTheLedgerAndRepeats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, url := estest.ConnectURL(t)
	store := eventstore.NewStore(client)
	live := seed(t, ctx, store)
	first, second := replay(t, url), replay(t, url)
	if !first.Clean() {
		t.Fatalf("violations in an honest log: %v", first.Violations)
	}
	if first.Hash != second.Hash || len(first.Hash) != 64 || first.Events != second.Events {
		t.Fatalf("two replays: %s (%d events) and %s (%d events)", first.Hash, first.Events, second.Hash, second.Events)
	}
	if len(first.Books) != len(live) {
		t.Fatalf("replayed %d books, the ledger has %d", len(first.Books), len(live))
	}
	for _, b := range first.Books {
		if !slices.Equal(b.Accounts, live[b.Asset]) {
			t.Fatalf("%s book: replayed %+v, live %+v", b.Asset, b.Accounts, live[b.Asset])
		}
		var sum int64
		for _, a := range b.Accounts {
			sum += a.Total
		}
		if sum != 0 || b.Sum != 0 {
			t.Fatalf("%s book sums to %d (reported %d)", b.Asset, sum, b.Sum)
		}
	}
	// u2 tipped 333, got 333 back, and 120 of its pledge went to u3; u1
	// still has 250 on hold.
	for _, b := range first.Books {
		for _, a := range b.Accounts {
			switch {
			case a.ID == domain.WalletID("u2", "USD") && (a.Total != 1002-120 || a.Held != 0),
				a.ID == domain.WalletID("u1", "USD") && (a.Total != 1001 || a.Held != 250),
				a.ID == domain.WalletID("u3", "USD") && a.Total != 1003+120:
				t.Fatalf("%s: %+v", a.ID, a.Balance)
			}
		}
		if b.Asset == "FAN" && b.Supply.Circulating != 5*100_000_000 {
			t.Fatalf("FAN supply %d, want 5 FAN", b.Supply.Circulating)
		}
	}
}

// Forged events appended straight to the store are reported: a committed
// transaction the book would have refused (money from an empty wallet), one
// that moves a negative amount, and a play rewarded a second time. The hash
// changes.
func TestReplayCatchesForgedTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, url := estest.ConnectURL(t)
	store := eventstore.NewStore(client)
	seed(t, ctx, store)
	honest := replay(t, url)
	forge := func(asset string, req *eventsv1.LedgerTransactionRequested) {
		t.Helper()
		b := &eventsv1.BookBatchAppended{Asset: asset, Entries: []*eventsv1.BookBatchAppended_Entry{{Entry: &eventsv1.BookBatchAppended_Entry_Decision{
			Decision: &eventsv1.BookBatchAppended_Decision{Request: req,
				Outcome: &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: req.TransactionId}}}}}}}
		if _, err := store.Append(ctx, adapters.BookStream(asset), esdb.Any{}, eventstore.Pending{Message: b}); err != nil {
			t.Fatal(err)
		}
	}
	forge("USD", &eventsv1.LedgerTransactionRequested{TransactionId: "forged-negative", Asset: "USD", Kind: eventsv1.PostingKind_POSTING_KIND_TIP,
		Postings: []*eventsv1.Posting{{Debit: domain.WalletID("u0", "USD"), Credit: domain.WalletID("u4", "USD"), Asset: "USD", Amount: -500}}})
	forge("FAN", &eventsv1.LedgerTransactionRequested{TransactionId: "play-3", Asset: "FAN", Kind: eventsv1.PostingKind_POSTING_KIND_ROYALTY, RequestedBy: "royalty",
		Postings: []*eventsv1.Posting{{Debit: domain.Mint, Credit: domain.WalletID("u3", "FAN"), Asset: "FAN", Amount: 100_000_000}}})
	tampered := replay(t, url)
	if tampered.Clean() || tampered.Hash == honest.Hash {
		t.Fatalf("forged log: clean %v, hash %s (honest %s)", tampered.Clean(), tampered.Hash, honest.Hash)
	}
	var rules []string
	for _, v := range tampered.Violations {
		rules = append(rules, v.Rule)
		if v.Where == "" || !strings.Contains(v.String(), "book-") {
			t.Fatalf("violation %q does not say where it is", v)
		}
	}
	slices.Sort(rules)
	rules = slices.Compact(rules)
	if fmt.Sprint(rules) != "[balanced replay rewarded_once]" {
		t.Fatalf("violations %v, want the negative posting (balanced, replay) and the second reward of play-3", tampered.Violations)
	}
}

// A crowdfund is all or nothing: a campaign that succeeded with every
// active pledge captured is clean (a cancelled pledge does not count); one
// logged as failed while a pledge was captured and another is still held
// is reported, pledge by pledge.
func TestReplayChecksCampaignsAllOrNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, url := estest.ConnectURL(t)
	store := eventstore.NewStore(client)
	seed(t, ctx, store) // h1 (u1, 250) still held; h2 (u2, 120) captured
	usd := func(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: "USD", Units: units} }
	log := func(stream string, msgs ...proto.Message) {
		t.Helper()
		var ps []eventstore.Pending
		for _, m := range msgs {
			ps = append(ps, eventstore.Pending{Message: m})
		}
		if _, err := store.Append(ctx, stream, esdb.Any{}, ps...); err != nil {
			t.Fatal(err)
		}
	}
	log("campaign-good",
		&eventsv1.PledgePlaced{CampaignId: "good", PledgeId: "p2", BackerId: "u2", Amount: usd(120), HoldId: "h2"},
		&eventsv1.PledgePlaced{CampaignId: "good", PledgeId: "p9", BackerId: "u4", Amount: usd(5), HoldId: "never-placed"},
		&eventsv1.PledgeCancelled{CampaignId: "good", PledgeId: "p9", BackerId: "u4", HoldId: "never-placed"},
		&eventsv1.CampaignSucceeded{CampaignId: "good", Total: usd(120), Pledges: 1})
	if res := replay(t, url); !res.Clean() {
		t.Fatalf("a campaign captured in full: %v", res.Violations)
	}
	log("campaign-bad",
		&eventsv1.PledgePlaced{CampaignId: "bad", PledgeId: "p1", BackerId: "u1", Amount: usd(250), HoldId: "h1"},
		&eventsv1.PledgePlaced{CampaignId: "bad", PledgeId: "p2", BackerId: "u2", Amount: usd(120), HoldId: "h2"},
		&eventsv1.CampaignFailed{CampaignId: "bad", Total: usd(370), Pledges: 2})
	res := replay(t, url)
	var got []string
	for _, v := range res.Violations {
		if v.Rule != "all_or_nothing" || !strings.HasPrefix(v.Where, "campaign-bad@") {
			t.Fatalf("unexpected violation %v", v)
		}
		got = append(got, v.Detail)
	}
	want := []string{"campaign bad failed, and pledge p1 (hold h1) is open", "campaign bad failed, and 1 pledge(s) were captured: [p2]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("violations %q, want %q", got, want)
	}
}
