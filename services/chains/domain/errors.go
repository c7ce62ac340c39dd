package domain

import (
	"errors"
	"fmt"
)

// Reason is a rejection reason of a referral token. Its values are the names
// of the DistributorChainRejected.Reason enum (proto/fanfare/events/v1/
// chains.proto), so an adapter maps one to the other with
// eventsv1.DistributorChainRejected_Reason_value[string(r)].
type Reason string

// The rejection reasons, one per enum value.
const (
	// ReasonUnspecified: not a rejection of the token (a caller's mistake, or
	// an error from outside this package).
	ReasonUnspecified Reason = "REASON_UNSPECIFIED"
	// ReasonMalformed: not a token, or a layer does not open.
	ReasonMalformed Reason = "REASON_MALFORMED"
	// ReasonBadSignature: a hop's signature does not verify.
	ReasonBadSignature Reason = "REASON_BAD_SIGNATURE"
	// ReasonSongMismatch: a layer names another song.
	ReasonSongMismatch Reason = "REASON_SONG_MISMATCH"
	// ReasonTooManyHops: more layers than policy allows.
	ReasonTooManyHops Reason = "REASON_TOO_MANY_HOPS"
	// ReasonUnknownRoot: the root was not issued by this service.
	ReasonUnknownRoot Reason = "REASON_UNKNOWN_ROOT"
)

// Error is a sentinel of this package. Functions wrap one with detail
// ("chains: bad signature: layer 3: …"); test with errors.Is and read the reason
// with [ReasonOf].
type Error struct {
	reason Reason
	msg    string
}

func (e *Error) Error() string { return "chains: " + e.msg }

// Reason is the rejection reason the sentinel stands for.
func (e *Error) Reason() Reason { return e.reason }

// KindName is the error kind for the ports (internal/platform/apperr): every
// error of this package is about its input.
func (e *Error) KindName() string { return "invalid_input" }

// The sentinels. The first five map one-to-one to the rejection reasons.
var (
	// ErrMalformed: bytes that are not a token: bad text form, wrong magic or
	// kind, a field out of bounds, trailing bytes, a hop count in the
	// cleartext header that does not match the layers inside, a token over
	// [MaxTokenSize], or a layer that does not open with the service's box key.
	ErrMalformed = &Error{ReasonMalformed, "malformed referral token"}
	// ErrBadSignature: a hop's distributor is not registered, its registered
	// key is not an Ed25519 public key, or its signature does not verify over
	// (previous token hash, song id, distributor id).
	ErrBadSignature = &Error{ReasonBadSignature, "bad signature"}
	// ErrSongMismatch: a layer (root or hop) names another song than the one
	// being bought (or, in Extend, than the one being extended for).
	ErrSongMismatch = &Error{ReasonSongMismatch, "song mismatch"}
	// ErrTooManyHops: a token with more layers than allowed (Extend: already
	// [DefaultMaxHops]; Resolve: more than its maxHops).
	ErrTooManyHops = &Error{ReasonTooManyHops, "too many hops"}
	// ErrUnknownRoot: the root layer is not signed by this service's key.
	ErrUnknownRoot = &Error{ReasonUnknownRoot, "unknown root"}

	// ErrInvalidArgument: the caller passed an invalid id (empty, over
	// [MaxIDLen] bytes, not UTF-8) or an unusable key. Not a rejection of a
	// token: its reason is ReasonUnspecified.
	ErrInvalidArgument = &Error{ReasonUnspecified, "invalid argument"}
)

// ReasonOf returns the rejection reason of the sentinel in err's chain, or
// ReasonUnspecified when there is none (nil, a foreign error, or
// ErrInvalidArgument).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.reason
	}
	return ReasonUnspecified
}

// tokenError is a sentinel with detail; errors.Is(err, sentinel) holds.
type tokenError struct {
	sentinel *Error
	detail   string
}

func (e *tokenError) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *tokenError) Unwrap() error { return e.sentinel }

// fail wraps a sentinel with detail.
func fail(s *Error, format string, args ...any) error {
	return &tokenError{s, fmt.Sprintf(format, args...)}
}

// atLayer puts the layer number in front of err's detail.
func atLayer(layer int, err error) error {
	var te *tokenError
	if errors.As(err, &te) {
		return &tokenError{te.sentinel, fmt.Sprintf("layer %d: %s", layer, te.detail)}
	}
	return err
}
