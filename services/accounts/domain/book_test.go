package domain_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

var (
	alice   = wallet("alice", usd)
	bob     = wallet("bob", usd)
	carol   = wallet("carol", usd)
	nobody  = wallet("nobody", usd) // never opened
	aliceF  = wallet("alice", fan)
	bobF    = wallet("bob", fan)
	campain = domain.EscrowID("campaign", "c1", usd)
	t0      = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// usdFixture: alice has 10.00 with an open hold h-open of 2.00 (expiring at
// t0+1h) and a captured hold h-closed; bob has 1.00; carol and the campaign
// escrow are open and empty; the clock is t0.
func usdFixture(t testing.TB) *domain.Book {
	t.Helper()
	b := newBook(t, usd)
	openAll(t, b, alice, bob, carol, campain)
	b.ExpireHolds(t0)
	mustCommit(t, b, domain.Request{ID: "fund", Asset: usd, Kind: domain.KindDeposit, Postings: []domain.Posting{
		post(bank, alice, 1000), post(bank, bob, 100),
	}})
	mustCommit(t, b, domain.Request{ID: "holds", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{
		{Kind: domain.HoldPlace, HoldID: "h-open", Account: alice, Amount: 200, ExpiresAt: t0.Add(time.Hour)},
		{Kind: domain.HoldPlace, HoldID: "h-closed", Account: bob, Amount: 50},
	}})
	mustCommit(t, b, domain.Request{ID: "close", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{
		{Kind: domain.HoldCapture, HoldID: "h-closed", Credit: bank},
	}})
	assertBalances(t, b, map[string]int64{alice: 1000, bob: 50, carol: 0, bank: -1050})
	return b
}

// fanFixture: a FAN book with a 100 FAN cap; 60 FAN minted to alice.
func fanFixture(t testing.TB) *domain.Book {
	t.Helper()
	p := domain.DefaultPolicy()
	p.SupplyCaps = map[string]int64{fan: 100 * oneFAN}
	b, err := domain.NewBook(fan, p)
	if err != nil {
		t.Fatal(err)
	}
	openAll(t, b, aliceF, bobF)
	mustCommit(t, b, domain.Request{ID: "mint", Asset: fan, Kind: domain.KindRoyalty, Postings: []domain.Posting{post(domain.Mint, aliceF, 60*oneFAN)}})
	return b
}

func TestTransfersMoveMoney(t *testing.T) {
	b := usdFixture(t)
	o := mustCommit(t, b, domain.Request{ID: "tip-1", Asset: usd, Kind: domain.KindTip, RequestedBy: "tipping", Memo: "thanks",
		Postings: []domain.Posting{post(alice, bob, 300), post(alice, carol, 200), {Debit: bob, Credit: carol, Amount: 1, Kind: domain.KindReferralFee}}})
	if o.PolicyVersion != 1 || o.Sequence != 4 {
		t.Fatalf("outcome %+v", o)
	}
	assertBalances(t, b, map[string]int64{alice: 500, bob: 349, carol: 201, bank: -1050})
	bal, _ := b.Balance(alice)
	if bal != (domain.Balance{Total: 500, Held: 200, Available: 300}) {
		t.Fatalf("alice %+v", bal)
	}
	// Exactly the available amount may be spent; one cent more may not.
	mustReject(t, b, tx("too-much", usd, post(alice, bob, 301)), domain.ErrInsufficientFunds)
	mustCommit(t, b, tx("all-available", usd, post(alice, bob, 300)))
	assertBalances(t, b, map[string]int64{alice: 200, bob: 649, carol: 201, bank: -1050})
	bal, _ = b.Balance(alice)
	if bal != (domain.Balance{Total: 200, Held: 200, Available: 0}) {
		t.Fatalf("alice %+v", bal)
	}
}

func TestAllOrNothing(t *testing.T) {
	b := usdFixture(t)
	// The first posting alone would be fine; the second overdraws bob, so
	// neither applies.
	o := mustReject(t, b, tx("split", usd, post(alice, carol, 100), post(bob, carol, 51)), domain.ErrInsufficientFunds)
	if o.Account != bob || !strings.Contains(o.Err.Error(), "wallet:bob:USD has 0.50 USD available") {
		t.Fatalf("rejection %v (account %s)", o.Err, o.Account)
	}
	assertBalances(t, b, map[string]int64{alice: 1000, bob: 50, carol: 0})
	// Balance checks are on the state after the whole request: money that
	// arrives in the same request may be passed on.
	mustCommit(t, b, tx("relay", usd, post(carol, campain, 500), post(alice, carol, 500)))
	assertBalances(t, b, map[string]int64{alice: 500, bob: 50, carol: 0, campain: 500})
}

func TestSystemAccountsMayGoNegative(t *testing.T) {
	b := usdFixture(t)
	mustCommit(t, b, domain.Request{ID: "welcome", Asset: usd, Kind: domain.KindPromotion,
		Postings: []domain.Posting{post(domain.Promotions, carol, domain.DefaultPolicy().WelcomeCredit.Units())}})
	mustCommit(t, b, tx("card", usd, post(domain.ExternalID("card"), carol, 1)))
	assertBalances(t, b, map[string]int64{carol: 501, domain.Promotions: -500, domain.ExternalID("card"): -1, bank: -1050})
	// A FAN book is a token book: only mint may go negative.
	f := fanFixture(t)
	o := mustReject(t, f, tx("fan-from-bank", fan, post(bank, aliceF, 1)), domain.ErrInsufficientFunds)
	if o.Account != bank {
		t.Fatalf("account %s", o.Account)
	}
	mustReject(t, f, tx("fan-promo", fan, post(domain.Promotions, aliceF, 1)), domain.ErrInsufficientFunds)
	// Funded from mint, promotions may pay out.
	mustCommit(t, f, tx("fund-promo", fan, post(domain.Mint, domain.Promotions, 5*oneFAN), post(domain.Promotions, bobF, 2*oneFAN)))
	assertBalances(t, f, map[string]int64{domain.Promotions: 3 * oneFAN, bobF: 2 * oneFAN, aliceF: 60 * oneFAN, domain.Mint: -65 * oneFAN})
}

// TestRejections covers every rule and every bad input. Each case runs on a
// fresh fixture; mustReject asserts the reason, the kind, the detail and that
// nothing changed.
func TestRejections(t *testing.T) {
	hold := func(ops ...domain.HoldOp) domain.Request {
		return domain.Request{ID: "r", Asset: usd, Kind: domain.KindWithdrawal, Holds: ops}
	}
	many := make([]domain.Posting, domain.DefaultMaxPostings+1)
	for i := range many {
		many[i] = post(alice, bob, 1)
	}
	manyHolds := make([]domain.HoldOp, domain.DefaultMaxHoldOps+1)
	for i := range manyHolds {
		manyHolds[i] = domain.HoldOp{Kind: domain.HoldVoid, HoldID: "v" + strings.Repeat("x", i)}
	}
	cases := []struct {
		name       string
		fan        bool
		req        domain.Request
		want       *domain.Error
		remembered bool
		detail     string
	}{
		{name: "zero amount", req: tx("r", usd, post(alice, bob, 0)), want: domain.ErrInvalidAmount, detail: "posting 0: amount must be > 0, got 0.00 USD"},
		{name: "negative amount", req: tx("r", usd, post(alice, bob, 1), post(alice, bob, -5)), want: domain.ErrInvalidAmount, detail: "posting 1: amount must be > 0, got -0.05 USD"},
		{name: "unknown asset", req: tx("r", "EUR", post(alice, bob, 1)), want: domain.ErrUnknownAsset, detail: `asset "EUR" is not in policy v1 (known: FAN, USD)`},
		{name: "empty asset", req: tx("r", "", post(alice, bob, 1)), want: domain.ErrUnknownAsset},
		{name: "asset mismatch", req: tx("r", fan, post(alice, bob, 1)), want: domain.ErrAssetMismatch, detail: "the request is in FAN but this is the USD book"},
		{name: "too many postings", req: tx("r", usd, many...), want: domain.ErrTooManyPostings, detail: "65 postings, policy v1 allows 64"},
		{name: "too many hold operations", req: hold(manyHolds...), want: domain.ErrTooManyHoldOps, detail: "65 hold operations, policy v1 allows 64"},
		{name: "posting to itself", req: tx("r", usd, post(alice, alice, 1)), want: domain.ErrSelfPosting, detail: "posting 0 moves from wallet:alice:USD to itself"},
		{name: "malformed account id", req: tx("r", usd, post(alice, "wallet:bob", 1)), want: domain.ErrInvalidAccountID, detail: `"wallet:bob" is not wallet:<identity>:<ASSET>`},
		{name: "unknown account kind", req: tx("r", usd, post(alice, "bank", 1)), want: domain.ErrInvalidAccountID},
		{name: "account of another book", req: tx("r", usd, post(alice, aliceF, 1)), want: domain.ErrUnknownAccount, detail: "wallet:alice:FAN belongs to the FAN book, not USD"},
		{name: "mint in a book without cap", req: tx("r", usd, post(domain.Mint, alice, 1)), want: domain.ErrUnknownAccount, detail: "the USD book has no mint account"},
		{name: "credit to mint", fan: true, req: tx("r", fan, post(aliceF, domain.Mint, 1)), want: domain.ErrInvalidPosting, detail: "credits mint"},
		{name: "debit from burn", fan: true, req: tx("r", fan, post(domain.Burn, aliceF, 1)), want: domain.ErrInvalidPosting, detail: "debits burn"},
		{name: "empty id", req: tx("", usd, post(alice, bob, 1)), want: domain.ErrInvalidRequest, detail: "request id must be 1..256 bytes, got 0"},
		{name: "long id", req: tx(strings.Repeat("i", 257), usd, post(alice, bob, 1)), want: domain.ErrInvalidRequest},
		{name: "unknown request kind", req: domain.Request{ID: "r", Asset: usd, Kind: 99, Postings: []domain.Posting{post(alice, bob, 1)}}, want: domain.ErrInvalidRequest, detail: "unknown request kind 99"},
		{name: "missing request kind", req: domain.Request{ID: "r", Asset: usd, Postings: []domain.Posting{post(alice, bob, 1)}}, want: domain.ErrInvalidRequest},
		{name: "unknown posting kind", req: tx("r", usd, domain.Posting{Debit: alice, Credit: bob, Amount: 1, Kind: -1}), want: domain.ErrInvalidRequest},
		{name: "nothing to do", req: tx("r", usd), want: domain.ErrInvalidRequest, detail: "no postings and no hold operations"},
		{name: "memo too long", req: domain.Request{ID: "r", Asset: usd, Kind: domain.KindTip, Memo: strings.Repeat("m", domain.MaxTextLen+1), Postings: []domain.Posting{post(alice, bob, 1)}}, want: domain.ErrInvalidRequest},
		{name: "hold on a system account", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h", Account: bank, Amount: 1}), want: domain.ErrInvalidHold, detail: "holds are placed on wallets and escrows"},
		{name: "hold with zero amount", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h", Account: alice}), want: domain.ErrInvalidAmount},
		{name: "hold with a credit", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h", Account: alice, Amount: 1, Credit: bob}), want: domain.ErrInvalidRequest},
		{name: "hold expiring before 1970", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h", Account: alice, Amount: 1, ExpiresAt: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}), want: domain.ErrInvalidHold},
		{name: "empty hold id", req: hold(domain.HoldOp{Kind: domain.HoldVoid}), want: domain.ErrInvalidHold, detail: "hold operation 0: hold id is empty"},
		{name: "hold id twice in a request", req: hold(domain.HoldOp{Kind: domain.HoldVoid, HoldID: "h-open"}, domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Credit: bob}), want: domain.ErrInvalidHold, detail: `hold "h-open" appears in operations 0 and 1`},
		{name: "void with an amount", req: hold(domain.HoldOp{Kind: domain.HoldVoid, HoldID: "h-open", Amount: 1}), want: domain.ErrInvalidRequest, detail: "void takes a hold id only"},
		{name: "capture with a negative amount", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Amount: -1, Credit: bob}), want: domain.ErrInvalidAmount},
		{name: "capture without credit", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open"}), want: domain.ErrInvalidAccountID},
		{name: "capture with an account", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Account: alice, Credit: bob}), want: domain.ErrInvalidRequest},
		{name: "unknown hold operation", req: hold(domain.HoldOp{Kind: 9, HoldID: "h-open"}), want: domain.ErrInvalidRequest},

		// Decided against the state: remembered.
		{name: "account not open", req: tx("r", usd, post(alice, nobody, 1)), want: domain.ErrUnknownAccount, remembered: true, detail: "wallet:nobody:USD is not open"},
		{name: "escrow not open", req: tx("r", usd, post(alice, domain.EscrowID("discovery", "x", usd), 1)), want: domain.ErrUnknownAccount, remembered: true},
		{name: "insufficient funds", req: tx("r", usd, post(bob, carol, 51)), want: domain.ErrInsufficientFunds, remembered: true, detail: "wallet:bob:USD has 0.50 USD available"},
		{name: "held funds are not available", req: tx("r", usd, post(alice, carol, 801)), want: domain.ErrInsufficientFunds, remembered: true, detail: "below its holds 2.00"},
		{name: "hold beyond available", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h2", Account: alice, Amount: 801}), want: domain.ErrInsufficientFunds, remembered: true},
		{name: "capture of an unknown hold", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-none", Credit: bob}), want: domain.ErrUnknownHold, remembered: true, detail: `hold "h-none" was never placed`},
		{name: "void of an unknown hold", req: hold(domain.HoldOp{Kind: domain.HoldVoid, HoldID: "h-none"}), want: domain.ErrUnknownHold, remembered: true},
		{name: "capture of a closed hold", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-closed", Credit: carol}), want: domain.ErrHoldClosed, remembered: true, detail: `hold "h-closed" is already captured`},
		{name: "void of a closed hold", req: hold(domain.HoldOp{Kind: domain.HoldVoid, HoldID: "h-closed"}), want: domain.ErrHoldClosed, remembered: true},
		{name: "hold id reused", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h-closed", Account: alice, Amount: 1}), want: domain.ErrHoldExists, remembered: true},
		{name: "capture beyond the hold", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Amount: 201, Credit: carol}), want: domain.ErrCaptureExceedsHold, remembered: true, detail: `capture of 2.01 from hold "h-open", which holds 2.00`},
		{name: "capture into the held account", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Credit: alice}), want: domain.ErrSelfPosting, remembered: true},
		{name: "capture into an unopened account", req: hold(domain.HoldOp{Kind: domain.HoldCapture, HoldID: "h-open", Credit: nobody}), want: domain.ErrUnknownAccount, remembered: true},
		{name: "hold expiring before the clock", req: hold(domain.HoldOp{Kind: domain.HoldPlace, HoldID: "h2", Account: alice, Amount: 1, ExpiresAt: t0}), want: domain.ErrHoldExpired, remembered: true},
		{name: "balance overflow", req: tx("r", usd, post(bank, carol, math.MaxInt64)), want: domain.ErrAmountOverflow, remembered: true},
		{name: "total overflow", req: tx("r", usd, post(bank, carol, math.MaxInt64), post(domain.Promotions, carol, math.MaxInt64)), want: domain.ErrAmountOverflow, remembered: true},
		{name: "mint past the cap", fan: true, req: tx("r", fan, post(domain.Mint, aliceF, 40*oneFAN+1)), want: domain.ErrSupplyCap, remembered: true, detail: "supply 60.00000000 + minted 40.00000001 − burned 0.00000000 exceeds the cap 100.00000000 FAN of policy v1"},
		{name: "burn more than held", fan: true, req: tx("r", fan, post(aliceF, domain.Burn, 60*oneFAN+1)), want: domain.ErrInsufficientFunds, remembered: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b *domain.Book
			if c.fan {
				b = fanFixture(t)
			} else {
				b = usdFixture(t)
			}
			o := mustReject(t, b, c.req, c.want)
			if c.detail != "" && !strings.Contains(o.Err.Error(), c.detail) {
				t.Fatalf("error %q does not say %q", o.Err, c.detail)
			}
			_, remembered := b.Decision(c.req.ID)
			if remembered != c.remembered {
				t.Fatalf("remembered = %v, want %v", remembered, c.remembered)
			}
			if remembered {
				// The same id with other content is a conflict, whatever the
				// content.
				other := c.req
				other.Memo = "changed"
				mustReject(t, b, other, domain.ErrIDConflict)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	b := usdFixture(t)
	req := tx("tip-7", usd, post(alice, bob, 100))
	first := mustCommit(t, b, req)
	assertBalances(t, b, map[string]int64{alice: 900, bob: 150})

	// Same id, same content: the first outcome again, nothing moves.
	snap := b.Snapshot()
	again := b.Apply(tx("tip-7", usd, post(alice, bob, 100)))
	if !again.Committed() || !again.Replayed || again.Sequence != first.Sequence || again.PolicyVersion != first.PolicyVersion {
		t.Fatalf("repeat = %+v, first = %+v", again, first)
	}
	if !bytes.Equal(snap, b.Snapshot()) {
		t.Fatal("a repeat changed the book")
	}
	assertBalances(t, b, map[string]int64{alice: 900, bob: 150})
	if d, ok := b.Decision("tip-7"); !ok || d.Sequence != first.Sequence || !d.Replayed {
		t.Fatalf("Decision = %+v, %v", d, ok)
	}

	// Same id, different content: id_conflict, the first outcome stays.
	for _, other := range []domain.Request{
		tx("tip-7", usd, post(alice, bob, 101)),
		tx("tip-7", usd, post(alice, carol, 100)),
		tx("tip-7", usd, post(alice, bob, 100), post(alice, bob, 1)),
		{ID: "tip-7", Asset: usd, Kind: domain.KindPurchase, Postings: []domain.Posting{post(alice, bob, 100)}},
		{ID: "tip-7", Asset: usd, Kind: domain.KindTip, RequestedBy: "someone", Postings: []domain.Posting{post(alice, bob, 100)}},
		{ID: "tip-7", Asset: usd, Kind: domain.KindTip, Postings: []domain.Posting{{Debit: alice, Credit: bob, Amount: 100, Kind: domain.KindTip}}},
		{ID: "tip-7", Asset: usd, Kind: domain.KindTip, Postings: []domain.Posting{post(alice, bob, 0)}}, // invalid too: conflict wins
		tx("tip-7", fan, post(aliceF, bobF, 100)),
	} {
		o := mustReject(t, b, other, domain.ErrIDConflict)
		if !strings.Contains(o.Err.Error(), `request "tip-7" was decided before with different content`) {
			t.Fatalf("detail: %v", o.Err)
		}
	}

	// A remembered rejection stays the outcome even after the funds arrive.
	mustReject(t, b, tx("pay-1", usd, post(carol, bob, 100)), domain.ErrInsufficientFunds)
	mustCommit(t, b, tx("fund-carol", usd, post(bank, carol, 1000)))
	o := b.Apply(tx("pay-1", usd, post(carol, bob, 100)))
	if o.Committed() || !o.Replayed || !errors.Is(o.Err, domain.ErrInsufficientFunds) {
		t.Fatalf("retry after funding = %+v", o)
	}
	assertBalances(t, b, map[string]int64{carol: 1000, bob: 150})

	// A malformed request is not remembered: the corrected one may use the id.
	mustReject(t, b, tx("pay-2", usd, post(carol, carol, 100)), domain.ErrSelfPosting)
	mustCommit(t, b, tx("pay-2", usd, post(carol, bob, 100)))
	assertBalances(t, b, map[string]int64{carol: 900, bob: 250})

	// The fingerprint is a function of the content only.
	r1 := tx("x", usd, post(alice, bob, 1))
	r2 := tx("y", usd, post(alice, bob, 1))
	r3 := tx("x", usd, post(alice+"", bob, 2))
	if r1.Fingerprint() != r2.Fingerprint() || r1.Fingerprint() == r3.Fingerprint() {
		t.Fatal("fingerprint depends on the id or ignores the amount")
	}
	// Length prefixes keep field boundaries: moving a character from one
	// field to the next changes the fingerprint.
	a := domain.Request{Asset: usd, Kind: domain.KindTip, RequestedBy: "ab", Memo: "c"}
	c := domain.Request{Asset: usd, Kind: domain.KindTip, RequestedBy: "a", Memo: "bc"}
	if a.Fingerprint() == c.Fingerprint() {
		t.Fatal("fingerprint is not injective over field boundaries")
	}
}

func TestHolds(t *testing.T) {
	b := usdFixture(t)
	// A withdrawal: hold, then finance settles part of it.
	o := mustCommit(t, b, domain.Request{ID: "w1", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{
		{Kind: domain.HoldPlace, HoldID: "w1", Account: alice, Amount: 500},
	}})
	if len(o.Holds) != 1 || o.Holds[0] != (domain.HoldEffect{Kind: domain.HoldPlace, HoldID: "w1", Account: alice, Amount: 500}) {
		t.Fatalf("effects %+v", o.Holds)
	}
	bal, _ := b.Balance(alice)
	if bal != (domain.Balance{Total: 1000, Held: 700, Available: 300}) {
		t.Fatalf("alice %+v", bal)
	}
	holds, _ := b.OpenHolds(alice)
	if len(holds) != 2 || holds[0].ID != "h-open" || holds[1].ID != "w1" || holds[1].Placed != o.Sequence || !holds[0].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("open holds %+v", holds)
	}
	assertBalances(t, b, map[string]int64{alice: 1000, bank: -1050})

	o = mustCommit(t, b, domain.Request{ID: "w1-settle", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{
		{Kind: domain.HoldCapture, HoldID: "w1", Amount: 450, Credit: bank},
	}})
	if o.Holds[0] != (domain.HoldEffect{Kind: domain.HoldCapture, HoldID: "w1", Account: alice, Amount: 450, Released: 50, Credit: bank}) {
		t.Fatalf("capture effect %+v", o.Holds[0])
	}
	bal, _ = b.Balance(alice)
	if bal != (domain.Balance{Total: 550, Held: 200, Available: 350}) {
		t.Fatalf("alice after capture %+v", bal)
	}
	assertBalances(t, b, map[string]int64{alice: 550, bank: -600})
	h, err := b.Hold("w1")
	if err != nil || h.Status != domain.HoldCaptured || h.Amount != 500 {
		t.Fatalf("Hold(w1) = %+v, %v", h, err)
	}

	// A rejected withdrawal: the hold is voided, nothing moves.
	mustCommit(t, b, domain.Request{ID: "w2", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "w2", Account: alice, Amount: 350}}})
	mustReject(t, b, tx("spend", usd, post(alice, bob, 1)), domain.ErrInsufficientFunds)
	o = mustCommit(t, b, domain.Request{ID: "w2-reject", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldVoid, HoldID: "w2"}}})
	if o.Holds[0] != (domain.HoldEffect{Kind: domain.HoldVoid, HoldID: "w2", Account: alice, Amount: 350}) {
		t.Fatalf("void effect %+v", o.Holds[0])
	}
	assertBalances(t, b, map[string]int64{alice: 550, bank: -600})
	bal, _ = b.Balance(alice)
	if bal.Available != 350 {
		t.Fatalf("alice after void %+v", bal)
	}

	// A whole-hold capture to an escrow and the split out of it, in one
	// request (a crowdfund settlement).
	mustCommit(t, b, domain.Request{ID: "pledge", Asset: usd, Kind: domain.KindPledgeCapture, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "pledge", Account: bob, Amount: 30}}})
	mustCommit(t, b, domain.Request{ID: "settle", Asset: usd, Kind: domain.KindPledgeCapture,
		Holds:    []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "pledge", Credit: campain}},
		Postings: []domain.Posting{post(campain, carol, 20), post(campain, alice, 10)}})
	assertBalances(t, b, map[string]int64{alice: 560, bob: 20, carol: 20, campain: 0, bank: -600})
}

