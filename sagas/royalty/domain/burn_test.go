package domain_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/fanfare/fanfare/sagas/royalty/domain"
)

const fan = domain.UnitsPerFAN

// refBurn is an independent reference for Burn: integer arithmetic only.
// With d = S − floor and w = ceiling − floor, b = max × d^e / w^e; the
// quotient is rounded half-even from t = ⌊2n/d⌋ (t even: below half; t odd
// and inexact: above half; t odd and exact: a tie, to the even neighbour).
func refBurn(s int64, r domain.Rules) int64 {
	if s <= r.BurnFloor {
		return 0
	}
	if s >= r.BurnCeiling {
		return r.BurnMax
	}
	d := new(big.Int).Sub(big.NewInt(s), big.NewInt(r.BurnFloor))
	w := new(big.Int).Sub(big.NewInt(r.BurnCeiling), big.NewInt(r.BurnFloor))
	e := big.NewInt(int64(r.BurnExponent))
	n := new(big.Int).Mul(big.NewInt(r.BurnMax), new(big.Int).Exp(d, e, nil))
	den := new(big.Int).Exp(w, e, nil)
	twice := new(big.Int).Lsh(n, 1)
	t, m := new(big.Int).DivMod(twice, den, new(big.Int))
	half := new(big.Int).Rsh(t, 1)
	if t.Bit(0) == 0 {
		return half.Int64()
	}
	if m.Sign() != 0 || half.Bit(0) == 1 {
		return half.Int64() + 1
	}
	return half.Int64()
}

func TestBurnDesignValues(t *testing.T) {
	r := domain.DefaultRules()
	for _, c := range []struct {
		name   string
		supply int64
		want   int64
	}{
		{"empty", 0, 0},
		{"negative", -5, 0},
		{"below floor", 999_999_999 * fan, 0},
		{"at floor", 1_000_000_000 * fan, 0},
		{"one unit above floor", 1_000_000_000*fan + 1, 0},
		{"1.1e9", 1_100_000_000 * fan, 1 * fan},
		{"1.25e9", 1_250_000_000 * fan, 15*fan + 62_500_000},
		{"1.5e9", 1_500_000_000 * fan, 125 * fan},
		{"1.9e9", 1_900_000_000 * fan, 729 * fan},
		{"one unit below ceiling", 2_000_000_000*fan - 1, 1000 * fan},     // 1000 FAN − 3e-14 units
		{"10,000 FAN below ceiling", 1_999_990_000 * fan, 99_997_000_030}, // …029.9999 rounds up
		{"at ceiling", 2_000_000_000 * fan, 1000 * fan},
		{"above ceiling", 3_000_000_000 * fan, 1000 * fan},
		{"max", math.MaxInt64, 1000 * fan},
		// Ties, where half-even and half-up differ: d = 5e13·m units gives
		// b = 12.5·m³ units exactly.
		{"tie 12.5", 1_000_000_000*fan + 50_000_000_000_000, 12},
		{"tie 337.5", 1_000_000_000*fan + 150_000_000_000_000, 338},
		{"tie 1562.5", 1_000_000_000*fan + 250_000_000_000_000, 1562},
		{"just above tie", 1_000_000_000*fan + 50_000_000_000_001, 13},
	} {
		if got := domain.Burn(c.supply, r); got != c.want {
			t.Errorf("%s: Burn(%d) = %d, want %d", c.name, c.supply, got, c.want)
		}
		if ref := refBurn(c.supply, r); ref != c.want {
			t.Errorf("%s: reference says %d, table %d", c.name, ref, c.want)
		}
	}
}

func TestBurnMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rules := []domain.Rules{domain.DefaultRules()}
	for range 40 {
		r := domain.DefaultRules()
		r.BurnFloor = rng.Int64N(1 << 50)
		r.BurnCeiling = r.BurnFloor + 1 + rng.Int64N(1<<55)
		r.BurnMax = rng.Int64N(1 << 45)
		r.BurnExponent = 1 + uint32(rng.IntN(6))
		rules = append(rules, r)
	}
	for _, r := range rules {
		for range 200 {
			s := r.BurnFloor - 10 + rng.Int64N(r.BurnCeiling-r.BurnFloor+20)
			if got, want := domain.Burn(s, r), refBurn(s, r); got != want {
				t.Fatalf("rules %+v: Burn(%d) = %d, reference %d", r, s, got, want)
			}
		}
	}
}

func TestBurnIsMonotone(t *testing.T) {
	r := domain.DefaultRules()
	prev := int64(0)
	step := (r.BurnCeiling - r.BurnFloor) / 5000
	for s := r.BurnFloor - step; s <= r.BurnCeiling+step; s += step {
		b := domain.Burn(s, r)
		if b < prev || b < 0 || b > r.BurnMax {
			t.Fatalf("Burn(%d) = %d after %d", s, b, prev)
		}
		prev = b
	}
}
