package domain_test

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/referral/domain"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
)

const (
	purchaseK = eventsv1.PostingKind_POSTING_KIND_PURCHASE
	feeK      = eventsv1.PostingKind_POSTING_KIND_REFERRAL_FEE
	songID    = "5b0b6d1e-7f0e-4a57-9d0b-2f1c1f4f7a10"

	modeNone    = eventsv1.DistributorPolicy_MODE_NONE
	modeFixed   = eventsv1.DistributorPolicy_MODE_FIXED
	modePercent = eventsv1.DistributorPolicy_MODE_PERCENT
	holder      = eventsv1.DistributorPolicy_PAYER_HOLDER
	purchaser   = eventsv1.DistributorPolicy_PAYER_PURCHASER
)

func w(id string) string { return accounts.WalletID(id, "USD") }

// splits3 shares a price three ways with odd ppm, so every split of an
// amount that is not a multiple of 3 leaves remainders to place.
func splits3() []*eventsv1.Split {
	return []*eventsv1.Split{{PayeeId: "ann", SharePpm: 333_333}, {PayeeId: "bob", SharePpm: 333_333}, {PayeeId: "cat", SharePpm: 333_334}}
}

func song(price int64, pol *eventsv1.DistributorPolicy) *eventsv1.SongDescription {
	d := &eventsv1.SongDescription{SongId: songID, ArtistId: "ann", Splits: splits3(), DistributorPolicy: pol}
	if price > 0 {
		d.Price = &eventsv1.Money{Asset: "USD", Units: price}
	}
	return d
}

func purchase(by string, price int64) domain.Purchase {
	return domain.Purchase{PurchaseID: "8d7e3c52-1c1e-4bb5-8e3b-1d4f2f0a9c01", SongID: songID, PurchaserID: by, Asset: "USD", Price: price}
}

func fixed(payer eventsv1.DistributorPolicy_Payer, units ...int64) *eventsv1.DistributorPolicy {
	return &eventsv1.DistributorPolicy{Mode: modeFixed, Payer: payer, FixedUnits: units}
}

func percent(payer eventsv1.DistributorPolicy_Payer, ppm ...uint32) *eventsv1.DistributorPolicy {
	return &eventsv1.DistributorPolicy{Mode: modePercent, Payer: payer, PercentPpm: ppm}
}

type post struct {
	credit string
	amount int64
	kind   eventsv1.PostingKind
}

func pay(id string, amount int64) post { return post{w(id), amount, purchaseK} }
func fee(id string, amount int64) post { return post{w(id), amount, feeK} }

var hops = []string{"d1", "d2", "d3", "d4"}