func TestHoldExpiry(t *testing.T) {
	b := usdFixture(t)
	place := func(id string, amount int64, exp time.Time) {
		mustCommit(t, b, domain.Request{ID: id, Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: id, Account: alice, Amount: amount, ExpiresAt: exp}}})
	}
	place("hb", 10, t0.Add(30*time.Minute))
	place("ha", 20, t0.Add(30*time.Minute))
	place("hc", 30, t0.Add(2*time.Hour))
	place("hn", 40, time.Time{})
	if got := b.ExpireHolds(t0.Add(29 * time.Minute)); got != nil {
		t.Fatalf("expired early: %+v", got)
	}
	ledger := b.LedgerSnapshot()
	got := b.ExpireHolds(t0.Add(time.Hour)) // ha, hb (same expiry: by id), then h-open
	want := []domain.HoldEffect{
		{Kind: domain.HoldVoid, HoldID: "ha", Account: alice, Amount: 20, Expired: true},
		{Kind: domain.HoldVoid, HoldID: "hb", Account: alice, Amount: 10, Expired: true},
		{Kind: domain.HoldVoid, HoldID: "h-open", Account: alice, Amount: 200, Expired: true},
	}
	if len(got) != len(want) {
		t.Fatalf("expired %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("expired[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if bytes.Equal(ledger, b.LedgerSnapshot()) {
		t.Fatal("expiry did not change the ledger")
	}
	bal, _ := b.Balance(alice)
	if bal != (domain.Balance{Total: 1000, Held: 70, Available: 930}) {
		t.Fatalf("alice %+v", bal)
	}
	if h, _ := b.Hold("h-open"); h.Status != domain.HoldExpired {
		t.Fatalf("h-open %+v", h)
	}
	checkInvariants(t, b)
	// Captures of an expired hold are refused; a new hold must expire after
	// the clock; an earlier clock does not move it back.
	mustReject(t, b, domain.Request{ID: "late", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "ha", Credit: bank}}}, domain.ErrHoldClosed)
	if got := b.ExpireHolds(t0); got != nil || !b.Clock().Equal(t0.Add(time.Hour)) {
		t.Fatalf("clock went back: %v %v", got, b.Clock())
	}
	mustReject(t, b, domain.Request{ID: "past", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "hp", Account: alice, Amount: 1, ExpiresAt: t0.Add(time.Hour)}}}, domain.ErrHoldExpired)
	place("hd", 1, t0.Add(time.Hour+time.Nanosecond))
	got = b.ExpireHolds(t0.Add(10 * time.Hour))
	if len(got) != 2 || got[0].HoldID != "hd" || got[1].HoldID != "hc" {
		t.Fatalf("second expiry %+v", got)
	}
	holds, _ := b.OpenHolds(alice)
	if len(holds) != 1 || holds[0].ID != "hn" {
		t.Fatalf("open holds %+v", holds)
	}
	assertBalances(t, b, map[string]int64{alice: 1000})
}

