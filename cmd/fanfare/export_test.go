package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/settlement"
)

// seedSettlement moves money through the real accounts service over three
// days (the store's clock says which) and returns every book's balances at
// the end.
//
//	11-01  deposits: ann 50.00, bob 30.00; carl is rewarded 1 FAN
//	11-02  tips ann→carl 2.50, bob→carl 1.25; ann buys from carl 1.99;
//	       bob pledges 3.00 (a hold), captured to carl; carl withdraws 1.00
//	11-03  ann tips carl 0.10
func seedSettlement(t *testing.T, ctx context.Context, dir string) map[string]int64 {
	t.Helper()
	balances := map[string]int64{}
	withStore(t, ctx, dir, func(store *eventstore.Store) {
		var now atomic.Value
		day := func(d int) { now.Store(time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC)) }
		day(1)
		store.Now = func() time.Time { return now.Load().(time.Time) }
		_, key, _ := ed25519.GenerateKey(nil)
		acc, err := accounts.New(ctx, accounts.Config{Store: store, IdentityKey: key.Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		_, stop := servicetest.Serve(t, acc)
		defer stop()
		usd, fan := acc.App.Books["USD"], acc.App.Books["FAN"]
		w := func(who, asset string) string { return domain.WalletID(who, asset) }
		apply := func(bw *adapters.BookWriter, req domain.Request) {
			t.Helper()
			req.Asset = bw.Asset()
			if out, err := bw.Apply(ctx, req); err != nil || !out.Committed() {
				t.Fatalf("%s: %+v %v", req.ID, out, err)
			}
		}
		move := func(bw *adapters.BookWriter, id string, kind domain.PostingKind, from, to string, amount int64) {
			t.Helper()
			apply(bw, domain.Request{ID: id, Kind: kind, Postings: []domain.Posting{{Debit: from, Credit: to, Amount: amount}}})
		}
		for _, who := range []string{"ann", "bob", "carl"} {
			for _, bw := range []*adapters.BookWriter{usd, fan} {
				if _, err := bw.Open(ctx, w(who, bw.Asset())); err != nil {
					t.Fatal(err)
				}
			}
		}
		move(usd, "dep-ann", domain.KindDeposit, domain.ExternalID("bank"), w("ann", "USD"), 5000)
		move(usd, "dep-bob", domain.KindDeposit, domain.ExternalID("bank"), w("bob", "USD"), 3000)
		move(fan, "play-1", domain.KindRoyalty, domain.Mint, w("carl", "FAN"), 100_000_000)
		day(2)
		move(usd, "tip-1", domain.KindTip, w("ann", "USD"), w("carl", "USD"), 250)
		move(usd, "tip-2", domain.KindTip, w("bob", "USD"), w("carl", "USD"), 125)
		move(usd, "buy-1", domain.KindPurchase, w("ann", "USD"), w("carl", "USD"), 199)
		apply(usd, domain.Request{ID: "pledge", Kind: domain.KindPledgeCapture,
			Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "h1", Account: w("bob", "USD"), Amount: 300}}})
		apply(usd, domain.Request{ID: "capture", Kind: domain.KindPledgeCapture,
			Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "h1", Credit: w("carl", "USD")}}})
		move(usd, "out-1", domain.KindWithdrawal, w("carl", "USD"), domain.ExternalID("bank"), 100)
		day(3)
		move(usd, "tip-3", domain.KindTip, w("ann", "USD"), w("carl", "USD"), 10)
		for _, bw := range []*adapters.BookWriter{usd, fan} {
			bw.Read(func(b *domain.Book) error {
				for _, a := range b.Accounts() {
					balances[a.ID] = a.Total
				}
				return nil
			})
		}
	})
	return balances
}

