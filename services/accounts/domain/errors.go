package domain

import (
	"errors"
	"fmt"
)

// ErrorKind classifies domain errors for the ports (one interceptor maps it to
// a connect.Code).
type ErrorKind uint8

const (
	// KindUnknown is not a domain error.
	KindUnknown ErrorKind = iota
	// KindInvalidInput: the request is malformed or breaks a rule about its
	// content.
	KindInvalidInput
	// KindNotFound: something the request names does not exist.
	KindNotFound
	// KindConflict: the request clashes with what happened before.
	KindConflict
	// KindForbidden: the request is well-formed but the ledger refuses it.
	KindForbidden
)

// String returns the kind's name.
func (k ErrorKind) String() string {
	switch k {
	case KindInvalidInput:
		return "invalid_input"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindForbidden:
		return "forbidden"
	}
	return "unknown"
}

// Reason is a rejection reason code of LedgerTransactionRejected.
type Reason string

// The rejection reason codes; every rejection has exactly one.
const (
	ReasonInsufficientFunds Reason = "insufficient_funds"
	ReasonSupplyCap         Reason = "supply_cap"
	ReasonIDConflict        Reason = "id_conflict"
	ReasonInvalid           Reason = "invalid"
	ReasonUnknownAccount    Reason = "unknown_account"
)

// Error is a domain sentinel: a stable code, a kind and a reason. Rejections
// wrap one in a [Rejection] with details; test with errors.Is.
type Error struct {
	code   string
	kind   ErrorKind
	reason Reason
	msg    string
}

func (e *Error) Error() string { return "accounts: " + e.msg }

// Code is the sentinel's stable code, e.g. "self_posting"; snapshots store it.
func (e *Error) Code() string { return e.code }

// Kind is the error kind.
func (e *Error) Kind() ErrorKind { return e.kind }

// Reason is the rejection reason code.
func (e *Error) Reason() Reason { return e.reason }

