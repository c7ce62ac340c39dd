package money

import (
	"fmt"
	"slices"
	"strings"
)

// MaxScale is the largest scale an asset may have: 10^18 still fits int64.
const MaxScale = 18

// Asset is a currency or token with a fixed number of decimals.
type Asset struct {
	// Code is the asset code: 2 to 12 characters, an upper-case letter then
	// upper-case letters or digits ("USD", "FAN").
	Code string
	// Scale is the number of decimals of one minor unit (USD 2, FAN 8).
	Scale uint8
}

// The built-in assets. Policy may pass a different table (see [NewAssets]);
// these are only the defaults.
var (
	// USD is the US dollar, scale 2 (minor unit: one cent).
	USD = Asset{Code: "USD", Scale: 2}
	// FAN is the network token, scale 8 (minor unit: 1e-8 FAN).
	FAN = Asset{Code: "FAN", Scale: 8}
)

// ValidCode reports whether code is a well-formed asset code.
func ValidCode(code string) bool {
	if len(code) < 2 || len(code) > 12 || code[0] < 'A' || code[0] > 'Z' {
		return false
	}
	for i := 1; i < len(code); i++ {
		c := code[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Validate returns an error wrapping [ErrInvalidAsset] if the code is
// malformed or the scale exceeds [MaxScale].
func (a Asset) Validate() error {
	if !ValidCode(a.Code) {
		return newError(ErrInvalidAsset, fmt.Sprintf("asset code %q is not 2-12 upper-case letters or digits starting with a letter", a.Code))
	}
	if a.Scale > MaxScale {
		return newError(ErrInvalidAsset, fmt.Sprintf("asset %s: scale %d exceeds %d", a.Code, a.Scale, MaxScale))
	}
	return nil
}

// String returns the asset code.
func (a Asset) String() string { return a.Code }

// Assets is an immutable asset table. The zero value is an empty table.
// Copying an Assets value is cheap and safe.
type Assets struct {
	list []Asset // sorted by code, unique, never mutated after construction
}

// NewAssets builds a table. It returns an error wrapping [ErrInvalidAsset]
// for a malformed asset or a duplicate code.
func NewAssets(assets ...Asset) (Assets, error) {
	list := slices.Clone(assets)
	for _, a := range list {
		if err := a.Validate(); err != nil {
			return Assets{}, err
		}
	}
	slices.SortFunc(list, func(x, y Asset) int { return strings.Compare(x.Code, y.Code) })
	for i := 1; i < len(list); i++ {
		if list[i].Code == list[i-1].Code {
			return Assets{}, newError(ErrInvalidAsset, fmt.Sprintf("asset %s listed twice", list[i].Code))
		}
	}
	return Assets{list: list}, nil
}

// DefaultAssets returns the built-in table: USD (scale 2) and FAN (scale 8).
func DefaultAssets() Assets {
	return Assets{list: []Asset{{Code: "FAN", Scale: 8}, {Code: "USD", Scale: 2}}}
}

// Lookup returns the asset with the given code, or an error wrapping
// [ErrUnknownAsset].
func (r Assets) Lookup(code string) (Asset, error) {
	for _, a := range r.list {
		if a.Code == code {
			return a, nil
		}
	}
	return Asset{}, newError(ErrUnknownAsset, fmt.Sprintf("unknown asset %q (known: %s)", code, strings.Join(r.Codes(), ", ")))
}

// List returns the assets sorted by code.
func (r Assets) List() []Asset { return slices.Clone(r.list) }

// Codes returns the asset codes, sorted.
func (r Assets) Codes() []string {
	codes := make([]string, len(r.list))
	for i, a := range r.list {
		codes[i] = a.Code
	}
	return codes
}

// Len returns the number of assets.
func (r Assets) Len() int { return len(r.list) }

// Parse looks up the asset by code and parses s in it; see [Parse]. An
// unknown code gives an error wrapping [ErrUnknownAsset].
func (r Assets) Parse(code, s string, b Bound) (Amount, error) {
	a, err := r.Lookup(code)
	if err != nil {
		return Amount{}, err
	}
	return Parse(a, s, b)
}