// Every policy combination over a three-way split of odd cents, with
// chains shorter and longer than the policy's lists. Amounts were worked
// out by hand (largest remainder, ties to the smaller payee id):
//
//	1.99 over 333333/333333/333334 ppm: 66.333267, 66.333267, 66.333466 → 66, 66, 67
//	percent 10%/5%/2.5% of 1.99, rest 82.5%: 19.9, 9.95, 4.975, 164.175 → 20, 10, 5 (rest 164)
//	1.64 three ways: 54.666612, 54.666612, 54.666776 → 55 (tie, ann first), 54, 55
//	percent 60%/50%/30% (S = 1.4e6, n = 2) of 2 × 1.99 over 0.6/0.5/0.3/0.6 million:
//	119.4, 99.5, 59.7, 119.4 → 119, 100, 60
func TestPlanPolicies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		by      string // purchaser
		price   int64
		pol     *eventsv1.DistributorPolicy
		chain   []string
		want    []post
		charged int64 // what the purchase costs the purchaser
		kept    int64 // of which stays in the purchaser's wallet
	}{
		{name: "no policy, no chain", by: "pat", price: 199,
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		{name: "no policy, 3 hops", by: "pat", price: 199, chain: hops[:3],
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		{name: "none with a purchaser payer, 4 hops", by: "pat", price: 199, pol: &eventsv1.DistributorPolicy{Mode: modeNone, Payer: purchaser}, chain: hops,
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		{name: "none with a holder payer, 1 hop", by: "pat", price: 100, pol: &eventsv1.DistributorPolicy{Mode: modeNone, Payer: holder}, chain: hops[:1],
			want: []post{pay("ann", 33), pay("bob", 33), pay("cat", 34)}, charged: 100},

		{name: "fixed × holder, 0 hops", by: "pat", price: 199, pol: fixed(holder, 10, 5),
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		// 1.89 three ways: 62.999937, 62.999937, 63.000126 → 63, 63, 63.
		{name: "fixed × holder, 1 hop", by: "pat", price: 199, pol: fixed(holder, 10, 5), chain: hops[:1],
			want: []post{pay("ann", 63), pay("bob", 63), pay("cat", 63), fee("d1", 10)}, charged: 199},
		// 1.84 three ways: 61.333272, 61.333272, 61.333456 → 61, 61, 62; hop 3 is past the list.
		{name: "fixed × holder, 3 hops", by: "pat", price: 199, pol: fixed(holder, 10, 5), chain: hops[:3],
			want: []post{pay("ann", 61), pay("bob", 61), pay("cat", 62), fee("d1", 10), fee("d2", 5)}, charged: 199},
		{name: "fixed × holder, fees are the whole price", by: "pat", price: 199, pol: fixed(holder, 100, 99), chain: hops,
			want: []post{fee("d1", 100), fee("d2", 99)}, charged: 199},
		{name: "fixed × purchaser, 0 hops", by: "pat", price: 199, pol: fixed(purchaser, 25, 10, 5),
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		{name: "fixed × purchaser, 1 hop", by: "pat", price: 199, pol: fixed(purchaser, 25, 10, 5), chain: hops[:1],
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 25)}, charged: 224},
		{name: "fixed × purchaser, 4 hops", by: "pat", price: 199, pol: fixed(purchaser, 25, 10, 5), chain: hops,
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 25), fee("d2", 10), fee("d3", 5)}, charged: 239},

		{name: "percent × holder, 0 hops", by: "pat", price: 199, pol: percent(holder, 100_000, 50_000, 25_000),
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		// 10% of 1.99 against 90%: 19.9, 179.1 → 20; 1.79 three ways: 59.666607, 59.666607, 59.666786 → 60, 59, 60.
		{name: "percent × holder, 1 hop", by: "pat", price: 199, pol: percent(holder, 100_000, 50_000, 25_000), chain: hops[:1],
			want: []post{pay("ann", 60), pay("bob", 59), pay("cat", 60), fee("d1", 20)}, charged: 199},
		{name: "percent × holder, 4 hops", by: "pat", price: 199, pol: percent(holder, 100_000, 50_000, 25_000), chain: hops,
			want: []post{pay("ann", 55), pay("bob", 54), pay("cat", 55), fee("d1", 20), fee("d2", 10), fee("d3", 5)}, charged: 199},
		// 100% over three hops: 33.3333, 33.3333, 33.3334 → 33, 33, 34; the payees get nothing.
		{name: "percent × holder, fees are the whole price", by: "pat", price: 100, pol: percent(holder, 333_333, 333_333, 333_334), chain: hops[:3],
			want: []post{fee("d1", 33), fee("d2", 33), fee("d3", 34)}, charged: 100},
		{name: "percent × purchaser, 0 hops", by: "pat", price: 199, pol: percent(purchaser, 600_000, 500_000, 300_000),
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67)}, charged: 199},
		// 60% of 1.99 against 40%: 119.4, 79.6 → 119 (the rest takes the unit).
		{name: "percent × purchaser, 1 hop", by: "pat", price: 199, pol: percent(purchaser, 600_000, 500_000, 300_000), chain: hops[:1],
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 119)}, charged: 318},
		{name: "percent × purchaser, 4 hops, over 100%", by: "pat", price: 199, pol: percent(purchaser, 600_000, 500_000, 300_000), chain: hops,
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 119), fee("d2", 100), fee("d3", 60)}, charged: 478},
		// 50% of 1.99 against 50%: 99.5 each, a tie the distributor wins (its id sorts before the rest's).
		{name: "percent × purchaser, a tie with the rest", by: "pat", price: 199, pol: percent(purchaser, 500_000), chain: hops[:1],
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 100)}, charged: 299},
		// 33.3333% twice of 1.00, rest 33.3334%: 33.3333, 33.3333, 33.3334 → 33, 33 (the rest takes the unit).
		{name: "percent × purchaser, 3 hops, 2 listed", by: "pat", price: 100, pol: percent(purchaser, 333_333, 333_333), chain: hops[:3],
			want: []post{pay("ann", 33), pay("bob", 33), pay("cat", 34), fee("d1", 33), fee("d2", 33)}, charged: 166},

		{name: "purchaser is a payee", by: "bob", price: 199, pol: fixed(holder, 10), chain: hops[:1],
			want: []post{pay("ann", 63), pay("cat", 63), fee("d1", 10)}, charged: 199, kept: 63},
		{name: "purchaser in the chain", by: "pat", price: 199, pol: percent(purchaser, 600_000, 500_000, 300_000), chain: []string{"d1", "pat", "d3", "d4"},
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("d1", 119), fee("d3", 60)}, charged: 478, kept: 100},
		{name: "a distributor is a payee", by: "pat", price: 199, pol: fixed(purchaser, 25), chain: []string{"cat"},
			want: []post{pay("ann", 66), pay("bob", 66), pay("cat", 67), fee("cat", 25)}, charged: 224},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := purchase(tc.by, tc.price)
			s := song(tc.price, tc.pol)
			out, f, err := domain.Plan(p, s, tc.chain)
			if err != nil || f != nil {
				t.Fatalf("Plan: failure %+v, error %v", f, err)
			}
			var got []post
			for _, ps := range out.Postings {
				if ps.Debit != w(tc.by) || ps.Asset != "USD" {
					t.Fatalf("posting %v is not the purchaser's USD", ps)
				}
				got = append(got, post{ps.Credit, ps.Amount, ps.Kind})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("postings\n got %v\nwant %v", got, tc.want)
			}
			if out.Charged != tc.charged || out.Kept != tc.kept {
				t.Fatalf("charged %d keeping %d, want %d keeping %d", out.Charged, out.Kept, tc.charged, tc.kept)
			}
			// The purchaser pays exactly what everyone else receives.
			var debits, credits int64
			net := map[string]int64{}
			for _, ps := range out.Postings {
				debits += ps.Amount
				credits += ps.Amount
				net[ps.Debit] -= ps.Amount
				net[ps.Credit] += ps.Amount
			}
			if -net[w(tc.by)] != tc.charged-tc.kept || debits != credits {
				t.Fatalf("the purchaser's balance moves %d, want −%d", net[w(tc.by)], tc.charged-tc.kept)
			}
			var sum int64
			for _, v := range net {
				sum += v
			}
			if sum != 0 {
				t.Fatalf("USD balance changes sum to %d", sum)
			}
			checkPayout(t, p, s, tc.chain, out)
			req := out.Request(domain.RequestedBy)
			if req.TransactionId != p.PurchaseID || req.RequestedBy != "referral" || req.Asset != "USD" ||
				req.Kind != purchaseK || req.Memo != "purchase "+p.PurchaseID+" of song "+songID || len(req.Postings) != len(tc.want) {
				t.Fatalf("ledger request %v", req)
			}
		})
	}
}

