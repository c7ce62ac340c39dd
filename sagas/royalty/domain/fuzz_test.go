package domain_test

import (
	"math"
	"testing"

	"github.com/fanfare/fanfare/sagas/royalty/domain"
)

// FuzzBurn: for valid rules, Burn never panics, stays in [0, max], agrees
// with the integer reference, and is non-decreasing in the supply.
func FuzzBurn(f *testing.F) {
	f.Add(int64(1_500_000_000*fan), int64(1), int64(0), int64(0), int64(0), uint32(3))
	f.Add(int64(0), int64(math.MaxInt64), int64(1_000_000_000*fan), int64(2_000_000_000*fan), int64(1000*fan), uint32(3))
	f.Add(int64(math.MaxInt64-1), int64(1), int64(math.MaxInt64-2), int64(math.MaxInt64), int64(math.MaxInt64), uint32(1))
	f.Fuzz(func(t *testing.T, s, ds, floor, ceiling, max int64, exp uint32) {
		r := domain.DefaultRules()
		if floor != 0 || ceiling != 0 {
			r.BurnFloor, r.BurnCeiling = floor, ceiling
		}
		if max != 0 {
			r.BurnMax = max
		}
		if exp != 0 {
			r.BurnExponent = exp
		}
		if r.Validate() != nil {
			// Invalid rules: Burn must still not panic.
			_ = domain.Burn(s, r)
			return
		}
		b := domain.Burn(s, r)
		if b < 0 || b > r.BurnMax {
			t.Fatalf("Burn(%d) = %d outside [0, %d]", s, b, r.BurnMax)
		}
		if r.BurnExponent <= 8 { // keep the reference cheap
			if ref := refBurn(s, r); b != ref {
				t.Fatalf("Burn(%d) = %d, reference %d (rules %+v)", s, b, ref, r)
			}
		}
		if ds < 0 {
			ds = -(ds + 1)
		}
		s2 := s + ds
		if s2 < s { // overflow
			s2 = math.MaxInt64
		}
		if b2 := domain.Burn(s2, r); b2 < b {
			t.Fatalf("Burn(%d) = %d < Burn(%d) = %d", s2, b2, s, b)
		}
	})
}
