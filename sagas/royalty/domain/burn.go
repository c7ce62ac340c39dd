package domain

import "math/big"

// Burn returns b(S), the FAN (minor units) a listener burns for a standard
// tier play at supply S (minor units, before the play):
//
//	b(S) = BurnMax × x^BurnExponent,  x = clamp((S − BurnFloor) / (BurnCeiling − BurnFloor), 0, 1)
//
// rounded half-even to whole minor units (8 decimals of FAN). The arithmetic
// is exact (math/big rationals), so b is 0 at or below the floor, BurnMax at
// or above the ceiling, and non-decreasing in S; with the defaults b(1.5e9
// FAN) = 125 FAN and b(1.9e9 FAN) = 729 FAN. r should be valid
// ([Rules.Validate]); Burn never panics, whatever the input.
func Burn(supplyUnits int64, r Rules) int64 {
	switch {
	case supplyUnits <= r.BurnFloor:
		return 0
	case supplyUnits >= r.BurnCeiling:
		return r.BurnMax
	}
	// BurnFloor < S < BurnCeiling, so the floor is below MaxInt64 and the
	// ceiling above MinInt64; the differences are taken exactly in big.Int.
	num := new(big.Int).Sub(big.NewInt(supplyUnits), big.NewInt(r.BurnFloor))
	den := new(big.Int).Sub(big.NewInt(r.BurnCeiling), big.NewInt(r.BurnFloor))
	x := new(big.Rat).SetFrac(num, den)
	b := new(big.Rat).SetInt64(r.BurnMax)
	for range r.BurnExponent {
		b.Mul(b, x)
	}
	return roundHalfEven(b)
}

// roundHalfEven rounds a non-negative rational below 2^63 to the nearest
// integer, ties to even.
func roundHalfEven(v *big.Rat) int64 {
	q, rem := new(big.Int).QuoRem(v.Num(), v.Denom(), new(big.Int))
	// Compare 2 × remainder with the denominator.
	switch rem.Lsh(rem, 1).Cmp(v.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}
