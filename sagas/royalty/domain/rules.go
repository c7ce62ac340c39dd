package domain

import (
	"errors"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// FAN is the code of the network token; all reward postings are in FAN.
const FAN = "FAN"

// UnitsPerFAN is one FAN in minor units (scale 8).
const UnitsPerFAN int64 = 100_000_000

// Defaults of the built-in reward rules, in FAN minor units.
const (
	DefaultDiscoveryMaxPlayNumber = 10_000
	DefaultReward                 = 1 * UnitsPerFAN
	DefaultBurnFloor              = 1_000_000_000 * UnitsPerFAN
	DefaultBurnCeiling            = 2_000_000_000 * UnitsPerFAN
	DefaultBurnMax                = 1_000 * UnitsPerFAN
	DefaultBurnExponent           = 3
	// DefaultSupplyCap is the ledger policy's default FAN cap (2e9 FAN).
	DefaultSupplyCap = 2_000_000_000 * UnitsPerFAN
)

// maxBurnExponent bounds the curve's exponent (keeps the exact arithmetic
// small).
const maxBurnExponent = 32

// Rules are the token rewards per counted play (the policy's RewardRules)
// plus the FAN supply cap of the ledger policy. Amounts are FAN minor units.
type Rules struct {
	// DiscoveryMaxPlayNumber: plays numbered up to and including this are in
	// the discovery tier.
	DiscoveryMaxPlayNumber uint64
	// Discovery tier mints: listener, serving node, artist's escrow.
	DiscoveryListenerReward int64
	DiscoveryNodeReward     int64
	DiscoveryEscrowReward   int64
	// Standard tier mints: artist side (split), serving node.
	StandardArtistReward int64
	StandardNodeReward   int64
	// Burn curve b(S) = BurnMax × x^BurnExponent with
	// x = clamp((S − BurnFloor) / (BurnCeiling − BurnFloor), 0, 1).
	BurnFloor    int64
	BurnCeiling  int64
	BurnMax      int64
	BurnExponent uint32
	// SupplyCap is the FAN supply cap of the ledger policy.
	SupplyCap int64
}

// DefaultRules returns the built-in rules: discovery up to play 10,000,
// 1 FAN per mint, burn floor 1e9 FAN, ceiling 2e9 FAN, max 1000 FAN,
// exponent 3, supply cap 2e9 FAN.
func DefaultRules() Rules {
	return Rules{
		DiscoveryMaxPlayNumber:  DefaultDiscoveryMaxPlayNumber,
		DiscoveryListenerReward: DefaultReward,
		DiscoveryNodeReward:     DefaultReward,
		DiscoveryEscrowReward:   DefaultReward,
		StandardArtistReward:    DefaultReward,
		StandardNodeReward:      DefaultReward,
		BurnFloor:               DefaultBurnFloor,
		BurnCeiling:             DefaultBurnCeiling,
		BurnMax:                 DefaultBurnMax,
		BurnExponent:            DefaultBurnExponent,
		SupplyCap:               DefaultSupplyCap,
	}
}

// Validate returns an error wrapping [ErrInvalidRules] (invalid_input):
// rewards must be ≥ 0 with a positive total per tier, and no tier may mint
// more than the cap; 0 ≤ floor < ceiling; max ≥ 0; exponent 1..32; cap > 0.
func (r Rules) Validate() error {
	if r.SupplyCap <= 0 {
		return invalidRules("supply cap must be > 0, got %d", r.SupplyCap)
	}
	for _, tier := range []struct {
		name    string
		rewards []int64
	}{
		{"discovery", []int64{r.DiscoveryListenerReward, r.DiscoveryNodeReward, r.DiscoveryEscrowReward}},
		{"standard", []int64{r.StandardArtistReward, r.StandardNodeReward}},
	} {
		var sum int64
		for _, v := range tier.rewards {
			if v < 0 || v > r.SupplyCap {
				return invalidRules("%s reward %d is not in 0..cap", tier.name, v)
			}
			sum += v // each ≤ cap < 2^63/3: no overflow
		}
		if sum == 0 || sum > r.SupplyCap {
			return invalidRules("%s rewards total %d, want 1..cap", tier.name, sum)
		}
	}
	if r.BurnFloor < 0 || r.BurnCeiling <= r.BurnFloor {
		return invalidRules("burn floor %d and ceiling %d: want 0 ≤ floor < ceiling", r.BurnFloor, r.BurnCeiling)
	}
	if r.BurnMax < 0 {
		return invalidRules("burn max must be ≥ 0, got %d", r.BurnMax)
	}
	if r.BurnExponent == 0 || r.BurnExponent > maxBurnExponent {
		return invalidRules("burn exponent must be 1..%d, got %d", maxBurnExponent, r.BurnExponent)
	}
	return nil
}

// RulesFromPolicy takes the rewards and the FAN supply cap of a policy
// event; every amount must be FAN. The result is validated.
func RulesFromPolicy(p *eventsv1.Policy) (Rules, error) {
	if p.GetRewards() == nil || p.GetFanSupplyCap() == nil {
		return Rules{}, invalidRules("policy has no reward rules or no FAN supply cap")
	}
	rr := p.GetRewards()
	r := Rules{DiscoveryMaxPlayNumber: rr.DiscoveryMaxPlayNumber, BurnExponent: rr.BurnExponent}
	for _, f := range []struct {
		name string
		m    *eventsv1.Money
		to   *int64
	}{
		{"discovery listener reward", rr.DiscoveryListenerReward, &r.DiscoveryListenerReward},
		{"discovery node reward", rr.DiscoveryNodeReward, &r.DiscoveryNodeReward},
		{"discovery escrow reward", rr.DiscoveryEscrowReward, &r.DiscoveryEscrowReward},
		{"standard artist reward", rr.StandardArtistReward, &r.StandardArtistReward},
		{"standard node reward", rr.StandardNodeReward, &r.StandardNodeReward},
		{"burn floor", rr.BurnFloor, &r.BurnFloor},
		{"burn ceiling", rr.BurnCeiling, &r.BurnCeiling},
		{"burn max", rr.BurnMax, &r.BurnMax},
		{"FAN supply cap", p.FanSupplyCap, &r.SupplyCap},
	} {
		if f.m.GetAsset() != FAN {
			return Rules{}, invalidRules("%s must be in %s, got %q", f.name, FAN, f.m.GetAsset())
		}
		*f.to = f.m.GetUnits()
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// Proto returns the reward part of the rules as eventsv1.RewardRules (the
// supply cap belongs to Policy.fan_supply_cap).
func (r Rules) Proto() *eventsv1.RewardRules {
	fan := func(u int64) *eventsv1.Money { return &eventsv1.Money{Asset: FAN, Units: u} }
	return &eventsv1.RewardRules{
		DiscoveryMaxPlayNumber:  r.DiscoveryMaxPlayNumber,
		DiscoveryListenerReward: fan(r.DiscoveryListenerReward),
		DiscoveryNodeReward:     fan(r.DiscoveryNodeReward),
		DiscoveryEscrowReward:   fan(r.DiscoveryEscrowReward),
		StandardArtistReward:    fan(r.StandardArtistReward),
		StandardNodeReward:      fan(r.StandardNodeReward),
		BurnFloor:               fan(r.BurnFloor),
		BurnCeiling:             fan(r.BurnCeiling),
		BurnMax:                 fan(r.BurnMax),
		BurnExponent:            r.BurnExponent,
	}
}

// Sentinels; errors returned by this package wrap exactly one of them
// (apperr.Of, with its kind).
var (
	// ErrInvalidRules: reward rules out of range. invalid_input.
	ErrInvalidRules = errors.New("royalty: invalid reward rules")
	// ErrInvalidPlay: a play that cannot be rewarded as given (bad ids,
	// play number 0, splits that do not sum to 1,000,000 ppm, negative
	// supply). invalid_input.
	ErrInvalidPlay = errors.New("royalty: invalid play")
)

func invalidRules(format string, args ...any) error {
	return apperr.Of(apperr.InvalidInput, ErrInvalidRules, format, args...)
}

func invalidPlay(format string, args ...any) error {
	return apperr.Of(apperr.InvalidInput, ErrInvalidPlay, format, args...)
}
