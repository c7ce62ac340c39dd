package settlement_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/audit"
	"github.com/fanfare/fanfare/services/reports/settlement"
)

// ledger decides requests with the real book and keeps the batches it
// logged, one per request, each at its own time.
type ledger struct {
	t       *testing.T
	book    *domain.Book
	batches []*eventsv1.BookBatchAppended
	at      []time.Time
}

func newLedger(t *testing.T, accounts ...string) *ledger {
	b, err := domain.NewBook("USD", domain.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if _, err := b.Open(a); err != nil {
			t.Fatal(err)
		}
	}
	return &ledger{t: t, book: b}
}

func (l *ledger) move(at time.Time, kind domain.PostingKind, from, to string, amount int64) {
	req := domain.Request{ID: fmt.Sprint("r", len(l.batches)), Asset: "USD", Kind: kind, Postings: []domain.Posting{{Debit: from, Credit: to, Amount: amount}}}
	out := l.book.Apply(req)
	if !out.Committed() {
		l.t.Fatalf("%+v: %v", req, out.Err)
	}
	l.batches = append(l.batches, &eventsv1.BookBatchAppended{Asset: "USD", Entries: []*eventsv1.BookBatchAppended_Entry{adapters.DecisionEntry(&req, out)}})
	l.at = append(l.at, at)
}

func (l *ledger) books() []audit.BookTotals {
	return []audit.BookTotals{{Asset: "USD", Scale: 2, Accounts: l.book.Accounts()}}
}

func build(t *testing.T, l *ledger, opts settlement.Options, skip int) (*settlement.Report, error) {
	b, err := settlement.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, batch := range l.batches {
		if i == skip {
			continue
		}
		if err := b.Batch(l.at[i], batch); err != nil {
			t.Fatal(err)
		}
	}
	return b.Finish(l.books(), uint64(len(l.batches)), "hash")
}

var (
	bank = domain.ExternalID("bank")
	ann  = domain.WalletID("ann", "USD")
	bob  = domain.WalletID("bob", "USD")
	d1   = time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)
	d2   = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	d3   = time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
)

// The period's edges are whole UTC days; the payee filter keeps only the
// payee's accounts; a batch the report missed is a difference with the
// ledger, reported with the account and both numbers.
func TestReportEdgesFilterAndReconciliation(t *testing.T) {
	l := newLedger(t, ann, bob)
	l.move(d1, domain.KindDeposit, bank, ann, 1000)
	l.move(d2, domain.KindTip, ann, bob, 300)
	l.move(d3, domain.KindTip, ann, bob, 7)
	rep, err := build(t, l, settlement.Options{From: d2, To: d2}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Account != ann || rep.Rows[0].Opening != 1000 || rep.Rows[0].Debits[eventsv1.PostingKind_POSTING_KIND_TIP] != 300 ||
		rep.Rows[0].Closing != 700 || rep.Rows[1].Closing != 300 {
		t.Fatalf("rows %+v %+v", rep.Rows[0], rep.Rows[1])
	}
	only, err := build(t, l, settlement.Options{From: d1, To: d3, Payees: []string{"bob"}}, -1)
	if err != nil || len(only.Rows) != 1 || only.Rows[0].Account != bob || only.Rows[0].Closing != 307 || only.Totals[0].Payees != 1 {
		t.Fatalf("bob only: %+v %v", only, err)
	}
	_, err = build(t, l, settlement.Options{From: d1, To: d3}, 1)
	if !errors.Is(err, settlement.ErrUnreconciled) || !strings.Contains(err.Error(), ann+": closing 993") || !strings.Contains(err.Error(), "the ledger holds 693") {
		t.Fatalf("missed batch: %v", err)
	}
	for _, opts := range []settlement.Options{{From: d2}, {From: d3, To: d2}, {From: d1, To: d2, Payees: []string{" "}}} {
		if _, err := settlement.New(opts); !errors.Is(err, settlement.ErrInvalid) {
			t.Fatalf("%+v: %v", opts, err)
		}
	}
	if err := settlement.Write(&bytes.Buffer{}, rep, "xml"); !errors.Is(err, settlement.ErrInvalid) {
		t.Fatalf("format xml: %v", err)
	}
	if _, err := settlement.ParseDay("2026-02-30"); !errors.Is(err, settlement.ErrInvalid) {
		t.Fatalf("bad day: %v", err)
	}
}
