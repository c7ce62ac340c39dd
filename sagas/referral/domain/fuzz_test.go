package domain_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/referral/domain"
)

// FuzzPlan: for any price, policy amounts and chain length Plan never
// panics; it refuses only a song without a price, fails only with its
// invalid_input sentinels, and every payout it makes keeps the invariants
// checkPayout checks (parts sum exactly, fees within a unit, the payer
// pays what the policy says, no zero or self postings).
func FuzzPlan(f *testing.F) {
	f.Add(int64(199), uint8(3), uint8(1), uint32(100_000), uint32(50_000), uint32(25_000), int64(10), int64(5), int64(0), uint8(4), uint8(0))
	f.Add(int64(199), uint8(3), uint8(2), uint32(600_000), uint32(500_000), uint32(300_000), int64(0), int64(0), int64(0), uint8(4), uint8(2))
	f.Add(int64(100), uint8(2), uint8(1), uint32(0), uint32(0), uint32(0), int64(60), int64(40), int64(1), uint8(3), uint8(1))
	f.Add(int64(math.MaxInt64), uint8(3), uint8(2), uint32(math.MaxUint32), uint32(math.MaxUint32), uint32(1), int64(0), int64(0), int64(0), uint8(16), uint8(0))
	f.Add(int64(math.MaxInt64), uint8(2), uint8(2), uint32(0), uint32(0), uint32(0), int64(math.MaxInt64), int64(1), int64(0), uint8(2), uint8(0))
	f.Add(int64(1), uint8(3), uint8(1), uint32(1), uint32(1), uint32(999_998), int64(0), int64(0), int64(0), uint8(3), uint8(3))
	f.Fuzz(func(t *testing.T, price int64, mode, payer uint8, p1, p2, p3 uint32, f1, f2, f3 int64, hops, self uint8) {
		pol := &eventsv1.DistributorPolicy{Mode: eventsv1.DistributorPolicy_Mode(mode % 5), Payer: eventsv1.DistributorPolicy_Payer(payer % 4)}
		switch pol.Mode {
		case modeFixed:
			pol.FixedUnits = []int64{f1, f2, f3}[:1+int(hops)%3]
		case modePercent:
			pol.PercentPpm = []uint32{p1, p2, p3}[:1+int(hops)%3]
		}
		chain := make([]string, int(hops)%20)
		for i := range chain {
			chain[i] = fmt.Sprint("d", i)
		}
		by := "pat"
		switch {
		case self%4 == 1 && len(chain) > 0:
			chain[int(self)%len(chain)] = by // the purchaser in its own chain
		case self%4 == 2:
			by = "bob" // a payee buys
		}
		p := purchase(by, price)
		s := song(price, pol)
		out, failure, err := domain.Plan(p, s, chain)
		switch {
		case err != nil:
			if !errors.Is(err, domain.ErrInvalidSong) || apperr.KindOf(err) != apperr.InvalidInput || failure != nil {
				t.Fatalf("price %d, policy %v, chain %v: error %v, failure %v", price, pol, chain, err, failure)
			}
		case failure != nil:
			if price > 0 || failure.Reason != eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE {
				t.Fatalf("price %d refused: %+v", price, failure)
			}
		default:
			if price <= 0 {
				t.Fatalf("a song without a price was sold: %+v", out)
			}
			checkPayout(t, p, s, chain, out)
		}
	})
}
