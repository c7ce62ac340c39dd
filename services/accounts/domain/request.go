package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// PostingKind says why money moved; the values equal those of
// eventsv1.PostingKind.
type PostingKind int32

// Posting kinds.
const (
	KindDeposit PostingKind = iota + 1
	KindWithdrawal
	KindPromotion
	KindRoyalty
	KindBurn
	KindTip
	KindPurchase
	KindReferralFee
	KindSubscription
	KindPledgeCapture
	KindEscrowRelease
	KindEscrowForfeit
)

// Valid reports whether k is one of the kinds above.
func (k PostingKind) Valid() bool { return k >= KindDeposit && k <= KindEscrowForfeit }

// Posting moves Amount minor units from Debit to Credit.
type Posting struct {
	Debit  string
	Credit string
	// Amount in minor units of the book's asset; must be > 0.
	Amount int64
	// Kind overrides the request's Kind for this posting; zero means the
	// request's Kind.
	Kind PostingKind
}

// HoldOpKind is the operation of a [HoldOp].
type HoldOpKind uint8

// Hold operations.
const (
	// HoldPlace reserves Amount on Account (a user account).
	HoldPlace HoldOpKind = iota + 1
	// HoldCapture posts Amount of the hold (zero: all of it) from the hold's
	// account to Credit and releases the rest.
	HoldCapture
	// HoldVoid releases the hold; nothing moves.
	HoldVoid
)

func (k HoldOpKind) String() string {
	switch k {
	case HoldPlace:
		return "place"
	case HoldCapture:
		return "capture"
	case HoldVoid:
		return "void"
	}
	return "unknown"
}

// HoldOp is one hold operation of a request. Fields that do not belong to the
// operation must be zero.
type HoldOp struct {
	Kind   HoldOpKind
	HoldID string
	// Account holds the funds (place only).
	Account string
	// Amount: place: > 0; capture: 0 for the whole hold, else 1..held;
	// void: 0.
	Amount int64
	// ExpiresAt is when the hold voids itself (place only; zero: never). It
	// must be after the book's clock (the last ExpireHolds time).
	ExpiresAt time.Time
	// Credit receives the captured amount (capture only).
	Credit string
}

// Request is one all-or-nothing ledger request: the postings and the hold
// operations apply together or not at all.
type Request struct {
	// ID is the idempotency key: 1..256 bytes.
	ID string
	// Asset is the book's asset code.
	Asset string
	// Kind is the reason of the request; postings and captures without their
	// own kind carry it.
	Kind PostingKind
	// Postings, at most Policy.MaxPostings.
	Postings []Posting
	// Holds are hold operations, at most Policy.MaxHoldOps; a hold id appears
	// at most once per request.
	Holds []HoldOp
	// RequestedBy and Memo are part of the content (a retry must repeat them)
	// but the ledger does not interpret them.
	RequestedBy string
	Memo        string
}

// Bounds of request fields.
const (
	// MaxIDLen bounds request and hold ids.
	MaxIDLen = 256
	// MaxTextLen bounds RequestedBy and Memo.
	MaxTextLen = 4096
)

// Fingerprint is the SHA-256 of the canonical encoding of a request's
// content (everything but the id). Two requests with the same fingerprint
// are the same request.
type Fingerprint [32]byte

// Fingerprint returns the request's content fingerprint.
func (r *Request) Fingerprint() Fingerprint {
	return sha256.Sum256(appendCanonical(nil, r))
}

// appendCanonical appends an injective encoding of the request content: every
// variable-length field is length-prefixed and every count is explicit.
func appendCanonical(buf []byte, r *Request) []byte {
	buf = append(buf, 'R', 1)
	buf = appendString(buf, r.Asset)
	buf = binary.AppendVarint(buf, int64(r.Kind))
	buf = appendString(buf, r.RequestedBy)
	buf = appendString(buf, r.Memo)
	buf = binary.AppendUvarint(buf, uint64(len(r.Postings)))
	for i := range r.Postings {
		p := &r.Postings[i]
		buf = appendString(buf, p.Debit)
		buf = appendString(buf, p.Credit)
		buf = binary.AppendVarint(buf, p.Amount)
		buf = binary.AppendVarint(buf, int64(p.Kind))
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.Holds)))
	for i := range r.Holds {
		h := &r.Holds[i]
		buf = append(buf, byte(h.Kind))
		buf = appendString(buf, h.HoldID)
		buf = appendString(buf, h.Account)
		buf = binary.AppendVarint(buf, h.Amount)
		if h.ExpiresAt.IsZero() {
			buf = append(buf, 0)
		} else {
			buf = append(buf, 1)
			buf = binary.AppendVarint(buf, h.ExpiresAt.Unix())
			buf = binary.AppendUvarint(buf, uint64(h.ExpiresAt.Nanosecond()))
		}
		buf = appendString(buf, h.Credit)
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// Status is the result of a request.
type Status uint8

const (
	// Committed: the request was applied.
	Committed Status = iota + 1
	// Rejected: nothing was applied.
	Rejected
)

func (s Status) String() string {
	switch s {
	case Committed:
		return "committed"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// HoldEffect is what one hold operation did, for the HoldPlaced, HoldCaptured
// and HoldVoided events.
type HoldEffect struct {
	Kind    HoldOpKind
	HoldID  string
	Account string
	// Amount is the amount placed, captured or voided.
	Amount int64
	// Released is the part of a captured hold given back (held − captured).
	Released int64
	// Credit received a captured amount.
	Credit string
	// ExpiresAt of a placed hold (zero: never).
	ExpiresAt time.Time
	// Expired is true for a void by [Book.ExpireHolds].
	Expired bool
}

// Outcome is the book's answer to a request.
type Outcome struct {
	// ID is the request id.
	ID     string
	Status Status
	// Sequence is the position of a committed request in its book, 1-based
	// and without gaps over committed requests; 0 when rejected.
	Sequence uint64
	// PolicyVersion is the version of the policy the request was decided
	// under.
	PolicyVersion uint64
	// Holds lists the effects of the request's hold operations, in request
	// order (committed only).
	Holds []HoldEffect
	// Err is the [*Rejection] of a rejected request, nil when committed.
	Err error
	// Reason is the rejection reason code, "" when committed.
	Reason Reason
	// Account is the account that caused a rejection, when there is one.
	Account string
	// Replayed is true when the id was decided before and this is that first
	// outcome returned again: nothing moved this time.
	Replayed bool
}

// Committed reports whether the request was applied.
func (o Outcome) Committed() bool { return o.Status == Committed }