// The artist buying their own song, sole payee, no fees: nothing moves.
func TestPlanNothingToMove(t *testing.T) {
	s := song(199, nil)
	s.Splits = []*eventsv1.Split{{PayeeId: "ann", SharePpm: 1_000_000}}
	out, f, err := domain.Plan(purchase("ann", 199), s, hops)
	if err != nil || f != nil || len(out.Postings) != 0 || out.Kept != 199 || out.Charged != 199 {
		t.Fatalf("Plan: %+v %+v %v", out, f, err)
	}
	if pl := out.Planned(); pl.TransactionId != "" {
		t.Fatalf("a plan without postings names transaction %q", pl.TransactionId)
	}
}

func TestPlanRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     domain.Purchase
		s     *eventsv1.SongDescription
		chain []string
		// Either a failure reason or an error sentinel.
		reason eventsv1.PurchaseFailed_Reason
		err    error
	}{
		{name: "no price", p: purchase("pat", 199), s: song(0, nil), reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE},
		{name: "price changed", p: purchase("pat", 199), s: song(249, nil), reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE},
		{name: "price lowered", p: purchase("pat", 199), s: song(99, fixed(purchaser, 5)), chain: hops, reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE},
		{name: "requested in another asset", p: func() domain.Purchase { p := purchase("pat", 199); p.Asset = "FAN"; return p }(), s: song(199, nil),
			reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE},
		{name: "priced in another asset", p: purchase("pat", 199), s: func() *eventsv1.SongDescription { s := song(199, nil); s.Price.Asset = "FAN"; return s }(),
			reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE},

		{name: "no purchase id", p: func() domain.Purchase { p := purchase("pat", 199); p.PurchaseID = ""; return p }(), s: song(199, nil), err: domain.ErrInvalidPurchase},
		{name: "bad purchaser id", p: purchase("pat:x", 199), s: song(199, nil), err: domain.ErrInvalidPurchase},
		{name: "description of another song", p: purchase("pat", 199), s: func() *eventsv1.SongDescription { s := song(199, nil); s.SongId = "other"; return s }(),
			err: domain.ErrInvalidPurchase},
		{name: "bad paid distributor id", p: purchase("pat", 199), s: song(199, fixed(holder, 5)), chain: []string{"a b"}, err: domain.ErrInvalidPurchase},
		{name: "no description", p: purchase("pat", 199), err: domain.ErrInvalidSong},
		{name: "splits short of 100%", p: purchase("pat", 199), s: func() *eventsv1.SongDescription { s := song(199, nil); s.Splits = s.Splits[:2]; return s }(),
			err: domain.ErrInvalidSong},
		{name: "fees without a payer", p: purchase("pat", 199), s: song(199, fixed(0, 5)), err: domain.ErrInvalidSong},
		{name: "unknown mode", p: purchase("pat", 199), s: song(199, &eventsv1.DistributorPolicy{Mode: 9, Payer: holder}), err: domain.ErrInvalidSong},
		{name: "negative fixed fee", p: purchase("pat", 199), s: song(199, fixed(purchaser, 5, -1)), chain: hops[:1], err: domain.ErrInvalidSong},
		{name: "holder's fees above the price", p: purchase("pat", 199), s: song(199, fixed(holder, 150, 50)), chain: hops, err: domain.ErrInvalidSong},
		{name: "holder's percentages above 100%", p: purchase("pat", 199), s: song(199, percent(holder, 700_000, 400_000)), chain: hops, err: domain.ErrInvalidSong},
		{name: "purchaser's fees overflow", p: purchase("pat", 199), s: song(199, fixed(purchaser, 1<<62, 1<<62)), chain: hops, err: domain.ErrInvalidSong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, f, err := domain.Plan(tc.p, tc.s, tc.chain)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || apperr.KindOf(err) != apperr.InvalidInput || f != nil || out.Postings != nil {
					t.Fatalf("got %+v, failure %+v, error %v; want %v (invalid_input)", out, f, err, tc.err)
				}
				return
			}
			if err != nil || f == nil || f.Reason != tc.reason || f.Detail == "" || out.Postings != nil {
				t.Fatalf("got %+v, failure %+v, error %v; want %v", out, f, err, tc.reason)
			}
		})
	}
}