func TestSupplyCap(t *testing.T) {
	b := fanFixture(t)
	if s := b.Supply(); s != (domain.Supply{Minted: 60 * oneFAN, Circulating: 60 * oneFAN, Cap: 100 * oneFAN}) {
		t.Fatalf("supply %+v", s)
	}
	// Up to the cap exactly.
	mustCommit(t, b, tx("m2", fan, post(domain.Mint, bobF, 40*oneFAN)))
	mustReject(t, b, tx("m3", fan, post(domain.Mint, bobF, 1)), domain.ErrSupplyCap)
	// A standard-tier play at the cap: mints 2, burns 3 — net down, allowed.
	mustCommit(t, b, domain.Request{ID: "play", Asset: fan, Kind: domain.KindRoyalty, Postings: []domain.Posting{
		post(domain.Mint, aliceF, oneFAN), post(domain.Mint, bobF, oneFAN),
		{Debit: aliceF, Credit: domain.Burn, Amount: 3 * oneFAN, Kind: domain.KindBurn},
	}})
	assertBalances(t, b, map[string]int64{aliceF: 58 * oneFAN, bobF: 41 * oneFAN, domain.Mint: -102 * oneFAN, domain.Burn: 3 * oneFAN})
	if s := b.Supply(); s != (domain.Supply{Minted: 102 * oneFAN, Burned: 3 * oneFAN, Circulating: 99 * oneFAN, Cap: 100 * oneFAN}) {
		t.Fatalf("supply %+v", s)
	}
	// A burn through a captured hold counts too.
	mustCommit(t, b, domain.Request{ID: "hb", Asset: fan, Kind: domain.KindBurn, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "hb", Account: bobF, Amount: oneFAN}}})
	mustCommit(t, b, domain.Request{ID: "hb-burn", Asset: fan, Kind: domain.KindBurn, Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "hb", Credit: domain.Burn}}})
	if s := b.Supply(); s.Circulating != 98*oneFAN || s.Burned != 4*oneFAN {
		t.Fatalf("supply %+v", s)
	}
	mustCommit(t, b, tx("m4", fan, post(domain.Mint, bobF, 2*oneFAN)))

	// A new policy lowers the cap below the supply: mints are refused, burns
	// still work, and outcomes carry the policy version.
	p := b.Policy()
	p.Version = 2
	p.SupplyCaps = map[string]int64{fan: 50 * oneFAN}
	if err := b.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	o := mustReject(t, b, tx("m5", fan, post(domain.Mint, bobF, 1)), domain.ErrSupplyCap)
	if o.PolicyVersion != 2 || o.Account != domain.Mint {
		t.Fatalf("outcome %+v", o)
	}
	o = mustCommit(t, b, tx("burn-1", fan, post(bobF, domain.Burn, oneFAN)))
	if o.PolicyVersion != 2 {
		t.Fatalf("policy version %d", o.PolicyVersion)
	}
	if d, _ := b.Decision("m2"); d.PolicyVersion != 1 {
		t.Fatalf("m2 was decided under v%d", d.PolicyVersion)
	}
	assertBalances(t, b, map[string]int64{domain.Mint: -104 * oneFAN, domain.Burn: 5 * oneFAN})
	if s := b.Supply(); s != (domain.Supply{Minted: 104 * oneFAN, Burned: 5 * oneFAN, Circulating: 99 * oneFAN, Cap: 50 * oneFAN}) {
		t.Fatalf("supply %+v", s)
	}
}

