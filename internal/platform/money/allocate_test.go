package money_test

import (
	"errors"
	"fmt"
	"math"
	mathrand "math/rand"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"

	"github.com/fanfare/fanfare/internal/platform/money"
)

func TestAllocateExamples(t *testing.T) {
	cases := []struct {
		name   string
		total  int64
		shares []money.Share
		want   []int64
	}{
		{"even", 100, []money.Share{{"a", 1}, {"b", 1}}, []int64{50, 50}},
		{"one cent three ways goes to the smallest payee id", 1,
			[]money.Share{{"c", 1}, {"a", 1}, {"b", 1}}, []int64{0, 1, 0}},
		{"ten cents in thirds", 10,
			[]money.Share{{"b", 333_334}, {"a", 333_333}, {"c", 333_333}}, []int64{4, 3, 3}},
		{"tie on remainder: payee id decides", 10,
			[]money.Share{{"z", 1}, {"y", 1}, {"x", 1}}, []int64{3, 3, 4}},
		{"larger remainder beats smaller payee id", 10,
			[]money.Share{{"a", 30}, {"b", 70}, {"c", 0}}, []int64{3, 7, 0}},
		{"larger remainder first", 7,
			[]money.Share{{"a", 1}, {"b", 2}, {"c", 3}}, []int64{1, 2, 4}}, // 7/6=1.1(6) 2.(3) 3.5
		{"zero weight gets nothing", 5,
			[]money.Share{{"a", 0}, {"b", 1}, {"c", 0}}, []int64{0, 5, 0}},
		{"zero total", 0, []money.Share{{"a", 1}}, []int64{0}},
		{"ppm royalty split of USD 0.99", 99,
			[]money.Share{{"artist", 700_000}, {"producer", 200_000}, {"charity", 100_000}}, []int64{69, 20, 10}},
		{"huge total and weights", math.MaxInt64,
			[]money.Share{{"a", math.MaxUint64 / 2}, {"b", math.MaxUint64 / 2}}, []int64{math.MaxInt64/2 + 1, math.MaxInt64 / 2}},
		{"duplicate payee", 3, []money.Share{{"a", 1}, {"a", 1}}, []int64{2, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := money.Allocate(c.total, c.shares)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("Allocate(%d, %v) = %v, want %v", c.total, c.shares, got, c.want)
			}
			checkAllocation(t, c.total, c.shares, got)
		})
	}
}

func TestAllocateErrors(t *testing.T) {
	cases := []struct {
		name   string
		total  int64
		shares []money.Share
	}{
		{"negative total", -1, []money.Share{{"a", 1}}},
		{"no shares", 10, nil},
		{"zero weights", 10, []money.Share{{"a", 0}, {"b", 0}}},
		{"weights overflow", 10, []money.Share{{"a", math.MaxUint64}, {"b", 1}}},
	}
	for _, c := range cases {
		if _, err := money.Allocate(c.total, c.shares); !errors.Is(err, money.ErrAllocation) {
			t.Errorf("%s: error = %v, want ErrAllocation", c.name, err)
		}
	}
}

func TestAmountAllocate(t *testing.T) {
	parts, err := money.MustParse(money.USD, "1.00").Allocate([]money.Share{{"a", 1}, {"b", 1}, {"c", 1}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		got = append(got, p.String())
	}
	if want := []string{"0.34 USD", "0.33 USD", "0.33 USD"}; !slices.Equal(got, want) {
		t.Fatalf("parts = %v, want %v", got, want)
	}
	if _, err := money.MustParse(money.USD, "-1.00").Allocate([]money.Share{{"a", 1}}); !errors.Is(err, money.ErrAllocation) {
		t.Fatalf("negative amount error = %v", err)
	}
}

// checkAllocation asserts the properties every allocation has.
func checkAllocation(t *testing.T, total int64, shares []money.Share, parts []int64) {
	t.Helper()
	if len(parts) != len(shares) {
		t.Fatalf("%d parts for %d shares", len(parts), len(shares))
	}
	var sumW float64
	var sum int64
	for i, s := range shares {
		sumW += float64(s.Weight)
		if parts[i] < 0 {
			t.Fatalf("part %d is negative: %d", i, parts[i])
		}
		if s.Weight == 0 && parts[i] != 0 {
			t.Fatalf("zero weight got %d", parts[i])
		}
		sum += parts[i]
	}
	if sum != total {
		t.Fatalf("parts %v sum to %d, want %d", parts, sum, total)
	}
	// Each part is within one unit of its exact share (checked loosely with
	// floats here; exactness is proved by the sum and the floor below).
	for i, s := range shares {
		exact := float64(total) * float64(s.Weight) / sumW
		if d := float64(parts[i]) - exact; d < -1.0001-exact*1e-12 || d > 1.0001+exact*1e-12 {
			t.Fatalf("part %d = %d, exact share %f", i, parts[i], exact)
		}
	}
}

func randomShares(r *rand.Rand, distinct bool) []money.Share {
	n := 1 + r.IntN(12)
	shares := make([]money.Share, n)
	for i := range shares {
		var w uint64
		switch r.IntN(4) {
		case 0:
			w = uint64(r.IntN(3)) // many ties and zeros
		case 1:
			w = uint64(r.IntN(1_000_001)) // ppm
		case 2:
			w = r.Uint64() >> 4 // huge
		default:
			w = uint64(r.IntN(100))
		}
		payee := fmt.Sprintf("p%02d", r.IntN(20))
		if distinct {
			payee = fmt.Sprintf("p%02d", i)
		}
		shares[i] = money.Share{Payee: payee, Weight: w}
	}
	shares[r.IntN(n)].Weight++ // at least one positive weight
	return shares
}

func randomTotal(r *rand.Rand) int64 {
	switch r.IntN(3) {
	case 0:
		return int64(r.IntN(10))
	case 1:
		return int64(r.IntN(1_000_000))
	}
	return r.Int64()
}

// TestAllocateProperties is the seeded property test: sums, bounds, the tie
// rule, determinism and independence of the order the shares come in.
func TestAllocateProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 20_000 {
		shares := randomShares(r, iter%2 == 0)
		total := randomTotal(r)
		parts, err := money.Allocate(total, shares)
		if err != nil {
			t.Fatalf("Allocate(%d, %v): %v", total, shares, err)
		}
		checkAllocation(t, total, shares, parts)
		again, _ := money.Allocate(total, shares)
		if !slices.Equal(parts, again) {
			t.Fatalf("not deterministic: %v then %v", parts, again)
		}
		// Per-payee totals do not depend on the order of the shares.
		perm := r.Perm(len(shares))
		shuffled := make([]money.Share, len(shares))
		for i, p := range perm {
			shuffled[i] = shares[p]
		}
		sparts, _ := money.Allocate(total, shuffled)
		byPayee := map[string]int64{}
		for i, s := range shares {
			byPayee[s.Payee] += parts[i]
		}
		for i, s := range shuffled {
			byPayee[s.Payee] -= sparts[i]
		}
		for p, d := range byPayee {
			if d != 0 {
				t.Fatalf("payee %s differs by %d after shuffling %v", p, d, shares)
			}
		}
		checkLargestRemainder(t, total, shares, parts)
	}
}

