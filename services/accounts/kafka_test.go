package accounts_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// Sagas reach the ledger through events: a LedgerTransactionRequested in a
// saga's stream is forwarded to Kafka, decided once by the book (a repeat
// moves nothing), and answered by the decision in the book's batch.
func TestLedgerRequestsOverKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	brokers := servicetest.Bus(t, store)
	pk, _, _ := ed25519.GenerateKey(nil)
	svc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: brokers, IdentityKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	go svc.Run(ctx)
	book := svc.App.Books["USD"]
	for _, w := range []string{"wallet:fan:USD", "wallet:artist:USD"} {
		if _, err := book.Open(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	request := func(id string, amount int64, debit, credit string) *eventsv1.LedgerTransactionRequested {
		req := domain.Request{ID: id, Asset: "USD", Kind: domain.KindTip, RequestedBy: "test-saga",
			Postings: []domain.Posting{{Debit: debit, Credit: credit, Amount: amount}}}
		return adapters.RequestToEvent(&req)
	}
	send := func(msgs ...*eventsv1.LedgerTransactionRequested) {
		for _, m := range msgs {
			if _, err := store.Append(ctx, "testsaga-1", esdb.Any{}, eventstore.Pending{Message: m}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Fund the fan, tip twice under one id (a redelivered request), and
	// ask for more than the fan has.
	const fan, artist = "wallet:fan:USD", "wallet:artist:USD"
	send(request("fund", 1000, "external:bank", fan), request("tip-1", 250, fan, artist), request("tip-1", 250, fan, artist),
		request("tip-2", 5000, fan, artist))

	decided := map[string]*eventsv1.BookBatchAppended_Decision{}
	deadline := time.Now().Add(60 * time.Second)
	for len(decided) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 3 requests answered", len(decided))
		}
		time.Sleep(50 * time.Millisecond)
		decided = map[string]*eventsv1.BookBatchAppended_Decision{}
		store.ReadStream(ctx, adapters.BookStream("USD"), 0, func(e eventstore.Event) error {
			for _, en := range e.Message.(*eventsv1.BookBatchAppended).Entries {
				if d := en.GetDecision(); d != nil {
					if _, dup := decided[d.Request.TransactionId]; dup {
						t.Fatalf("%s was decided twice", d.Request.TransactionId)
					}
					decided[d.Request.TransactionId] = d
				}
			}
			return nil
		})
	}
	if decided["fund"].GetCommitted() == nil || decided["tip-1"].GetCommitted() == nil {
		t.Fatalf("fund/tip-1 not committed: %v %v", decided["fund"], decided["tip-1"])
	}
	if r := decided["tip-2"].GetRejected(); r == nil || adapters.ReasonCode(r.Reason) != "insufficient_funds" || r.AccountId != "wallet:fan:USD" {
		t.Fatalf("tip-2: %v", decided["tip-2"])
	}
	bal := accountstest.Balances(t, book) // fails unless they sum to zero
	if bal["wallet:fan:USD"] != 750 || bal["wallet:artist:USD"] != 250 || bal["external:bank"] != -1000 {
		t.Fatalf("balances %v", bal)
	}
}