func TestDefaultSupplyCap(t *testing.T) {
	b := newBook(t, fan)
	openAll(t, b, aliceF)
	capUnits := money.MustParse(money.FAN, "2000000000").Units()
	if b.Supply().Cap != capUnits {
		t.Fatalf("cap %d", b.Supply().Cap)
	}
	mustCommit(t, b, tx("all", fan, post(domain.Mint, aliceF, capUnits)))
	mustReject(t, b, tx("one-more", fan, post(domain.Mint, aliceF, 1)), domain.ErrSupplyCap)
	assertBalances(t, b, map[string]int64{aliceF: capUnits, domain.Mint: -capUnits})
}

func TestOpen(t *testing.T) {
	b := newBook(t, usd)
	for _, c := range []struct {
		id     string
		opened bool
		err    *domain.Error
	}{
		{alice, true, nil},
		{alice, false, nil},
		{domain.EscrowID("discovery", "artist-1", usd), true, nil},
		{bank, false, nil},
		{domain.Promotions, false, nil},
		{domain.Mint, false, domain.ErrUnknownAccount},
		{aliceF, false, domain.ErrUnknownAccount},
		{"wallet:al ice:USD", false, domain.ErrInvalidAccountID},
		{"", false, domain.ErrInvalidAccountID},
	} {
		opened, err := b.Open(c.id)
		if opened != c.opened || (c.err == nil) != (err == nil) || (c.err != nil && !errors.Is(err, c.err)) {
			t.Errorf("Open(%q) = %v, %v; want %v, %v", c.id, opened, err, c.opened, c.err)
		}
	}
	bal, err := b.Balance(alice)
	if err != nil || bal != (domain.Balance{}) {
		t.Fatalf("new wallet %+v, %v", bal, err)
	}
	if _, err := b.Balance(nobody); !errors.Is(err, domain.ErrUnknownAccount) || domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("Balance(nobody) error %v", err)
	}
	if _, err := b.Balance(domain.ExternalID("never-used")); err != nil {
		t.Fatalf("system account balance: %v", err)
	}
	if _, err := b.OpenHolds("nope"); !errors.Is(err, domain.ErrInvalidAccountID) {
		t.Fatalf("OpenHolds(nope) error %v", err)
	}
	if _, err := b.Hold("nope"); !errors.Is(err, domain.ErrUnknownHold) {
		t.Fatalf("Hold(nope) error %v", err)
	}
	checkInvariants(t, b)
}