// checkLargestRemainder verifies the exact rule with big-enough integer
// arithmetic: every part is floor or floor+1, and whoever got +1 has a
// remainder at least as large (ties: payee id not larger) as whoever did not.
func checkLargestRemainder(t *testing.T, total int64, shares []money.Share, parts []int64) {
	t.Helper()
	var sumW uint64
	for _, s := range shares {
		sumW += s.Weight
	}
	type fr struct {
		floor int64
		rem   uint64
	}
	f := make([]fr, len(shares))
	for i, s := range shares {
		q, r := mulDiv(uint64(total), s.Weight, sumW)
		f[i] = fr{int64(q), r}
		if parts[i] != f[i].floor && parts[i] != f[i].floor+1 {
			t.Fatalf("part %d = %d, floor %d", i, parts[i], f[i].floor)
		}
	}
	for i := range shares {
		for j := range shares {
			gotI := parts[i] == f[i].floor+1
			gotJ := parts[j] == f[j].floor+1
			if !gotI || gotJ {
				continue
			}
			// i got an extra unit, j did not: i must rank before j.
			if f[i].rem < f[j].rem || (f[i].rem == f[j].rem && shares[i].Payee > shares[j].Payee) ||
				(f[i].rem == f[j].rem && shares[i].Payee == shares[j].Payee && i > j) {
				t.Fatalf("share %d (%v rem %d) got the unit before share %d (%v rem %d)", i, shares[i], f[i].rem, j, shares[j], f[j].rem)
			}
		}
	}
}

// mulDiv computes floor(a×b/c) and the remainder with schoolbook 128-bit
// arithmetic, independently of the implementation under test.
func mulDiv(a, b, c uint64) (uint64, uint64) {
	// Split into 32-bit halves and do long multiplication.
	aH, aL := a>>32, a&0xffffffff
	bH, bL := b>>32, b&0xffffffff
	ll := aL * bL
	lh := aL * bH
	hl := aH * bL
	hh := aH * bH
	mid := (ll >> 32) + (lh & 0xffffffff) + (hl & 0xffffffff)
	lo := (ll & 0xffffffff) | (mid << 32)
	hi := hh + (lh >> 32) + (hl >> 32) + (mid >> 32)
	// Binary long division of hi:lo by c.
	var q, r uint64
	for i := 127; i >= 0; i-- {
		var bit uint64
		if i >= 64 {
			bit = (hi >> (i - 64)) & 1
		} else {
			bit = (lo >> i) & 1
		}
		carry := r >> 63
		r = r<<1 | bit
		if carry == 1 || r >= c {
			r -= c
			if i < 64 {
				q |= 1 << i
			}
		}
	}
	return q, r
}

// TestAllocateQuick runs the same properties through testing/quick.
func TestAllocateQuick(t *testing.T) {
	prop := func(total int64, weights []uint32, payees []uint8) bool {
		if total < 0 {
			total = -(total + 1)
		}
		if len(weights) == 0 {
			return true
		}
		shares := make([]money.Share, len(weights))
		var sum uint64
		for i, w := range weights {
			p := "x"
			if i < len(payees) {
				p = fmt.Sprintf("p%d", payees[i]%8)
			}
			shares[i] = money.Share{Payee: p, Weight: uint64(w)}
			sum += uint64(w)
		}
		parts, err := money.Allocate(total, shares)
		if sum == 0 {
			return errors.Is(err, money.ErrAllocation)
		}
		if err != nil {
			return false
		}
		var got int64
		for i, p := range parts {
			q, _ := mulDiv(uint64(total), shares[i].Weight, sum)
			if p != int64(q) && p != int64(q)+1 {
				return false
			}
			got += p
		}
		return got == total
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 5000, Rand: mathrand.New(mathrand.NewSource(7))}); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAllocate(b *testing.B) {
	shares := []money.Share{{"artist", 600_000}, {"producer", 250_000}, {"label", 100_000}, {"charity", 50_000}}
	for b.Loop() {
		if _, err := money.Allocate(99_999, shares); err != nil {
			b.Fatal(err)
		}
	}
}
