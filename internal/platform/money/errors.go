package money

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of them
// (test with errors.Is); all of them are invalid input.
var (
	// ErrEmpty: the amount string is empty.
	ErrEmpty = errors.New("empty amount")
	// ErrSyntax: the amount string is not a plain decimal number.
	ErrSyntax = errors.New("not a number")
	// ErrTooManyDecimals: the amount has more decimals than its asset's scale.
	ErrTooManyDecimals = errors.New("too many decimals")
	// ErrOverflow: the amount does not fit in int64 minor units.
	ErrOverflow = errors.New("amount out of range")
	// ErrNegative: a negative amount where the caller allows none.
	ErrNegative = errors.New("negative amount")
	// ErrZero: a zero amount where the caller wants a positive one.
	ErrZero = errors.New("zero amount")
	// ErrUnknownAsset: the asset code is not in the asset table.
	ErrUnknownAsset = errors.New("unknown asset")
	// ErrInvalidAsset: an asset code or scale is malformed.
	ErrInvalidAsset = errors.New("invalid asset")
	// ErrAssetMismatch: arithmetic on amounts of two different assets.
	ErrAssetMismatch = errors.New("asset mismatch")
	// ErrAllocation: the inputs of an allocation are unusable (no shares,
	// weights summing to zero or overflowing, a negative total).
	ErrAllocation = errors.New("invalid allocation")
)

// Error is a money error with a precise, human-readable message. It wraps one
// of the sentinels above.
type Error struct {
	// Err is the sentinel.
	Err error
	// Msg is the precise message, e.g. `USD allows 2 decimals, got "0.001"`.
	Msg string
}

func (e *Error) Error() string { return "money: " + e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func newError(sentinel error, msg string) error { return &Error{Err: sentinel, Msg: msg} }
