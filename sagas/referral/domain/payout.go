// Package domain holds the rules of the referral saga (DESIGN §6,
// Purchase): how one purchase of a song is paid along its distributor chain
// in one ledger transaction, and the per-purchase aggregate that joins the
// purchase request with the chains service's answer. Pure: no I/O, no clock.
//
// # The payout
//
// The purchaser pays from wallet:<purchaser>:USD. The song's payees share
// the payee total by the song's royalty splits (songview.Payments, largest
// remainder), and each paid distributor gets its fee, per the song's
// distributor policy:
//
//   - none (or no policy): no fees;
//   - fixed: hop i (0 = nearest the purchaser) gets fixed_units[i]; hops
//     beyond the list get nothing;
//   - percent: hop i gets percent_ppm[i] of the price, all fees computed
//     by one largest-remainder allocation (see [Plan]); hops beyond the
//     list get nothing.
//
// When the holder pays, the fees come out of the price (the purchaser pays
// the price, the payees share the price less the fees); when the purchaser
// pays, the fees come on top (the purchaser pays price + fees, the payees
// share the whole price). Either way it is one transaction: all or nothing.
package domain

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
)

// USD is the asset purchases are paid in.
const USD = "USD"

// PPM is a whole in parts per million (percent_ppm, split shares).
const PPM = 1_000_000

// restPayee names the share of a percent allocation that is not a
// distributor's. '~' sorts after every character an identity id may hold,
// so on equal remainders a distributor gets the unit before the rest does.
const restPayee = "~rest"

// Purchase is a purchase request as the saga knows it.
type Purchase struct {
	// PurchaseID is the purchase id, also the id of its ledger transaction.
	PurchaseID  string
	SongID      string
	PurchaserID string
	// Asset and Price are the price the purchaser agreed to pay (the song's
	// price at the time of the request), in minor units.
	Asset string
	Price int64
}

// Payout is how one purchase is paid: one ledger transaction.
type Payout struct {
	PurchaseID  string
	SongID      string
	PurchaserID string
	// Price is the song's price, USD minor units.
	Price int64
	// Distributors is the chain as resolved, nearest to the purchaser first;
	// Fees[i] is hop i's fee (0 for an unpaid hop).
	Distributors []string
	Fees         []int64
	// FeeTotal is Σ Fees. PayeeTotal is what the song's payees share by the
	// splits: the price, less FeeTotal when the holder pays the fees.
	FeeTotal   int64
	PayeeTotal int64
	// Charged is what the purchase costs the purchaser: PayeeTotal +
	// FeeTotal (exactly the price when the holder pays).
	Charged int64
	// Kept is the part of Charged that would go to the purchaser's own
	// wallet (an artist buying their own song, a purchaser in the chain):
	// the ledger refuses debit = credit, so it is not posted and the
	// postings move Charged − Kept.
	Kept int64
	// Postings in a fixed order: purchaser → payee (PURCHASE) in split
	// order, then purchaser → distributor (REFERRAL_FEE) nearest first.
	// Every amount is > 0 and no posting credits the purchaser. Empty when
	// there is nothing to move.
	Postings []*eventsv1.Posting
}

// Request returns the ledger request for the payout: transaction id =
// purchase id, asset USD, kind PURCHASE (each posting carries its own kind).
func (p Payout) Request(requestedBy string) *eventsv1.LedgerTransactionRequested {
	return &eventsv1.LedgerTransactionRequested{
		TransactionId: p.PurchaseID,
		Postings:      p.Postings,
		RequestedBy:   requestedBy,
		Memo:          fmt.Sprintf("purchase %s of song %s", p.PurchaseID, p.SongID),
		Kind:          eventsv1.PostingKind_POSTING_KIND_PURCHASE,
		Asset:         USD,
	}
}

// Planned returns the ReferralPayoutPlanned event of the payout. Its
// transaction id is empty when there is nothing to post (no ledger
// transaction is asked for).
func (p Payout) Planned() *eventsv1.ReferralPayoutPlanned {
	e := &eventsv1.ReferralPayoutPlanned{PurchaseId: p.PurchaseID, SongId: p.SongID, PurchaserId: p.PurchaserID,
		Price: &eventsv1.Money{Asset: USD, Units: p.Price}, DistributorIds: p.Distributors, Postings: p.Postings}
	if len(p.Postings) > 0 {
		e.TransactionId = p.PurchaseID
	}
	return e
}

// Failure says why a purchase is refused before the ledger is asked.
type Failure struct {
	Reason eventsv1.PurchaseFailed_Reason
	Detail string
}

