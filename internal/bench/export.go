package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/settlement"
)

func init() { register("export", exportScenario) }

// exportPayees is the size of the settlement (issue 10: 1,000,000 payees).
const exportPayees = 1_000_000

// exportScenario seeds a USD ledger of 1,000,000 payees decided by the real
// book code over three days (day 1: each opens a wallet and deposits; day
// 2: each tips the next; day 3: each buys from the one after), then times
// `fanfare export settlement` for day 2 as CSV: one read of the log with
// the audit replay, the report, its reconciliation with the replayed
// books, and the file.
func exportScenario(ctx context.Context, o Options) (*Result, error) {
	client, url, _, done, err := openStore(o, "export")
	if err != nil {
		return nil, err
	}
	defer done()
	store := eventstore.NewStore(client)
	o.Log("seeding %d payees", exportPayees)
	t0 := time.Now()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	entries, err := seedExport(ctx, store, exportPayees, day)
	if err != nil {
		return nil, err
	}
	seedSecs := time.Since(t0).Seconds()

	o.Log("exporting")
	f, err := os.CreateTemp("", "fanfare-bench-export-*.csv")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	start := time.Now()
	rep, err := settlement.Export(ctx, url, settlement.Options{From: day(2), To: day(2)}, nil)
	if err != nil {
		return nil, err
	}
	if err := settlement.Write(f, rep, "csv"); err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if len(rep.Rows) != exportPayees {
		return nil, fmt.Errorf("the report has %d rows for %d payees", len(rep.Rows), exportPayees)
	}
	res := &Result{Scenario: "export", Pass: true, Floors: map[string]any{}, Figures: map[string]any{
		"payees": exportPayees, "rows": len(rep.Rows), "seconds": secs, "csv_bytes": info.Size(),
		"log_events": rep.Events, "ledger_entries": entries,
		"seeded": map[string]any{"seconds": seedSecs},
	}}
	res.atMost("seconds", secs, 120)
	return res, nil
}

// seedExport appends the scenario's ledger and returns how many book
// entries it holds.
func seedExport(ctx context.Context, store *eventstore.Store, payees int, day func(int) time.Time) (int, error) {
	book, err := newSeedBook("USD")
	if err != nil {
		return 0, err
	}
	const chunk = 1000
	wallet := func(i int) string { return domain.WalletID(fmt.Sprint("payee-", i%payees), "USD") }
	entries := 0
	first := true
	phase := func(d int, each func(b *eventsv1.BookBatchAppended, i int) error) error {
		store.Now = func() time.Time { return day(d) }
		for lo := 0; lo < payees; lo += chunk {
			b := &eventsv1.BookBatchAppended{Asset: "USD"}
			if first {
				b.Entries = append(b.Entries, seedPolicyEntry())
				first = false
			}
			for i := lo; i < min(lo+chunk, payees); i++ {
				if err := each(b, i); err != nil {
					return err
				}
			}
			entries += len(b.Entries)
			if _, err := store.Append(ctx, adapters.BookStream("USD"), esdb.Any{}, eventstore.Pending{Message: b}); err != nil {
				return err
			}
		}
		return nil
	}
	move := func(b *eventsv1.BookBatchAppended, id string, kind domain.PostingKind, from, to string, amount int64) error {
		return book.decide(b, domain.Request{ID: id, Asset: "USD", Kind: kind, Postings: []domain.Posting{{Debit: from, Credit: to, Amount: amount}}})
	}
	if err := phase(1, func(b *eventsv1.BookBatchAppended, i int) error {
		if err := book.open(b, wallet(i)); err != nil {
			return err
		}
		return move(b, fmt.Sprint("dep-", i), domain.KindDeposit, domain.ExternalID("bank"), wallet(i), 10_000+int64(i%997))
	}); err != nil {
		return 0, err
	}
	if err := phase(2, func(b *eventsv1.BookBatchAppended, i int) error {
		return move(b, fmt.Sprint("tip-", i), domain.KindTip, wallet(i), wallet(i+1), 1+int64(i%50))
	}); err != nil {
		return 0, err
	}
	if err := phase(3, func(b *eventsv1.BookBatchAppended, i int) error {
		return move(b, fmt.Sprint("buy-", i), domain.KindPurchase, wallet(i), wallet(i+2), 99)
	}); err != nil {
		return 0, err
	}
	return entries, nil
}