// Random policies, splits and chains: the invariants of every payout.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pool := []string{"pat", "ann", "bob", "cat", "dan", "eve", "fay", "gus"}
	var planned, percents int
	for i := range 20_000 {
		price := 1 + rng.Int64N(10_000)
		if i%10 == 0 {
			price = 1 + rng.Int64N(5)
		}
		// Splits: 1–5 distinct payees (sometimes the purchaser) with shares summing to 1e6.
		perm := rng.Perm(len(pool))
		n := 1 + rng.IntN(5)
		var splits []*eventsv1.Split
		left := uint32(domain.PPM)
		for j := range n {
			share := left
			if j < n-1 {
				share = 1 + rng.Uint32N(left-uint32(n-1-j))
			}
			left -= share
			splits = append(splits, &eventsv1.Split{PayeeId: pool[perm[j]], SharePpm: share})
		}
		// Chain: 0–6 distinct hops, the purchaser among them now and then.
		var chain []string
		for j := range rng.IntN(7) {
			chain = append(chain, fmt.Sprint("d", j))
		}
		if len(chain) > 0 && rng.IntN(10) == 0 {
			chain[rng.IntN(len(chain))] = "pat"
		}
		pol := randomPolicy(rng, price)
		if pol.GetMode() == modePercent {
			percents++
		}
		p := purchase("pat", price)
		s := &eventsv1.SongDescription{SongId: songID, Splits: splits, Price: &eventsv1.Money{Asset: "USD", Units: price}, DistributorPolicy: pol}
		out, f, err := domain.Plan(p, s, chain)
		if err != nil || f != nil {
			t.Fatalf("case %d: price %d, policy %v, chain %v: failure %+v, error %v", i, price, pol, chain, f, err)
		}
		checkPayout(t, p, s, chain, out)
		planned++
	}
	if planned == 0 || percents < planned/5 {
		t.Fatalf("only %d cases planned, %d percent", planned, percents)
	}
}