// Plan computes how purchase p of song (its current description) is paid
// along chain (distributor identity ids, nearest to the purchaser first,
// as the chains service resolved it), or why the song cannot be sold.
//
// Failure (REASON_NOT_FOR_SALE): the song has no price, is not priced in
// USD, or its price is not the one the purchaser asked to pay (asset and
// units).
//
// Fees, by the song's distributor_policy: MODE_NONE, unset or no policy:
// none. MODE_FIXED: hop i gets fixed_units[i] when i < len(fixed_units).
// MODE_PERCENT: with k = min(len(chain), len(percent_ppm)), S the sum of
// the first k ppm and n = max(1, ⌈S/1e6⌉), one money.Allocate of n × price
// over the weights [ppm_0 … ppm_k−1, n×1e6 − S] gives hop i its part: the
// largest-remainder rounding of price × ppm_i / 1e6, the fees of several
// hops summing consistently (for S ≤ 1e6 this is exactly the largest
// remainder split of the price). A payer of PAYER_HOLDER takes the fees out
// of the price, PAYER_PURCHASER adds them on top (see [Payout]).
//
// Errors (invalid_input): [ErrInvalidPurchase] for an empty or long
// purchase id (the ledger bounds transaction ids to 256 bytes), an empty
// song or purchaser id, a description of another song, or a purchaser or
// paid distributor whose wallet id the ledger's scheme refuses;
// [ErrInvalidSong] for a nil description, splits songview.Payments refuses,
// an unknown policy mode, fees without a payer, a negative fixed amount,
// holder-paid fees above the price, or amounts that overflow int64.
func Plan(p Purchase, song *eventsv1.SongDescription, chain []string) (Payout, *Failure, error) {
	if p.PurchaseID == "" || len(p.PurchaseID) > accounts.MaxIDLen {
		return Payout{}, nil, invalidPurchase("purchase id must be 1..%d bytes, got %d", accounts.MaxIDLen, len(p.PurchaseID))
	}
	if p.SongID == "" || p.PurchaserID == "" {
		return Payout{}, nil, invalidPurchase("purchase %s: song id and purchaser id are required", p.PurchaseID)
	}
	if song == nil {
		return Payout{}, nil, invalidSong("purchase %s: no description of song %s", p.PurchaseID, p.SongID)
	}
	if song.SongId != p.SongID {
		return Payout{}, nil, invalidPurchase("purchase %s is of song %s, not %s", p.PurchaseID, p.SongID, song.SongId)
	}
	purchaser := accounts.WalletID(p.PurchaserID, USD)
	if _, err := accounts.ParseAccountID(purchaser); err != nil {
		return Payout{}, nil, invalidPurchase("purchase %s: purchaser: %v", p.PurchaseID, err)
	}
	if f := forSale(p, song.Price); f != nil {
		return Payout{}, f, nil
	}
	price := song.Price.Units
	out := Payout{PurchaseID: p.PurchaseID, SongID: p.SongID, PurchaserID: p.PurchaserID, Price: price, Distributors: chain}
	fees, err := distributorFees(price, song.DistributorPolicy, chain)
	if err != nil {
		return Payout{}, nil, invalidSong("purchase %s: song %s: %v", p.PurchaseID, p.SongID, err)
	}
	out.Fees = fees
	for _, f := range fees {
		var ok bool
		if out.FeeTotal, ok = money.AddUnits(out.FeeTotal, f); !ok {
			return Payout{}, nil, invalidSong("purchase %s: song %s: the fees overflow", p.PurchaseID, p.SongID)
		}
	}
	if song.DistributorPolicy.GetPayer() == eventsv1.DistributorPolicy_PAYER_HOLDER {
		if out.FeeTotal > price {
			return Payout{}, nil, invalidSong("purchase %s: song %s: the holder's fees %s exceed the price %s",
				p.PurchaseID, p.SongID, usd(out.FeeTotal), usd(price))
		}
		out.PayeeTotal = price - out.FeeTotal
	} else {
		out.PayeeTotal = price // also without fees, whoever is named the payer
	}
	var ok bool
	if out.Charged, ok = money.AddUnits(out.PayeeTotal, out.FeeTotal); !ok {
		return Payout{}, nil, invalidSong("purchase %s: song %s: the price plus fees overflow", p.PurchaseID, p.SongID)
	}

	pays, err := songview.Payments(song.Splits, USD, out.PayeeTotal)
	if err != nil {
		return Payout{}, nil, invalidSong("purchase %s: song %s: %v", p.PurchaseID, p.SongID, err)
	}
	post := func(credit string, units int64, kind eventsv1.PostingKind) {
		switch {
		case units == 0:
		case credit == purchaser:
			out.Kept += units // ≤ Charged: no overflow
		default:
			out.Postings = append(out.Postings, &eventsv1.Posting{Debit: purchaser, Credit: credit, Asset: USD, Amount: units, Kind: kind})
		}
	}
	for _, pay := range pays {
		post(pay.Account, pay.Units, eventsv1.PostingKind_POSTING_KIND_PURCHASE)
	}
	for i, d := range chain {
		if fees[i] == 0 {
			continue // an unpaid hop's id is never posted, so it need not be valid
		}
		w := accounts.WalletID(d, USD)
		if _, err := accounts.ParseAccountID(w); err != nil {
			return Payout{}, nil, invalidPurchase("purchase %s: distributor %d: %v", p.PurchaseID, i+1, err)
		}
		post(w, fees[i], eventsv1.PostingKind_POSTING_KIND_REFERRAL_FEE)
	}
	return out, nil, nil
}

