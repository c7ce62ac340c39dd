package domain_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fanfare/fanfare/services/accounts/domain"
)

const (
	usd = "USD"
	fan = "FAN"
	// oneFAN is 1 FAN in minor units.
	oneFAN int64 = 100_000_000
)

var bank = domain.ExternalID("bank")

func newBook(t testing.TB, asset string) *domain.Book {
	t.Helper()
	b, err := domain.NewBook(asset, domain.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wallet(name, asset string) string { return domain.WalletID(name, asset) }

func openAll(t testing.TB, b *domain.Book, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := b.Open(id); err != nil {
			t.Fatalf("Open(%s): %v", id, err)
		}
	}
}

func post(debit, credit string, amount int64) domain.Posting {
	return domain.Posting{Debit: debit, Credit: credit, Amount: amount}
}

func tx(id, asset string, postings ...domain.Posting) domain.Request {
	return domain.Request{ID: id, Asset: asset, Kind: domain.KindTip, Postings: postings}
}

func mustCommit(t testing.TB, b *domain.Book, req domain.Request) domain.Outcome {
	t.Helper()
	before := b.Sequence()
	o := b.Apply(req)
	if !o.Committed() || o.Err != nil || o.Reason != "" {
		t.Fatalf("request %s: want committed, got %s: %v", req.ID, o.Status, o.Err)
	}
	if o.Replayed || o.Sequence != before+1 || b.Sequence() != before+1 {
		t.Fatalf("request %s: sequence %d (book %d, before %d), replayed %v", req.ID, o.Sequence, b.Sequence(), before, o.Replayed)
	}
	checkInvariants(t, b)
	return o
}

// mustReject applies req, expects a rejection wrapping want, and checks that
// the ledger state did not change, and that the whole book did not change
// unless the rejection is one the book remembers. It returns the outcome.
func mustReject(t testing.TB, b *domain.Book, req domain.Request, want *domain.Error) domain.Outcome {
	t.Helper()
	ledger, full := b.LedgerSnapshot(), b.Snapshot()
	_, decidedBefore := b.Decision(req.ID)
	o := b.Apply(req)
	if o.Committed() || o.Status != domain.Rejected {
		t.Fatalf("request %s: want rejected (%s), got %s", req.ID, want.Code(), o.Status)
	}
	if !errors.Is(o.Err, want) {
		t.Fatalf("request %s: error %v, want %s", req.ID, o.Err, want.Code())
	}
	if o.Reason != want.Reason() || domain.ReasonOf(o.Err) != want.Reason() || domain.KindOf(o.Err) != want.Kind() {
		t.Fatalf("request %s: reason %q / %q kind %s, want %q %s", req.ID, o.Reason, domain.ReasonOf(o.Err), domain.KindOf(o.Err), want.Reason(), want.Kind())
	}
	var rej *domain.Rejection
	if !errors.As(o.Err, &rej) || rej.Detail == "" || rej.Account != o.Account {
		t.Fatalf("request %s: error %#v is not a detailed rejection", req.ID, o.Err)
	}
	if o.Sequence != 0 || len(o.Holds) != 0 {
		t.Fatalf("request %s: rejected outcome has sequence %d, holds %v", req.ID, o.Sequence, o.Holds)
	}
	if !bytes.Equal(ledger, b.LedgerSnapshot()) {
		t.Fatalf("request %s: rejection changed the ledger", req.ID)
	}
	_, decidedAfter := b.Decision(req.ID)
	if decidedAfter && !decidedBefore {
		// Remembered: the whole book changed by exactly this decision; a
		// repeat returns it and changes nothing.
		full2 := b.Snapshot()
		again := b.Apply(req)
		if !again.Replayed || !errors.Is(again.Err, want) || again.Err.Error() != o.Err.Error() || again.Account != o.Account || again.PolicyVersion != o.PolicyVersion {
			t.Fatalf("request %s: repeat gave %+v, want the first outcome %+v", req.ID, again, o)
		}
		if !bytes.Equal(full2, b.Snapshot()) {
			t.Fatalf("request %s: repeating a remembered rejection changed the book", req.ID)
		}
	} else if !bytes.Equal(full, b.Snapshot()) {
		t.Fatalf("request %s: rejection %s changed the book", req.ID, want.Code())
	}
	checkInvariants(t, b)
	return o
}

// assertBalances checks the totals of the named accounts and that all
// balances of the book sum to zero.
func assertBalances(t testing.TB, b *domain.Book, want map[string]int64) {
	t.Helper()
	for id, total := range want {
		got, err := b.Balance(id)
		if err != nil {
			t.Fatalf("Balance(%s): %v", id, err)
		}
		if got.Total != total {
			t.Fatalf("balance of %s = %d, want %d", id, got.Total, total)
		}
	}
	if s := sumBalances(b); s != 0 {
		t.Fatalf("balances of the %s book sum to %d", b.Asset().Code, s)
	}
}

func sumBalances(b *domain.Book) int64 {
	var s int64
	for _, a := range b.Accounts() {
		s += a.Total
	}
	return s
}

// checkInvariants checks every ledger invariant through the public API.
func checkInvariants(t testing.TB, b *domain.Book) {
	t.Helper()
	if err := invariants(b); err != nil {
		t.Fatal(err)
	}
}

func invariants(b *domain.Book) error {
	token := b.Supply().Cap != 0
	var sum, others int64
	for _, a := range b.Accounts() {
		sum += a.Total
		if a.Available != a.Total-a.Held {
			return fmt.Errorf("%s: available %d != total %d - held %d", a.ID, a.Available, a.Total, a.Held)
		}
		user := a.Kind == domain.AccountWallet || a.Kind == domain.AccountEscrow
		if user && a.Available < 0 {
			return fmt.Errorf("user account %s is below zero available: %+v", a.ID, a.Balance)
		}
		if token && a.Kind != domain.AccountMint && a.Total < 0 {
			return fmt.Errorf("token book account %s is below zero: %+v", a.ID, a.Balance)
		}
		holds, err := b.OpenHolds(a.ID)
		if err != nil {
			return err
		}
		var held int64
		for _, h := range holds {
			if h.Status != domain.HoldOpen || h.Account != a.ID || h.Amount <= 0 {
				return fmt.Errorf("open hold %+v of %s", h, a.ID)
			}
			held += h.Amount
		}
		if held != a.Held {
			return fmt.Errorf("%s: held %d but open holds sum to %d", a.ID, a.Held, held)
		}
		if !user && a.Held != 0 {
			return fmt.Errorf("system account %s holds %d", a.ID, a.Held)
		}
		if a.Kind != domain.AccountMint && a.Kind != domain.AccountBurn {
			others += a.Total
		}
	}
	if sum != 0 {
		return fmt.Errorf("balances of the %s book sum to %d", b.Asset().Code, sum)
	}
	s := b.Supply()
	if s.Circulating != s.Minted-s.Burned || s.Minted < 0 || s.Burned < 0 {
		return fmt.Errorf("supply %+v", s)
	}
	if token && s.Circulating != others {
		return fmt.Errorf("supply %d but accounts other than mint and burn hold %d", s.Circulating, others)
	}
	return nil
}

// roundTrip restores a snapshot and checks the copy is identical.
func roundTrip(t testing.TB, b *domain.Book) *domain.Book {
	t.Helper()
	snap := b.Snapshot()
	c, err := domain.Restore(snap)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !bytes.Equal(c.Snapshot(), snap) || !bytes.Equal(c.LedgerSnapshot(), b.LedgerSnapshot()) {
		t.Fatal("restored book differs")
	}
	return c
}