// randomPolicy draws a policy the songs service accepts: a holder's fees
// fit in the price.
func randomPolicy(rng *rand.Rand, price int64) *eventsv1.DistributorPolicy {
	payer := holder
	if rng.IntN(2) == 0 {
		payer = purchaser
	}
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return &eventsv1.DistributorPolicy{Mode: modeNone, Payer: payer}
	case 2:
		var units []int64
		budget := price
		for range 1 + rng.IntN(5) {
			u := 1 + rng.Int64N(max(1, price/2))
			if payer == holder {
				if budget < 1 {
					break
				}
				u = 1 + rng.Int64N(budget)
				budget -= u
			}
			units = append(units, u)
		}
		return fixed(payer, units...)
	}
	var ppm []uint32
	budget := uint32(domain.PPM)
	for range 1 + rng.IntN(5) {
		v := 1 + rng.Uint32N(domain.PPM)
		if payer == holder {
			if budget < 1 {
				break
			}
			v = 1 + rng.Uint32N(budget)
			budget -= v
		}
		ppm = append(ppm, v)
	}
	return percent(payer, ppm...)
}

// checkPayout checks the invariants of a payout Plan made for p of s along
// chain: each fee follows the policy (a percent fee within one unit of its
// exact share), the totals add up (parts sum exactly), a holder-paid
// purchase costs exactly the price and a purchaser-paid one pays the payees
// exactly the price, and the postings are the purchaser's, > 0, never to
// the purchaser, in order, and move exactly Charged − Kept.
func checkPayout(t *testing.T, p domain.Purchase, s *eventsv1.SongDescription, chain []string, out domain.Payout) {
	t.Helper()
	price := s.Price.Units
	pol := s.DistributorPolicy
	if out.Price != price || len(out.Fees) != len(chain) || !slices.Equal(out.Distributors, chain) {
		t.Fatalf("payout %+v does not match price %d, chain %v", out, price, chain)
	}
	var feeTotal int64
	for i, f := range out.Fees {
		feeTotal += f
		switch pol.GetMode() {
		case modeFixed:
			want := int64(0)
			if i < len(pol.FixedUnits) {
				want = pol.FixedUnits[i]
			}
			if f != want {
				t.Fatalf("fixed fee of hop %d is %d, want %d (policy %v)", i, f, want, pol)
			}
		case modePercent:
			var ppm int64
			if i < len(pol.PercentPpm) {
				ppm = int64(pol.PercentPpm[i])
			}
			// |f × 1e6 − price × ppm| < 1e6, in exact arithmetic.
			diff := new(big.Int).Sub(new(big.Int).Mul(big.NewInt(f), big.NewInt(domain.PPM)), new(big.Int).Mul(big.NewInt(price), big.NewInt(ppm)))
			if diff.CmpAbs(big.NewInt(domain.PPM)) >= 0 {
				t.Fatalf("percent fee of hop %d is %d, more than a unit from %d × %d ppm (policy %v)", i, f, price, ppm, pol)
			}
		default:
			if f != 0 {
				t.Fatalf("hop %d earns %d without a fee policy", i, f)
			}
		}
	}
	if feeTotal != out.FeeTotal || out.Charged != out.PayeeTotal+out.FeeTotal {
		t.Fatalf("fees %v total %d, payout says %d; charged %d ≠ %d + %d", out.Fees, feeTotal, out.FeeTotal, out.Charged, out.PayeeTotal, out.FeeTotal)
	}
	if pol.GetPayer() == holder && pol.GetMode() != modeNone && pol.GetMode() != 0 {
		if out.Charged != price {
			t.Fatalf("holder pays the fees, yet the purchaser is charged %d for a price of %d", out.Charged, price)
		}
	} else if out.PayeeTotal != price {
		t.Fatalf("the payees share %d of a price of %d", out.PayeeTotal, price)
	}
	me := w(p.PurchaserID)
	var moved, toPayees, toHops, keptPayee int64
	pays, err := songview.Payments(s.Splits, "USD", out.PayeeTotal)
	if err != nil {
		t.Fatal(err)
	}
	var wantPosts []post
	for _, py := range pays {
		if py.Account == me {
			keptPayee += py.Units
		} else {
			wantPosts = append(wantPosts, post{py.Account, py.Units, purchaseK})
		}
	}
	var keptFees int64
	for i, d := range chain {
		switch {
		case out.Fees[i] == 0:
		case w(d) == me:
			keptFees += out.Fees[i]
		default:
			wantPosts = append(wantPosts, post{w(d), out.Fees[i], feeK})
		}
	}
	var got []post
	for _, ps := range out.Postings {
		if ps.Debit != me || ps.Credit == me || ps.Amount <= 0 || ps.Asset != "USD" {
			t.Fatalf("bad posting %v", ps)
		}
		moved += ps.Amount
		switch ps.Kind {
		case purchaseK:
			toPayees += ps.Amount
		case feeK:
			toHops += ps.Amount
		default:
			t.Fatalf("posting %v of kind %v", ps, ps.Kind)
		}
		got = append(got, post{ps.Credit, ps.Amount, ps.Kind})
	}
	if !slices.Equal(got, wantPosts) {
		t.Fatalf("postings\n got %v\nwant %v", got, wantPosts)
	}
	if toPayees+keptPayee != out.PayeeTotal || toHops+keptFees != out.FeeTotal || out.Kept != keptPayee+keptFees || moved != out.Charged-out.Kept {
		t.Fatalf("payees get %d (+%d kept) of %d, hops %d (+%d kept) of %d, moved %d of %d − %d",
			toPayees, keptPayee, out.PayeeTotal, toHops, keptFees, out.FeeTotal, moved, out.Charged, out.Kept)
	}
}