func TestAccountIDs(t *testing.T) {
	valid := []struct {
		id   string
		want domain.AccountID
	}{
		{"wallet:3f2c-9a_b.c:USD", domain.AccountID{ID: "wallet:3f2c-9a_b.c:USD", Kind: domain.AccountWallet, Owner: "3f2c-9a_b.c", Asset: "USD"}},
		{"escrow:discovery:artist-7:FAN", domain.AccountID{ID: "escrow:discovery:artist-7:FAN", Kind: domain.AccountEscrow, Purpose: "discovery", Owner: "artist-7", Asset: "FAN"}},
		{"external:bank", domain.AccountID{ID: "external:bank", Kind: domain.AccountExternal, Owner: "bank"}},
		{"mint", domain.AccountID{ID: "mint", Kind: domain.AccountMint}},
		{"burn", domain.AccountID{ID: "burn", Kind: domain.AccountBurn}},
		{"promotions", domain.AccountID{ID: "promotions", Kind: domain.AccountPromotions}},
	}
	for _, c := range valid {
		got, err := domain.ParseAccountID(c.id)
		if err != nil || got != c.want {
			t.Errorf("ParseAccountID(%q) = %+v, %v", c.id, got, err)
		}
	}
	if domain.WalletID("a", "USD") != "wallet:a:USD" || domain.EscrowID("campaign", "c", "USD") != "escrow:campaign:c:USD" || domain.ExternalID("bank") != "external:bank" {
		t.Fatal("id helpers")
	}
	for _, id := range []string{"", "wallet", "wallet:", "wallet::USD", "wallet:a:usd", "wallet:a:USD:x", "wallet:a b:USD",
		"escrow:x:USD", "escrow::r:USD", "external:", "external:a:b", "Mint", "mint:x", "wallet:" + strings.Repeat("a", 129) + ":USD",
		"user:a:USD", "wallet:a:U", "wallet:ä:USD", "a:b:c:d:e:f"} {
		_, err := domain.ParseAccountID(id)
		if !errors.Is(err, domain.ErrInvalidAccountID) || domain.KindOf(err) != domain.KindInvalidInput || domain.ReasonOf(err) != domain.ReasonInvalid {
			t.Errorf("ParseAccountID(%q) error = %v", id, err)
		}
	}
	if !domain.AccountMint.System() || domain.AccountWallet.System() || domain.AccountEscrow.String() != "escrow" {
		t.Fatal("kinds")
	}
}

