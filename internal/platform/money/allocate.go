package money

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Share is one payee's weight in an allocation, e.g. a royalty split share in
// parts per million. Weights are relative: they need not sum to any
// particular number.
type Share struct {
	// Payee identifies who receives the part; it breaks ties between equal
	// remainders (lexicographically smaller payee first).
	Payee string
	// Weight is the payee's relative weight; zero receives nothing.
	Weight uint64
}

// Allocate splits total minor units over the shares by largest remainder and
// returns one part per share, in the order of shares. It is the one split
// function of the system (DESIGN §1 rule 6):
//
//   - each share first gets floor(total × weight / Σweights);
//   - the units left over (fewer than the number of shares) go one each to the
//     shares with the largest remainders; equal remainders are ordered by
//     payee id (lexicographically, byte-wise), then by position in shares;
//   - the parts always sum to total, each part is within one unit of its exact
//     share, a zero weight gets zero, and the result depends only on the
//     inputs, never on map order or the clock.
//
// A payee that appears twice is allowed; its two parts together do not depend
// on their order. The arithmetic is exact 128-bit, so any int64 total and any
// uint64 weights work.
//
// Errors wrap [ErrAllocation]: a negative total, no shares, weights summing
// to zero, or weights whose sum overflows uint64.
func Allocate(total int64, shares []Share) ([]int64, error) {
	if total < 0 {
		return nil, newError(ErrAllocation, fmt.Sprintf("cannot allocate a negative total (%d)", total))
	}
	if len(shares) == 0 {
		return nil, newError(ErrAllocation, "cannot allocate over no shares")
	}
	var sum uint64
	for _, s := range shares {
		var carry uint64
		sum, carry = bits.Add64(sum, s.Weight, 0)
		if carry != 0 {
			return nil, newError(ErrAllocation, "share weights overflow")
		}
	}
	if sum == 0 {
		return nil, newError(ErrAllocation, "share weights sum to zero")
	}
	parts := make([]int64, len(shares))
	t := uint64(total)
	var given uint64
	var rems []uint64
	for i, s := range shares {
		// t×w < 2^64×sum because t < 2^63 and w ≤ sum, so hi < sum and Div64
		// cannot panic; the quotient is ≤ t.
		hi, lo := bits.Mul64(t, s.Weight)
		q, r := bits.Div64(hi, lo, sum)
		parts[i] = int64(q)
		given += q
		if r != 0 {
			if rems == nil {
				rems = make([]uint64, len(shares))
			}
			rems[i] = r
		}
	}
	left := t - given
	if left == 0 {
		return parts, nil
	}
	// Σ remainders = left × sum and each remainder < sum, so more than `left`
	// shares have a non-zero remainder: the leftover units all go to shares
	// with a positive weight.
	order := make([]int, 0, len(shares))
	for i, r := range rems {
		if r != 0 {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case rems[a] > rems[b]:
			return -1
		case rems[a] < rems[b]:
			return 1
		}
		if c := strings.Compare(shares[a].Payee, shares[b].Payee); c != 0 {
			return c
		}
		return a - b
	})
	for _, i := range order[:left] {
		parts[i]++
	}
	return parts, nil
}

// Allocate splits the amount over the shares with [Allocate]; the parts carry
// the amount's asset.
func (m Amount) Allocate(shares []Share) ([]Amount, error) {
	units, err := Allocate(m.units, shares)
	if err != nil {
		return nil, err
	}
	out := make([]Amount, len(units))
	for i, u := range units {
		out[i] = Amount{units: u, asset: m.asset}
	}
	return out, nil
}
