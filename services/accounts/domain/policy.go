package domain

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// Defaults of the built-in policy (version 1).
const (
	// DefaultMaxPostings bounds the postings of one request.
	DefaultMaxPostings = 64
	// DefaultMaxHoldOps bounds the hold operations of one request.
	DefaultMaxHoldOps = 64
	// DefaultFANSupplyCapUnits is 2,000,000,000 FAN in minor units (1e-8).
	DefaultFANSupplyCapUnits int64 = 2_000_000_000 * 100_000_000
	// DefaultWelcomeCreditUnits is USD 5.00 in cents.
	DefaultWelcomeCreditUnits int64 = 500
	// maxBound is the largest MaxPostings / MaxHoldOps a policy may set.
	maxBound = 4096
)

// Policy is the rule set the ledger applies (DESIGN §1 rule 7). Policies are
// versioned: a book holds one and records its version in every outcome; a
// new one (from a PolicyVersioned event) replaces it with [Book.SetPolicy].
// Treat a Policy as a value: the book keeps its own copy.
type Policy struct {
	// Version is 1 for the first policy, then +1 each time.
	Version uint64
	// Assets is the asset table (codes and scales).
	Assets money.Assets
	// SupplyCaps maps the code of each token asset to its supply cap in
	// minor units. A book whose asset is listed is a token book: it has mint
	// and burn accounts, and only mint may go negative.
	SupplyCaps map[string]int64
	// WelcomeCredit is the promotional credit for a new identity (paid from
	// promotions by the app layer when it opens the identity's wallets).
	WelcomeCredit money.Amount
	// MaxPostings bounds the postings of one request (1..4096).
	MaxPostings int
	// MaxHoldOps bounds the hold operations of one request (1..4096).
	MaxHoldOps int
}

// DefaultPolicy returns version 1: USD (scale 2) and FAN (scale 8), FAN
// supply cap 2,000,000,000 FAN, welcome credit USD 5.00, at most 64 postings
// and 64 hold operations per request.
func DefaultPolicy() Policy {
	return Policy{
		Version:       1,
		Assets:        money.DefaultAssets(),
		SupplyCaps:    map[string]int64{"FAN": DefaultFANSupplyCapUnits},
		WelcomeCredit: money.New(money.Asset{Code: "USD", Scale: 2}, DefaultWelcomeCreditUnits),
		MaxPostings:   DefaultMaxPostings,
		MaxHoldOps:    DefaultMaxHoldOps,
	}
}

// Validate returns a [*Rejection] wrapping [ErrInvalidPolicy] if the policy
// is unusable.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error { return reject(ErrInvalidPolicy, "", format, args...) }
	if p.Version == 0 {
		return bad("version must be at least 1")
	}
	if p.Assets.Len() == 0 {
		return bad("no assets")
	}
	for _, code := range slices.Sorted(maps.Keys(p.SupplyCaps)) {
		cap := p.SupplyCaps[code]
		if _, err := p.Assets.Lookup(code); err != nil {
			return bad("supply cap for unknown asset %q", code)
		}
		if cap <= 0 {
			return bad("supply cap of %s must be positive, got %d", code, cap)
		}
	}
	if wc := p.WelcomeCredit; wc != (money.Amount{}) {
		a, err := p.Assets.Lookup(wc.Asset().Code)
		if err != nil || a != wc.Asset() {
			return bad("welcome credit in unknown asset %q", wc.Asset().Code)
		}
		if wc.Sign() < 0 {
			return bad("welcome credit must not be negative, got %s", wc)
		}
	}
	if p.MaxPostings < 1 || p.MaxPostings > maxBound {
		return bad("max postings must be 1..%d, got %d", maxBound, p.MaxPostings)
	}
	if p.MaxHoldOps < 1 || p.MaxHoldOps > maxBound {
		return bad("max hold operations must be 1..%d, got %d", maxBound, p.MaxHoldOps)
	}
	return nil
}

// SupplyCap returns the supply cap of a token asset in minor units, and
// whether the asset is a token (has a cap).
func (p Policy) SupplyCap(asset string) (int64, bool) {
	c, ok := p.SupplyCaps[asset]
	return c, ok
}

// clone copies the map so the book's policy cannot change behind its back.
func (p Policy) clone() Policy {
	p.SupplyCaps = maps.Clone(p.SupplyCaps)
	return p
}

func (p Policy) String() string {
	return fmt.Sprintf("policy v%d", p.Version)
}