func TestPolicy(t *testing.T) {
	p := domain.DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.WelcomeCredit.String() != "5.00 USD" || p.MaxPostings != 64 || p.Version != 1 {
		t.Fatalf("default policy %+v", p)
	}
	if c, ok := p.SupplyCap(fan); !ok || c != 2_000_000_000*oneFAN {
		t.Fatalf("FAN cap %d %v", c, ok)
	}
	if _, ok := p.SupplyCap(usd); ok {
		t.Fatal("USD has a cap")
	}
	bad := []func(*domain.Policy){
		func(p *domain.Policy) { p.Version = 0 },
		func(p *domain.Policy) { p.Assets = money.Assets{} },
		func(p *domain.Policy) { p.SupplyCaps = map[string]int64{"EUR": 1} },
		func(p *domain.Policy) { p.SupplyCaps = map[string]int64{fan: 0} },
		func(p *domain.Policy) { p.WelcomeCredit = money.New(money.Asset{Code: "EUR", Scale: 2}, 1) },
		func(p *domain.Policy) { p.WelcomeCredit = money.New(money.USD, -1) },
		func(p *domain.Policy) { p.MaxPostings = 0 },
		func(p *domain.Policy) { p.MaxHoldOps = 5000 },
	}
	for i, mut := range bad {
		q := domain.DefaultPolicy()
		mut(&q)
		if err := q.Validate(); !errors.Is(err, domain.ErrInvalidPolicy) {
			t.Errorf("case %d: Validate() = %v", i, err)
		}
		if _, err := domain.NewBook(usd, q); !errors.Is(err, domain.ErrInvalidPolicy) {
			t.Errorf("case %d: NewBook error %v", i, err)
		}
	}
	if _, err := domain.NewBook("EUR", p); !errors.Is(err, domain.ErrUnknownAsset) {
		t.Fatalf("NewBook(EUR) error %v", err)
	}

	b := usdFixture(t)
	snap := b.Snapshot()
	for _, c := range []struct {
		mut  func(*domain.Policy)
		want *domain.Error
	}{
		{func(p *domain.Policy) {}, domain.ErrPolicyVersion},
		{func(p *domain.Policy) { p.Version = 2; p.MaxPostings = -1 }, domain.ErrInvalidPolicy},
		{func(p *domain.Policy) {
			p.Version = 2
			p.Assets, _ = money.NewAssets(money.Asset{Code: "USD", Scale: 3})
			p.SupplyCaps = nil
			p.WelcomeCredit = money.Amount{}
		}, domain.ErrUnknownAsset},
		{func(p *domain.Policy) { p.Version = 2; p.SupplyCaps = map[string]int64{usd: 1} }, domain.ErrInvalidPolicy},
	} {
		q := b.Policy()
		c.mut(&q)
		if err := b.SetPolicy(q); !errors.Is(err, c.want) {
			t.Errorf("SetPolicy error %v, want %s", err, c.want.Code())
		}
	}
	if !bytes.Equal(snap, b.Snapshot()) {
		t.Fatal("a refused policy changed the book")
	}
	// A new bound applies to the next request.
	q := b.Policy()
	q.Version = 5
	q.MaxPostings = 1
	if err := b.SetPolicy(q); err != nil {
		t.Fatal(err)
	}
	// The book keeps its own copy of the policy.
	q.SupplyCaps[usd] = 1
	if _, ok := b.Policy().SupplyCap(usd); ok {
		t.Fatal("the book's policy changed with the caller's map")
	}
	o := mustReject(t, b, tx("two", usd, post(alice, bob, 1), post(alice, bob, 1)), domain.ErrTooManyPostings)
	if o.PolicyVersion != 5 || !strings.Contains(o.Err.Error(), "policy v5 allows 1") {
		t.Fatalf("outcome %+v", o)
	}
}