// The aggregate joins the request and the chain in either order, plans
// once, and records the ledger's decision once.
func TestReferralJoinsInEitherOrder(t *testing.T) {
	s := song(199, percent(purchaser, 100_000))
	songs := func(id string) *eventsv1.SongDescription {
		if id == songID {
			return s
		}
		return nil
	}
	req := &eventsv1.PurchaseRequested{PurchaseId: "p1", SongId: songID, PurchaserId: "pat", Price: &eventsv1.Money{Asset: "USD", Units: 199}}
	chain := &eventsv1.DistributorChainResolved{PurchaseId: "p1", SongId: songID, PurchaserId: "pat", DistributorIds: []string{"d1", "d2"}}
	wantPlan := []string{"ReferralPayoutPlanned", "LedgerTransactionRequested"}
	for _, order := range []string{"request first", "chain first"} {
		t.Run(order, func(t *testing.T) {
			r := domain.NewReferral("p1")
			first, second := func() error { return r.NotePurchase(req, songs) }, func() error { return r.NoteChain(chain, songs) }
			noted := "ReferralPurchaseNoted"
			if order == "chain first" {
				first, second, noted = second, first, "ReferralChainNoted"
			}
			mustRecord(t, r, first, noted)
			mustRecord(t, r, first) // the same half again
			mustRecord(t, r, second, wantPlan...)
			mustRecord(t, r, second)
			mustRecord(t, r, first)
			if r.Status != domain.Planned || r.TransactionID != "p1" {
				t.Fatalf("status %v, transaction %q", r.Status, r.TransactionID)
			}
			decision := func(txID string, committed bool) *eventsv1.BookBatchAppended_Decision {
				d := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{TransactionId: txID, RequestedBy: "referral"}}
				if committed {
					d.Outcome = &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: txID, Sequence: 42}}
				} else {
					d.Outcome = &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{TransactionId: txID}}
				}
				return d
			}
			mustRecord(t, r, func() error { return r.Decide(decision("p2", true)) })
			evs := mustRecord(t, r, func() error { return r.Decide(decision("p1", true)) }, "ReferralPayoutCompleted")
			if c := evs[0].(*eventsv1.ReferralPayoutCompleted); c.Sequence != 42 || c.TransactionId != "p1" || c.PurchaserId != "pat" || c.SongId != songID {
				t.Fatalf("completed %v", c)
			}
			mustRecord(t, r, func() error { return r.Decide(decision("p1", false)) }) // settled: a later decision is ignored
			if r.Status != domain.Completed {
				t.Fatalf("status %v", r.Status)
			}
		})
	}
}

