package money

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/shopspring/decimal"
)

// Amount is an exact amount of one asset in integer minor units. The zero
// value is zero of an unnamed asset; build amounts with [New], [Parse] or
// [FromDecimal]. Amounts are comparable with ==.
//
// The representable range is symmetric: ±math.MaxInt64 minor units, so
// negation never overflows.
type Amount struct {
	units int64
	asset Asset
}

// Bound says which signs an amount may have. The zero value, [Positive], is
// the strictest.
type Bound uint8

const (
	// Positive allows amounts > 0.
	Positive Bound = iota
	// NonNegative allows amounts ≥ 0.
	NonNegative
	// AnySign allows every amount.
	AnySign
)

// New returns units minor units of asset a. Units equal to math.MinInt64 are
// clamped to -math.MaxInt64 so the range stays symmetric.
func New(a Asset, units int64) Amount {
	if units == math.MinInt64 {
		units = -math.MaxInt64
	}
	return Amount{units: units, asset: a}
}

// Units returns the amount in minor units.
func (m Amount) Units() int64 { return m.units }

// Asset returns the amount's asset.
func (m Amount) Asset() Asset { return m.asset }

// IsZero reports whether the amount is zero.
func (m Amount) IsZero() bool { return m.units == 0 }

// Sign returns -1, 0 or +1.
func (m Amount) Sign() int {
	switch {
	case m.units < 0:
		return -1
	case m.units > 0:
		return 1
	}
	return 0
}

// Neg returns −m.
func (m Amount) Neg() Amount { return Amount{units: -m.units, asset: m.asset} }

// Add returns m + o. It returns an error wrapping [ErrAssetMismatch] if the
// assets differ and [ErrOverflow] if the sum leaves the range.
func (m Amount) Add(o Amount) (Amount, error) {
	if m.asset != o.asset {
		return Amount{}, newError(ErrAssetMismatch, fmt.Sprintf("cannot add %s to %s", o.asset.Code, m.asset.Code))
	}
	s, ok := AddUnits(m.units, o.units)
	if !ok {
		return Amount{}, newError(ErrOverflow, fmt.Sprintf("%s + %s overflows %s", m.Text(), o.Text(), m.asset.Code))
	}
	return Amount{units: s, asset: m.asset}, nil
}

// Sub returns m − o; errors as for [Amount.Add].
func (m Amount) Sub(o Amount) (Amount, error) {
	if m.asset != o.asset {
		return Amount{}, newError(ErrAssetMismatch, fmt.Sprintf("cannot subtract %s from %s", o.asset.Code, m.asset.Code))
	}
	s, ok := AddUnits(m.units, -o.units)
	if !ok {
		return Amount{}, newError(ErrOverflow, fmt.Sprintf("%s - %s overflows %s", m.Text(), o.Text(), m.asset.Code))
	}
	return Amount{units: s, asset: m.asset}, nil
}

// AddUnits adds minor units, reporting false when the sum leaves the
// symmetric range ±math.MaxInt64.
func AddUnits(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) || s == math.MinInt64 {
		return 0, false
	}
	return s, true
}

// Text returns the canonical decimal string: an optional minus sign, the
// integer part without leading zeros, and exactly Scale decimals ("5.00",
// "-0.01", "12.34567891"; scale 0: "5"). [Parse] reads it back exactly.
func (m Amount) Text() string {
	return FormatUnits(m.units, m.asset.Scale)
}

// String returns the canonical decimal string and the asset code, e.g.
// "5.00 USD".
func (m Amount) String() string { return m.Text() + " " + m.asset.Code }

// FormatUnits formats minor units with scale decimals, as [Amount.Text].
func FormatUnits(units int64, scale uint8) string {
	neg := units < 0
	var mag uint64
	if neg {
		mag = uint64(-(units + 1)) + 1 // no overflow for MinInt64
	} else {
		mag = uint64(units)
	}
	digits := strconv.FormatUint(mag, 10)
	sc := int(scale)
	if len(digits) <= sc {
		digits = strings.Repeat("0", sc-len(digits)+1) + digits
	}
	var b strings.Builder
	b.Grow(len(digits) + 2)
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(digits[:len(digits)-sc])
	if sc > 0 {
		b.WriteByte('.')
		b.WriteString(digits[len(digits)-sc:])
	}
	return b.String()
}