// forSale refuses a song without a USD price, or whose price is not the
// requested one.
func forSale(p Purchase, price *eventsv1.Money) *Failure {
	switch {
	case price == nil || price.Units <= 0:
		return &Failure{Reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE, Detail: fmt.Sprintf("song %s has no price", p.SongID)}
	case price.Asset != USD:
		return &Failure{Reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE,
			Detail: fmt.Sprintf("song %s is priced in %q; purchases are paid in %s", p.SongID, price.Asset, USD)}
	case p.Asset != price.Asset || p.Price != price.Units:
		return &Failure{Reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE,
			Detail: fmt.Sprintf("the price of song %s changed: requested %s, the song costs %s", p.SongID, amount(p.Asset, p.Price), usd(price.Units))}
	}
	return nil
}

// distributorFees returns one fee per hop of chain under policy pol.
func distributorFees(price int64, pol *eventsv1.DistributorPolicy, chain []string) ([]int64, error) {
	fees := make([]int64, len(chain))
	mode := pol.GetMode()
	if mode == eventsv1.DistributorPolicy_MODE_UNSPECIFIED || mode == eventsv1.DistributorPolicy_MODE_NONE {
		return fees, nil
	}
	if p := pol.GetPayer(); p != eventsv1.DistributorPolicy_PAYER_HOLDER && p != eventsv1.DistributorPolicy_PAYER_PURCHASER {
		return nil, fmt.Errorf("distributor policy %v names no payer", mode)
	}
	switch mode {
	case eventsv1.DistributorPolicy_MODE_FIXED:
		for i, u := range pol.FixedUnits {
			if u < 0 {
				return nil, fmt.Errorf("distributor policy: hop %d amount %d is negative", i+1, u)
			}
			if i < len(fees) {
				fees[i] = u
			}
		}
		return fees, nil
	case eventsv1.DistributorPolicy_MODE_PERCENT:
		return percentFees(price, pol.PercentPpm, chain, fees)
	}
	return nil, fmt.Errorf("unknown distributor policy mode %v", mode)
}

// percentFees fills fees with the percent policy's parts (see Plan).
func percentFees(price int64, ppm []uint32, chain []string, fees []int64) ([]int64, error) {
	k := min(len(chain), len(ppm))
	var sum uint64 // k ≤ len(ppm) < 2^32 ppm of < 2^32 each: no overflow
	for _, v := range ppm[:k] {
		sum += uint64(v)
	}
	if sum == 0 {
		return fees, nil
	}
	n := max(1, (sum+PPM-1)/PPM)
	hi, total := bits.Mul64(n, uint64(price))
	if hi != 0 || total > math.MaxInt64 {
		return nil, fmt.Errorf("%d × the price %s overflows", n, usd(price))
	}
	shares := make([]money.Share, k+1)
	for i := range k {
		shares[i] = money.Share{Payee: chain[i], Weight: uint64(ppm[i])}
	}
	shares[k] = money.Share{Payee: restPayee, Weight: n*PPM - sum}
	parts, err := money.Allocate(int64(total), shares)
	if err != nil {
		return nil, err
	}
	copy(fees, parts[:k])
	return fees, nil
}

func usd(units int64) string { return money.FormatUnits(units, 2) + " " + USD }

// amount formats a requested amount, whose asset may be anything.
func amount(asset string, units int64) string {
	if asset == USD {
		return usd(units)
	}
	return fmt.Sprintf("%d minor units of %q", units, asset)
}

// Sentinels; errors returned by this package wrap exactly one of them
// (apperr.Of, with its kind).
var (
	// ErrInvalidPurchase: a purchase or chain that cannot be paid as given
	// (bad ids, a description of another song). invalid_input.
	ErrInvalidPurchase = errors.New("referral: invalid purchase")
	// ErrInvalidSong: a song whose description cannot be paid by (splits,
	// distributor policy, overflowing amounts). invalid_input.
	ErrInvalidSong = errors.New("referral: invalid song")
	// ErrSongUnknown: planning needs a song's description and the lookup
	// has none yet; the caller waits for the song and tries again.
	// not_found.
	ErrSongUnknown = errors.New("referral: song not known")
)

func invalidPurchase(format string, args ...any) error {
	return apperr.Of(apperr.InvalidInput, ErrInvalidPurchase, format, args...)
}

func invalidSong(format string, args ...any) error {
	return apperr.Of(apperr.InvalidInput, ErrInvalidSong, format, args...)
}