// The export of 11-02 from a ledger seeded through the real accounts
// service: each row's numbers are the movements of that day, its closing
// balance plus what moved on 11-03 is the account's balance in the ledger,
// and the rows and the ledger's system accounts sum to zero per asset. CSV,
// JSON and DSR say the same; the DSR footer counts its lines.
func TestExportSettlementReconcilesWithTheLedger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ledger := seedSettlement(t, ctx, dir)
	day := func(s string) time.Time { d, _ := settlement.ParseDay(s); return d }
	rep, err := exportSettlement(ctx, "", dir, settlement.Options{From: day("2026-11-02"), To: day("2026-11-02")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		opening, closing int64
		credits, debits  map[eventsv1.PostingKind]int64
	}
	const (
		tip      = eventsv1.PostingKind_POSTING_KIND_TIP
		purchase = eventsv1.PostingKind_POSTING_KIND_PURCHASE
		capture  = eventsv1.PostingKind_POSTING_KIND_PLEDGE_CAPTURE
		withdraw = eventsv1.PostingKind_POSTING_KIND_WITHDRAWAL
	)
	wants := map[string]want{
		"wallet:ann:USD":  {5000, 4551, nil, map[eventsv1.PostingKind]int64{tip: 250, purchase: 199}},
		"wallet:bob:USD":  {3000, 2575, nil, map[eventsv1.PostingKind]int64{tip: 125, capture: 300}},
		"wallet:carl:USD": {0, 774, map[eventsv1.PostingKind]int64{tip: 375, purchase: 199, capture: 300}, map[eventsv1.PostingKind]int64{withdraw: 100}},
		"wallet:carl:FAN": {100_000_000, 100_000_000, nil, nil},
	}
	if len(rep.Rows) != len(wants) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(wants), rep.Rows)
	}
	after := map[string]int64{"wallet:ann:USD": -10, "wallet:carl:USD": 10}
	sums := map[string]int64{}
	for _, r := range rep.Rows {
		w, ok := wants[r.Account]
		if !ok {
			t.Fatalf("unexpected row %+v", r)
		}
		if r.Opening != w.opening || r.Closing != w.closing {
			t.Fatalf("%s: opening %d closing %d, want %d and %d", r.Account, r.Opening, r.Closing, w.opening, w.closing)
		}
		for _, k := range settlement.Kinds {
			if r.Credits[k] != w.credits[k] || r.Debits[k] != w.debits[k] {
				t.Fatalf("%s %s: credit %d debit %d, want %d and %d", r.Account, k, r.Credits[k], r.Debits[k], w.credits[k], w.debits[k])
			}
		}
		if r.Closing+after[r.Account] != ledger[r.Account] {
			t.Fatalf("%s: closing %d + %d after ≠ ledger %d", r.Account, r.Closing, after[r.Account], ledger[r.Account])
		}
		sums[r.Asset] += ledger[r.Account]
	}
	// Payees' balances and the system accounts' sum to zero per asset.
	sums["USD"] += ledger[domain.ExternalID("bank")]
	sums["FAN"] += ledger[domain.Mint]
	for asset, s := range sums {
		if s != 0 {
			t.Fatalf("%s: payees and system accounts sum to %d", asset, s)
		}
	}
	if len(rep.Totals) != 2 || rep.Totals[1].Asset != "USD" || rep.Totals[1].Opening != 8000 || rep.Totals[1].Closing != 4551+2575+774 {
		t.Fatalf("totals %+v", rep.Totals)
	}

	// The same report through the command, in each format.
	out := func(format string, extra ...string) []byte {
		t.Helper()
		path := filepath.Join(t.TempDir(), "report."+format)
		args := append([]string{"settlement", "--from", "2026-11-02", "--to", "2026-11-02", "--data-dir", dir, "--format", format, "--out", path}, extra...)
		if err := runExport(ctx, args); err != nil {
			t.Fatalf("export %s: %v", format, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lines, err := csv.NewReader(bytes.NewReader(out("csv"))).ReadAll()
	if err != nil || len(lines) != 1+len(wants) {
		t.Fatalf("csv: %d lines, %v", len(lines), err)
	}
	col := map[string]int{}
	for i, h := range lines[0] {
		col[h] = i
	}
	for _, l := range lines[1:] {
		if l[col["account"]] == "wallet:carl:USD" && (l[col["credit_tip"]] != "3.75" || l[col["debit_withdrawal"]] != "1.00" || l[col["closing"]] != "7.74") {
			t.Fatalf("csv row %v", l)
		}
		if l[col["account"]] == "wallet:carl:FAN" && l[col["closing"]] != "1.00000000" {
			t.Fatalf("csv row %v", l)
		}
	}

	var doc struct {
		Hash string `json:"log_hash"`
		Rows []struct {
			Account string            `json:"account"`
			Credits map[string]string `json:"credits"`
			Closing string            `json:"closing"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(out("json", "--payee", "carl"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Hash != rep.Hash || len(doc.Rows) != 2 || doc.Rows[1].Account != "wallet:carl:USD" || doc.Rows[1].Credits["pledge_capture"] != "3.00" || doc.Rows[1].Closing != "7.74" {
		t.Fatalf("json for carl: %+v", doc)
	}

	// DSR: the footer counts every line, the summaries and the blocks.
	sc := bufio.NewScanner(bytes.NewReader(out("dsr")))
	var recs [][]string
	for sc.Scan() {
		recs = append(recs, strings.Split(sc.Text(), "\t"))
	}
	count := map[string]int{}
	for _, r := range recs {
		count[r[0]]++
	}
	foot := recs[len(recs)-1]
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	// usage lines: ann 2 debits, bob 2, carl 3 credits + 1 debit (FAN moved nothing that day)
	if recs[0][0] != "HEAD" || foot[0] != "FOOT" || n(foot[1]) != len(recs) || n(foot[2]) != len(recs) ||
		n(foot[3]) != count["SY01"]+count["SY02"] || n(foot[4]) != count["SU01"] || count["SU01"] != 8 || count["SY01"] != 2 {
		t.Fatalf("dsr footer %v with %d lines, records %v", foot, len(recs), count)
	}
}

// A log whose committed postings do not add up to the ledger's decisions
// is refused (exit 1) and nothing is written; bad flags are exit 2.
func TestExportSettlementFailsLoudly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	seedSettlement(t, ctx, dir)
	withStore(t, ctx, dir, func(store *eventstore.Store) {
		forged := &eventsv1.BookBatchAppended{Asset: "USD", Entries: []*eventsv1.BookBatchAppended_Entry{{Entry: &eventsv1.BookBatchAppended_Entry_Decision{
			Decision: &eventsv1.BookBatchAppended_Decision{
				Request: &eventsv1.LedgerTransactionRequested{TransactionId: "forged", Asset: "USD", Kind: eventsv1.PostingKind_POSTING_KIND_TIP,
					Postings: []*eventsv1.Posting{{Debit: domain.WalletID("ann", "USD"), Credit: domain.WalletID("bob", "USD"), Asset: "USD", Amount: 1}}},
				// The committed postings claim more moved than was asked.
				Outcome: &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: "forged",
					Postings: []*eventsv1.Posting{{Debit: domain.WalletID("ann", "USD"), Credit: domain.WalletID("bob", "USD"), Asset: "USD", Amount: 1000}}}}}}}}}
		if _, err := store.Append(ctx, adapters.BookStream("USD"), esdb.Any{}, eventstore.Pending{Message: forged}); err != nil {
			t.Fatal(err)
		}
	})
	path := filepath.Join(t.TempDir(), "report.csv")
	err := runExport(ctx, []string{"settlement", "--from", "2026-11-01", "--to", "2026-11-30", "--data-dir", dir, "--out", path})
	if exitCode(err) != exitFinding {
		t.Fatalf("forged log: %v", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Fatalf("a refused export left %s (%v)", path, statErr)
	}
	for _, args := range [][]string{
		{"settlement", "--to", "2026-11-30"},
		{"settlement", "--from", "2026-11-31", "--to", "2026-12-01"},
		{"settlement", "--from", "2026-11-02", "--to", "2026-11-01"},
		{"settlement", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "xml"},
		{"settlement", "--from", "2026-11-01", "--to", "2026-11-02", "--payee", ""},
		{"nothing"},
	} {
		if err := runExport(ctx, append(args, "--data-dir", dir)); exitCode(err) != exitUnread {
			t.Fatalf("%v: %v", args, err)
		}
	}
}