// Parse reads a plain decimal string as an amount of asset a: an optional
// sign, at least one digit, and optionally a point followed by at least one
// digit ("5", "5.00", "-0.5", "12.34567891"). No exponent, spaces, grouping
// or other characters. Trailing zeros beyond the scale are accepted because
// the value is still exact ("5.000" is USD 5.00); a non-zero digit beyond the
// scale is not.
//
// Errors wrap, checked in this order: [ErrInvalidAsset], [ErrEmpty],
// [ErrSyntax], [ErrTooManyDecimals], [ErrOverflow], then per the bound
// [ErrZero] or [ErrNegative].
func Parse(a Asset, s string, b Bound) (Amount, error) {
	if err := a.Validate(); err != nil {
		return Amount{}, err
	}
	if s == "" {
		return Amount{}, newError(ErrEmpty, "empty "+a.Code+" amount")
	}
	i, neg := 0, false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		i = 1
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	var frac string
	hasPoint := false
	if i < len(s) && s[i] == '.' {
		hasPoint = true
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
	}
	if i != len(s) || intPart == "" || (hasPoint && frac == "") {
		return Amount{}, newError(ErrSyntax, fmt.Sprintf("%q is not a number (want digits with an optional sign and decimal point, e.g. %q)", clip(s), FormatUnits(500, a.Scale)))
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > int(a.Scale) {
		return Amount{}, newError(ErrTooManyDecimals, fmt.Sprintf("%s allows %d decimals, got %q", a.Code, a.Scale, clip(s)))
	}
	var mag uint64
	overflow := false
	push := func(d byte) {
		if overflow {
			return
		}
		v := uint64(d - '0')
		if mag > (math.MaxInt64-v)/10 {
			overflow = true
			return
		}
		mag = mag*10 + v
	}
	for j := 0; j < len(intPart); j++ {
		push(intPart[j])
	}
	for j := 0; j < len(frac); j++ {
		push(frac[j])
	}
	for j := len(frac); j < int(a.Scale); j++ {
		push('0')
	}
	if overflow {
		return Amount{}, newError(ErrOverflow, fmt.Sprintf("%q is out of range for %s (at most %s)", clip(s), a.Code, FormatUnits(math.MaxInt64, a.Scale)))
	}
	units := int64(mag)
	if neg {
		units = -units
	}
	if err := checkBound(a, units, b, s); err != nil {
		return Amount{}, err
	}
	return Amount{units: units, asset: a}, nil
}

func checkBound(a Asset, units int64, b Bound, input string) error {
	switch {
	case units == 0 && b == Positive:
		return newError(ErrZero, fmt.Sprintf("%s amount must be positive, got %q", a.Code, clip(input)))
	case units < 0 && b != AnySign:
		return newError(ErrNegative, fmt.Sprintf("%s amount must not be negative, got %q", a.Code, clip(input)))
	}
	return nil
}

// MustParse is [Parse] for constants in code and tests; it panics on error.
func MustParse(a Asset, s string) Amount {
	m, err := Parse(a, s, AnySign)
	if err != nil {
		panic(err)
	}
	return m
}

// FromDecimal converts a decimal at the edge of the system into an exact
// amount. The value must be representable exactly at the asset's scale: no
// rounding happens here (round explicitly with decimal's RoundBank or the
// like first). Errors wrap [ErrInvalidAsset], [ErrTooManyDecimals],
// [ErrOverflow], [ErrZero] or [ErrNegative].
func FromDecimal(a Asset, d decimal.Decimal, b Bound) (Amount, error) {
	if err := a.Validate(); err != nil {
		return Amount{}, err
	}
	shifted := d.Shift(int32(a.Scale))
	if !shifted.IsInteger() {
		return Amount{}, newError(ErrTooManyDecimals, fmt.Sprintf("%s allows %d decimals, got %q", a.Code, a.Scale, clip(d.String())))
	}
	bi := shifted.BigInt()
	if !bi.IsInt64() || bi.Int64() == math.MinInt64 {
		return Amount{}, newError(ErrOverflow, fmt.Sprintf("%q is out of range for %s (at most %s)", clip(d.String()), a.Code, FormatUnits(math.MaxInt64, a.Scale)))
	}
	units := bi.Int64()
	if err := checkBound(a, units, b, d.String()); err != nil {
		return Amount{}, err
	}
	return Amount{units: units, asset: a}, nil
}

// Decimal returns the amount as a decimal, for computations at the edge (e.g.
// the burn curve). Convert back with [FromDecimal].
func (m Amount) Decimal() decimal.Decimal {
	return decimal.New(m.units, -int32(m.asset.Scale))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// clip shortens very long inputs in error messages.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// ParseField parses a client's decimal amount of asset a for the request
// field named field, at least min units. Errors: InvalidInput naming the
// field.
func ParseField(a Asset, field, s string, min int64) (int64, error) {
	m, err := Parse(a, s, Positive)
	if err != nil {
		return 0, apperr.New(apperr.InvalidInput, "%s: %v", field, err)
	}
	if m.Units() < min {
		return 0, apperr.New(apperr.InvalidInput, "%s must be at least %s %s, got %s", field, FormatUnits(min, a.Scale), a.Code, m.Text())
	}
	return m.Units(), nil
}
