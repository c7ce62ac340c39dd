package domain

import (
	"errors"

	"github.com/fanfare/fanfare/internal/platform/apperr"
)

// kinded wraps a sentinel with detail and the kind the ports map to a
// Connect code.
var kinded = apperr.Of

// Sentinels; errors returned by this package wrap exactly one of them.
var (
	// ErrInvalidDescription: a description breaks a rule about its content.
	ErrInvalidDescription = errors.New("invalid description")
	// ErrNotFound: no such song (or version).
	ErrNotFound = errors.New("song not found")
	// ErrRequestConflict: an idempotency key reused with other content.
	ErrRequestConflict = errors.New("request id already used with other content")
	// ErrState: the song is not in a state that allows the command.
	ErrState = errors.New("song state does not allow this")
	// ErrNotAllowed: the caller may not do this to the song.
	ErrNotAllowed = errors.New("not allowed")
)

func invalid(format string, args ...any) error {
	return kinded(apperr.InvalidInput, ErrInvalidDescription, format, args...)
}
