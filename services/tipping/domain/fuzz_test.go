package domain_test

import (
	"testing"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/services/tipping/domain"
)

// Any amount text a client sends is either refused as invalid input or
// read as at least the minimum, and its canonical form reads back the same.
func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"0.01", "1", "1.5", "0.001", "-1", "", " 2.00", "1e3", "99999999999999999.99", "0.00", "١.٠٠"} {
		f.Add(s, int64(1))
	}
	f.Fuzz(func(t *testing.T, s string, min int64) {
		if min < 1 {
			min = 1
		}
		units, err := domain.ParseUSD("amount", s, min)
		if err != nil {
			if apperr.KindOf(err) != apperr.InvalidInput {
				t.Fatalf("%q: error of kind %q: %v", s, apperr.KindOf(err), err)
			}
			return
		}
		if units < min {
			t.Fatalf("%q read as %d below the minimum %d", s, units, min)
		}
		back, err := domain.ParseUSD("amount", domain.FormatUSD(units), min)
		if err != nil || back != units {
			t.Fatalf("%q → %d → %q → %d, %v", s, units, domain.FormatUSD(units), back, err)
		}
	})
}