func TestApplyBatch(t *testing.T) {
	b := usdFixture(t)
	outs := b.ApplyBatch([]domain.Request{
		tx("b1", usd, post(alice, carol, 100)),
		tx("b2", usd, post(carol, bob, 100)), // sees b1
		tx("b3", usd, post(carol, bob, 1)),   // carol is empty again
		tx("b1", usd, post(alice, carol, 100)),
		tx("b1", usd, post(alice, carol, 5)),
	})
	if len(outs) != 5 {
		t.Fatalf("%d outcomes", len(outs))
	}
	if !outs[0].Committed() || !outs[1].Committed() || outs[1].Sequence != outs[0].Sequence+1 {
		t.Fatalf("outcomes %+v", outs[:2])
	}
	if !errors.Is(outs[2].Err, domain.ErrInsufficientFunds) || !outs[3].Replayed || outs[3].Sequence != outs[0].Sequence || !errors.Is(outs[4].Err, domain.ErrIDConflict) {
		t.Fatalf("outcomes %+v", outs[2:])
	}
	assertBalances(t, b, map[string]int64{alice: 900, bob: 150, carol: 0})
	if got := b.ApplyBatch(nil); len(got) != 0 {
		t.Fatal("empty batch")
	}
}

func TestSnapshotRestore(t *testing.T) {
	b := usdFixture(t)
	mustReject(t, b, tx("rej", usd, post(carol, bob, 1)), domain.ErrInsufficientFunds)
	mustCommit(t, b, domain.Request{ID: "cap", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "h-open", Amount: 1, Credit: carol}}})
	b.ExpireHolds(t0.Add(time.Minute))
	c := roundTrip(t, b)
	if c.Sequence() != b.Sequence() || !c.Clock().Equal(b.Clock()) || c.Policy().Version != b.Policy().Version {
		t.Fatal("restored book differs")
	}
	// The restored book answers repeats with the first outcomes.
	o := c.Apply(tx("rej", usd, post(carol, bob, 1)))
	if !o.Replayed || !errors.Is(o.Err, domain.ErrInsufficientFunds) {
		t.Fatalf("restored repeat %+v", o)
	}
	o = c.Apply(domain.Request{ID: "cap", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: "h-open", Amount: 1, Credit: carol}}})
	if !o.Replayed || len(o.Holds) != 1 || o.Holds[0].Released != 199 {
		t.Fatalf("restored repeat %+v", o)
	}
	// Both books continue identically.
	for _, bk := range []*domain.Book{b, c} {
		mustCommit(t, bk, tx("next", usd, post(alice, carol, 7)))
	}
	if !bytes.Equal(b.Snapshot(), c.Snapshot()) {
		t.Fatal("books diverged after restore")
	}
	// A ledger-only snapshot restores without the remembered outcomes.
	l, err := domain.Restore(b.LedgerSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.LedgerSnapshot(), b.LedgerSnapshot()) {
		t.Fatal("ledger snapshot round trip")
	}
	if _, ok := l.Decision("next"); ok {
		t.Fatal("ledger snapshot kept decisions")
	}

	// Corruption of any kind is refused.
	snap := b.Snapshot()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": snap[:len(snap)-1],
		"trailing":  append(append([]byte{}, snap...), 0),
		"magic":     append([]byte("x"), snap[1:]...),
	} {
		if _, err := domain.Restore(data); !errors.Is(err, domain.ErrCorruptSnapshot) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	for i := range snap {
		bad := append([]byte{}, snap...)
		bad[i] ^= 0x40
		if _, err := domain.Restore(bad); !errors.Is(err, domain.ErrCorruptSnapshot) {
			t.Fatalf("flipped byte %d: error %v", i, err)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for _, c := range []struct {
		err    *domain.Error
		kind   domain.ErrorKind
		reason domain.Reason
	}{
		{domain.ErrInsufficientFunds, domain.KindForbidden, domain.ReasonInsufficientFunds},
		{domain.ErrSupplyCap, domain.KindForbidden, domain.ReasonSupplyCap},
		{domain.ErrIDConflict, domain.KindConflict, domain.ReasonIDConflict},
		{domain.ErrUnknownAccount, domain.KindNotFound, domain.ReasonUnknownAccount},
		{domain.ErrInvalidAmount, domain.KindInvalidInput, domain.ReasonInvalid},
		{domain.ErrHoldClosed, domain.KindConflict, domain.ReasonInvalid},
		{domain.ErrUnknownHold, domain.KindNotFound, domain.ReasonInvalid},
	} {
		if c.err.Kind() != c.kind || c.err.Reason() != c.reason || domain.KindOf(c.err) != c.kind {
			t.Errorf("%s: kind %s reason %s", c.err.Code(), c.err.Kind(), c.err.Reason())
		}
	}
	if domain.KindOf(errors.New("x")) != domain.KindUnknown || domain.ReasonOf(nil) != "" {
		t.Fatal("non-domain errors")
	}
	if domain.KindForbidden.String() != "forbidden" {
		t.Fatal("kind names")
	}
}
