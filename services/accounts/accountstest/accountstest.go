// Package accountstest holds what tests of money-moving services need from
// the ledger: every balance of a book, checked to sum to zero.
package accountstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// Balances returns the total balance of every account the book knows
// (wallets, escrows and system accounts) and fails the test unless they
// sum to zero: money only ever moves between accounts of one asset.
func Balances(t testing.TB, book *adapters.BookWriter) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var sum int64
	book.Read(func(b *domain.Book) error {
		for _, a := range b.Accounts() {
			out[a.ID] = a.Total
			sum += a.Total
		}
		return nil
	})
	if sum != 0 {
		t.Fatalf("%s balances sum to %d, not zero: %v", book.Asset(), sum, out)
	}
	return out
}

// Fund moves units from an external rail into a wallet (opening it), as a
// confirmed deposit would.
func Fund(t testing.TB, book *adapters.BookWriter, wallet, id string, units int64) {
	t.Helper()
	ctx := t.Context()
	if _, err := book.Open(ctx, wallet); err != nil {
		t.Fatal(err)
	}
	req := domain.Request{ID: id, Asset: book.Asset(), Kind: domain.KindDeposit, RequestedBy: "test",
		Postings: []domain.Posting{{Debit: domain.ExternalID("bank"), Credit: wallet, Amount: units}}}
	if out, err := book.Apply(ctx, req); err != nil || !out.Committed() {
		t.Fatalf("fund %s: %+v %v", wallet, out, err)
	}
}

// Named returns the totals of the named accounts of the book (ids without
// ":", other than mint and burn, name identities' wallets in the book's
// asset) and checks that every balance sums to zero.
func Named(t testing.TB, book *adapters.BookWriter, ids ...string) map[string]int64 {
	t.Helper()
	all := Balances(t, book)
	out := map[string]int64{}
	for _, id := range ids {
		acct := id
		if !strings.Contains(id, ":") && id != domain.Mint && id != domain.Burn {
			acct = domain.WalletID(id, book.Asset())
		}
		out[id] = all[acct]
	}
	return out
}

// Want fails the test unless the named accounts (as in Named) hold
// exactly want and the book sums to zero.
func Want(t testing.TB, book *adapters.BookWriter, want map[string]int64) {
	t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	if got := Named(t, book, ids...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s balances %v, want %v", book.Asset(), got, want)
	}
}
