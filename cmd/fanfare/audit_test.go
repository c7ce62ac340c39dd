package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/deploy/eventstored"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// withStore runs fn on the embedded event store of dataDir, then closes it.
func withStore(t *testing.T, ctx context.Context, dataDir string, fn func(*eventstore.Store)) {
	t.Helper()
	srv, err := eventstored.Start(eventstored.Config{DataDir: filepath.Join(dataDir, "eventstore"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := eventstore.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn(eventstore.NewStore(c))
}

func exitCode(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return -1
}

// `fanfare audit replay` on a dev data directory: 0 and the same hash twice
// on an honest log, 1 once a forged transaction is in it, 2 when there is
// no log to read.
func TestAuditReplayCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	withStore(t, ctx, dir, func(store *eventstore.Store) {
		_, key, _ := ed25519.GenerateKey(nil)
		acc, err := accounts.New(ctx, accounts.Config{Store: store, IdentityKey: key.Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		_, stop := servicetest.Serve(t, acc)
		usd := acc.App.Books["USD"]
		if _, err := usd.Open(ctx, domain.WalletID("ann", "USD")); err != nil {
			t.Fatal(err)
		}
		if out, err := usd.Apply(ctx, domain.Request{ID: "dep-1", Asset: "USD", Kind: domain.KindDeposit,
			Postings: []domain.Posting{{Debit: domain.ExternalID("bank"), Credit: domain.WalletID("ann", "USD"), Amount: 1234}}}); err != nil || !out.Committed() {
			t.Fatalf("deposit: %+v %v", out, err)
		}
		stop()
	})
	first, err := auditReplay(ctx, "", dir, io.Discard)
	if err != nil || !first.Clean() {
		t.Fatalf("honest log: %+v %v", first, err)
	}
	second, err := auditReplay(ctx, "", dir, io.Discard)
	if err != nil || second.Hash != first.Hash {
		t.Fatalf("second replay: hash %s, first %s (%v)", second.Hash, first.Hash, err)
	}
	if err := runAudit(ctx, []string{"replay", "--data-dir", dir}); exitCode(err) != exitOK {
		t.Fatalf("exit code on an honest log: %v", err)
	}

	// Money out of a wallet that never had it, logged as committed.
	withStore(t, ctx, dir, func(store *eventstore.Store) {
		forged := &eventsv1.BookBatchAppended{Asset: "USD", Entries: []*eventsv1.BookBatchAppended_Entry{{Entry: &eventsv1.BookBatchAppended_Entry_Decision{
			Decision: &eventsv1.BookBatchAppended_Decision{
				Request: &eventsv1.LedgerTransactionRequested{TransactionId: "forged", Asset: "USD", Kind: eventsv1.PostingKind_POSTING_KIND_TIP,
					Postings: []*eventsv1.Posting{{Debit: domain.WalletID("ann", "USD"), Credit: domain.ExternalID("bank"), Asset: "USD", Amount: 99_999}}},
				Outcome: &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: "forged"}}}}}}}
		if _, err := store.Append(ctx, adapters.BookStream("USD"), esdb.Any{}, eventstore.Pending{Message: forged}); err != nil {
			t.Fatal(err)
		}
	})
	if err := runAudit(ctx, []string{"replay", "--data-dir", dir, "--json"}); exitCode(err) != exitFinding {
		t.Fatalf("exit code with a forged transaction: %v", err)
	}
	if err := runAudit(ctx, []string{"replay", "--data-dir", filepath.Join(dir, "nothing")}); exitCode(err) != exitUnread {
		t.Fatalf("exit code without a log: %v", err)
	}
}