func TestReferralOutcomes(t *testing.T) {
	songs := func(string) *eventsv1.SongDescription { return song(199, nil) }
	req := &eventsv1.PurchaseRequested{PurchaseId: "p1", SongId: songID, PurchaserId: "pat", Price: &eventsv1.Money{Asset: "USD", Units: 199}}
	failure := func(evs []proto.Message) *eventsv1.ReferralPayoutFailed {
		return evs[len(evs)-1].(*eventsv1.ReferralPayoutFailed)
	}

	t.Run("rejected chain first", func(t *testing.T) {
		r := domain.NewReferral("p1")
		rej := &eventsv1.DistributorChainRejected{PurchaseId: "p1", Reason: eventsv1.DistributorChainRejected_REASON_BAD_SIGNATURE, Detail: "hop 2 does not verify"}
		mustRecord(t, r, func() error { return r.NoteRejectedChain(rej) }, "ReferralChainNoted")
		f := failure(mustRecord(t, r, func() error { return r.NotePurchase(req, songs) }, "ReferralPayoutFailed"))
		if f.Reason != eventsv1.PurchaseFailed_REASON_INVALID_REFERRAL || f.Detail != "hop 2 does not verify" || f.PurchaserId != "pat" {
			t.Fatalf("failed %v", f)
		}
		mustRecord(t, r, func() error { return r.NotePurchase(req, songs) })
	})
	t.Run("price changed", func(t *testing.T) {
		r := domain.NewReferral("p1")
		mustRecord(t, r, func() error { return r.NotePurchase(req, songs) }, "ReferralPurchaseNoted")
		up := func(string) *eventsv1.SongDescription { return song(249, nil) }
		f := failure(mustRecord(t, r, func() error { return r.NoteChain(&eventsv1.DistributorChainResolved{PurchaseId: "p1"}, up) }, "ReferralPayoutFailed"))
		if f.Reason != eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE {
			t.Fatalf("failed %v", f)
		}
	})
	t.Run("invalid song", func(t *testing.T) {
		r := domain.NewReferral("p1")
		bad := func(string) *eventsv1.SongDescription { return song(199, fixed(0, 5)) }
		mustRecord(t, r, func() error { return r.NoteChain(&eventsv1.DistributorChainResolved{PurchaseId: "p1"}, bad) }, "ReferralChainNoted")
		if f := failure(mustRecord(t, r, func() error { return r.NotePurchase(req, bad) }, "ReferralPayoutFailed")); f.Reason != eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE {
			t.Fatalf("failed %v", f)
		}
	})
	t.Run("song not known yet", func(t *testing.T) {
		r := domain.NewReferral("p1")
		mustRecord(t, r, func() error { return r.NotePurchase(req, songs) }, "ReferralPurchaseNoted")
		none := func(string) *eventsv1.SongDescription { return nil }
		err := r.NoteChain(&eventsv1.DistributorChainResolved{PurchaseId: "p1"}, none)
		if !errors.Is(err, domain.ErrSongUnknown) || apperr.KindOf(err) != apperr.NotFound || len(r.Flush()) != 0 {
			t.Fatalf("without the song: %v", err)
		}
	})
	t.Run("insufficient funds and other rejections", func(t *testing.T) {
		for reason, want := range map[eventsv1.LedgerTransactionRejected_Reason]eventsv1.PurchaseFailed_Reason{
			eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS: eventsv1.PurchaseFailed_REASON_INSUFFICIENT_FUNDS,
			eventsv1.LedgerTransactionRejected_REASON_UNKNOWN_ACCOUNT:    eventsv1.PurchaseFailed_REASON_REJECTED,
		} {
			r := domain.NewReferral("p1")
			mustRecord(t, r, func() error { return r.NotePurchase(req, songs) }, "ReferralPurchaseNoted")
			mustRecord(t, r, func() error { return r.NoteChain(&eventsv1.DistributorChainResolved{PurchaseId: "p1"}, songs) },
				"ReferralPayoutPlanned", "LedgerTransactionRequested")
			d := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{TransactionId: "p1"},
				Outcome: &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{Reason: reason, Detail: "short"}}}
			f := failure(mustRecord(t, r, func() error { return r.Decide(d) }, "ReferralPayoutFailed"))
			if f.Reason != want || f.Detail != "ledger: "+reason.String()+" short" {
				t.Fatalf("%v: failed %v", reason, f)
			}
		}
	})
	t.Run("nothing to move", func(t *testing.T) {
		r := domain.NewReferral("p1")
		own := func(string) *eventsv1.SongDescription {
			s := song(199, nil)
			s.Splits = []*eventsv1.Split{{PayeeId: "pat", SharePpm: 1_000_000}}
			return s
		}
		mustRecord(t, r, func() error { return r.NotePurchase(req, own) }, "ReferralPurchaseNoted")
		mustRecord(t, r, func() error { return r.NoteChain(&eventsv1.DistributorChainResolved{PurchaseId: "p1"}, own) },
			"ReferralPayoutPlanned", "ReferralPayoutCompleted")
		if r.Status != domain.Completed {
			t.Fatalf("status %v", r.Status)
		}
	})
}

// history is what each aggregate of a test recorded.
var history = map[*domain.Referral][]proto.Message{}

// mustRecord runs fn and checks the events it recorded, by message name.
// Everything r recorded so far, replayed onto a new aggregate, must give
// the same state: the events alone carry it.
func mustRecord(t *testing.T, r *domain.Referral, fn func() error, want ...string) []proto.Message {
	t.Helper()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	evs := r.Flush()
	history[r] = append(history[r], evs...)
	replayed := domain.NewReferral(r.ID)
	for _, e := range history[r] {
		if err := replayed.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if replayed.Status != r.Status || replayed.TransactionID != r.TransactionID || !proto.Equal(replayed.Chain, r.Chain) ||
		(replayed.Purchase == nil) != (r.Purchase == nil) || (r.Purchase != nil && *replayed.Purchase != *r.Purchase) {
		t.Fatalf("replayed %+v, live %+v", replayed, r)
	}
	var got []string
	for _, e := range evs {
		got = append(got, string(e.ProtoReflect().Descriptor().Name()))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	return evs
}