// Sentinels. The comment gives kind / reason.
var (
	// ErrInsufficientFunds: a user account (or, in a token book, a system
	// account other than mint) would end below zero available.
	// Forbidden / insufficient_funds.
	ErrInsufficientFunds = sentinel("insufficient_funds", KindForbidden, ReasonInsufficientFunds, "insufficient funds")
	// ErrSupplyCap: the request would raise the token supply past the cap.
	// Forbidden / supply_cap.
	ErrSupplyCap = sentinel("supply_cap", KindForbidden, ReasonSupplyCap, "supply cap reached")
	// ErrIDConflict: the request id was used before with different content.
	// Conflict / id_conflict.
	ErrIDConflict = sentinel("id_conflict", KindConflict, ReasonIDConflict, "request id reused with different content")
	// ErrUnknownAccount: a user account that is not open, an account of
	// another book, or mint/burn in a book without a supply cap.
	// NotFound / unknown_account.
	ErrUnknownAccount = sentinel("unknown_account", KindNotFound, ReasonUnknownAccount, "unknown account")

	// ErrInvalidRequest: a malformed request (empty or long id, unknown kind,
	// nothing to do, a field that does not belong to the operation).
	// InvalidInput / invalid.
	ErrInvalidRequest = sentinel("invalid_request", KindInvalidInput, ReasonInvalid, "invalid request")
	// ErrInvalidAmount: an amount ≤ 0 (or < 0 for a capture).
	// InvalidInput / invalid.
	ErrInvalidAmount = sentinel("invalid_amount", KindInvalidInput, ReasonInvalid, "invalid amount")
	// ErrUnknownAsset: the request's asset is not in the policy's asset
	// table. InvalidInput / invalid.
	ErrUnknownAsset = sentinel("unknown_asset", KindInvalidInput, ReasonInvalid, "unknown asset")
	// ErrAssetMismatch: the request's asset is known but is not the book's.
	// InvalidInput / invalid.
	ErrAssetMismatch = sentinel("asset_mismatch", KindInvalidInput, ReasonInvalid, "asset does not match the book")
	// ErrTooManyPostings: more postings than Policy.MaxPostings.
	// InvalidInput / invalid.
	ErrTooManyPostings = sentinel("too_many_postings", KindInvalidInput, ReasonInvalid, "too many postings")
	// ErrTooManyHoldOps: more hold operations than Policy.MaxHoldOps.
	// InvalidInput / invalid.
	ErrTooManyHoldOps = sentinel("too_many_hold_ops", KindInvalidInput, ReasonInvalid, "too many hold operations")
	// ErrSelfPosting: a posting (or capture) from an account to itself.
	// InvalidInput / invalid.
	ErrSelfPosting = sentinel("self_posting", KindInvalidInput, ReasonInvalid, "posting from an account to itself")
	// ErrInvalidAccountID: an account id that does not follow the scheme.
	// InvalidInput / invalid.
	ErrInvalidAccountID = sentinel("invalid_account_id", KindInvalidInput, ReasonInvalid, "invalid account id")
	// ErrInvalidPosting: a posting that credits mint or debits burn.
	// InvalidInput / invalid.
	ErrInvalidPosting = sentinel("invalid_posting", KindInvalidInput, ReasonInvalid, "invalid posting")
	// ErrInvalidHold: a malformed hold operation (bad or repeated hold id,
	// hold on a system account, expiry out of range).
	// InvalidInput / invalid.
	ErrInvalidHold = sentinel("invalid_hold", KindInvalidInput, ReasonInvalid, "invalid hold operation")
	// ErrAmountOverflow: a balance or total would leave the int64 range.
	// InvalidInput / invalid.
	ErrAmountOverflow = sentinel("amount_overflow", KindInvalidInput, ReasonInvalid, "amount overflow")
	// ErrUnknownHold: capture or void of a hold id never placed.
	// NotFound / invalid.
	ErrUnknownHold = sentinel("unknown_hold", KindNotFound, ReasonInvalid, "unknown hold")
	// ErrHoldClosed: capture or void of a hold already captured, voided or
	// expired. Conflict / invalid.
	ErrHoldClosed = sentinel("hold_closed", KindConflict, ReasonInvalid, "hold already closed")
	// ErrHoldExists: placing a hold with an id used before.
	// Conflict / invalid.
	ErrHoldExists = sentinel("hold_exists", KindConflict, ReasonInvalid, "hold id already used")
	// ErrCaptureExceedsHold: a capture of more than the held amount.
	// InvalidInput / invalid.
	ErrCaptureExceedsHold = sentinel("capture_exceeds_hold", KindInvalidInput, ReasonInvalid, "capture exceeds the held amount")
	// ErrHoldExpired: a hold whose expiry is not after the book's clock.
	// InvalidInput / invalid.
	ErrHoldExpired = sentinel("hold_expired", KindInvalidInput, ReasonInvalid, "hold expiry already passed")

	// ErrInvalidPolicy: a policy that fails validation (not a rejection).
	// InvalidInput / invalid.
	ErrInvalidPolicy = sentinel("invalid_policy", KindInvalidInput, ReasonInvalid, "invalid policy")
	// ErrPolicyVersion: a policy whose version is not newer than the book's.
	// Conflict / invalid.
	ErrPolicyVersion = sentinel("policy_version", KindConflict, ReasonInvalid, "policy version not newer")
	// ErrCorruptSnapshot: bytes that are not a valid book snapshot.
	// InvalidInput / invalid.
	ErrCorruptSnapshot = sentinel("corrupt_snapshot", KindInvalidInput, ReasonInvalid, "corrupt snapshot")
)

var sentinels = map[string]*Error{}

func sentinel(code string, kind ErrorKind, reason Reason, msg string) *Error {
	e := &Error{code: code, kind: kind, reason: reason, msg: msg}
	if _, dup := sentinels[code]; dup {
		panic("domain: duplicate error code " + code)
	}
	sentinels[code] = e
	return e
}

// Rejection is the error of a rejected request or operation: a sentinel plus
// the account that caused it (if any) and a precise detail.
type Rejection struct {
	// Err is the sentinel; errors.Is(rejection, Err) holds.
	Err *Error
	// Account is the account that caused the rejection, when there is one.
	Account string
	// Detail says exactly what was wrong.
	Detail string
}

func (r *Rejection) Error() string {
	if r.Detail == "" {
		return r.Err.Error()
	}
	return r.Err.Error() + ": " + r.Detail
}

// Unwrap returns the sentinel.
func (r *Rejection) Unwrap() error { return r.Err }

func reject(e *Error, account, format string, args ...any) *Rejection {
	return &Rejection{Err: e, Account: account, Detail: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the domain error in err's chain, or KindUnknown.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.kind
	}
	return KindUnknown
}

// ReasonOf returns the rejection reason of the domain error in err's chain,
// or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.reason
	}
	return ""
}

// KindName names the error's kind for the ports' code mapping
// (internal/platform/apperr).
func (e *Error) KindName() string { return e.kind.String() }
