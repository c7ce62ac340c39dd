package money_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/fanfare/fanfare/internal/platform/money"
)

var plainDecimal = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// FuzzParseAmount checks Parse against shopspring/decimal: whatever Parse
// accepts decimal reads as the same value; whatever is a plain decimal fails
// only for a precise reason; every error wraps one sentinel; the canonical
// text reads back to the same amount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"5.00", "0.01", "12.34567891", "0.001", "-1", "+0", "", "abc", "1e3", ".5", "1.",
		"92233720368547758.07", "92233720368547758.08", "00000000000000000000001.10", "5.000"} {
		f.Add(s, uint8(2))
		f.Add(s, uint8(8))
	}
	sentinels := []error{money.ErrEmpty, money.ErrSyntax, money.ErrTooManyDecimals, money.ErrOverflow,
		money.ErrNegative, money.ErrZero, money.ErrInvalidAsset}
	f.Fuzz(func(t *testing.T, s string, scale uint8) {
		a := money.Asset{Code: "TST", Scale: scale % (money.MaxScale + 1)}
		m, err := money.Parse(a, s, money.AnySign)
		if err != nil {
			n := 0
			for _, sen := range sentinels {
				if errors.Is(err, sen) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Parse(%q) error %v wraps %d sentinels", s, err, n)
			}
			if plainDecimal.MatchString(s) && !errors.Is(err, money.ErrTooManyDecimals) && !errors.Is(err, money.ErrOverflow) {
				t.Fatalf("plain decimal %q rejected: %v", s, err)
			}
			if !plainDecimal.MatchString(s) && !errors.Is(err, money.ErrSyntax) && !errors.Is(err, money.ErrEmpty) {
				t.Fatalf("%q is not a plain decimal but the error is %v", s, err)
			}
			return
		}
		if !plainDecimal.MatchString(s) {
			t.Fatalf("Parse accepted %q, which is not a plain decimal", s)
		}
		d, derr := decimal.NewFromString(s)
		if derr != nil {
			t.Fatalf("Parse accepted %q but decimal rejects it: %v", s, derr)
		}
		if !m.Decimal().Equal(d) {
			t.Fatalf("Parse(%q) = %s, decimal says %s", s, m.Decimal(), d)
		}
		text := m.Text()
		back, err := money.Parse(a, text, money.AnySign)
		if err != nil || back != m {
			t.Fatalf("canonical %q of %q does not read back: %v %v", text, s, back, err)
		}
		if frac, ok := strings.CutPrefix(text[strings.IndexByte(text+".", '.'):], "."); ok && len(frac) != int(a.Scale) {
			t.Fatalf("canonical %q has %d decimals, want %d", text, len(frac), a.Scale)
		}
		fd, err := money.FromDecimal(a, d, money.AnySign)
		if err != nil || fd != m {
			t.Fatalf("FromDecimal(%s) = %v, %v; want %v", d, fd, err, m)
		}
		// The bounds only ever reject, never change, the value.
		for _, b := range []money.Bound{money.Positive, money.NonNegative} {
			mb, err := money.Parse(a, s, b)
			switch {
			case err == nil && mb != m:
				t.Fatalf("bound %d changed the value", b)
			case err != nil && !errors.Is(err, money.ErrZero) && !errors.Is(err, money.ErrNegative):
				t.Fatalf("bound %d: unexpected error %v", b, err)
			}
		}
	})
}

// FuzzAllocate checks the allocation invariants on arbitrary inputs: parts
// sum to the total, each part is the floor of the exact share or one more,
// zero weights get nothing, and the tie rule holds.
func FuzzAllocate(f *testing.F) {
	f.Add(int64(10), []byte{1, 1, 1}, "abc")
	f.Add(int64(1), []byte{0, 5, 5, 0}, "zzaa")
	f.Add(int64(999_999), []byte{255, 3, 200, 7, 7}, "qwert")
	f.Add(int64(-3), []byte{1}, "a")
	f.Fuzz(func(t *testing.T, total int64, weights []byte, payees string) {
		if len(weights) > 64 {
			weights = weights[:64]
		}
		shares := make([]money.Share, len(weights))
		var sum uint64
		overflow := false
		for i, w := range weights {
			p := "_"
			if i < len(payees) {
				p = string(rune('a' + payees[i]%4))
			}
			// Spread the weights over the whole uint64 range now and then.
			weight := uint64(w)
			if w%7 == 3 {
				weight <<= 55
			}
			shares[i] = money.Share{Payee: p, Weight: weight}
			if sum+weight < sum {
				overflow = true
			}
			sum += weight
		}
		parts, err := money.Allocate(total, shares)
		if total < 0 || len(shares) == 0 || sum == 0 || overflow {
			if !errors.Is(err, money.ErrAllocation) {
				t.Fatalf("error = %v, want ErrAllocation", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkLargestRemainder(t, total, shares, parts)
		var got int64
		for i, p := range parts {
			if shares[i].Weight == 0 && p != 0 {
				t.Fatalf("zero weight got %d", p)
			}
			got += p
		}
		if got != total {
			t.Fatalf("sum %d != total %d", got, total)
		}
	})
}
