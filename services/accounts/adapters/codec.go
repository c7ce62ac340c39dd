// Package adapters connects the ledger domain to the event store: the book
// writer (one per asset, batched, fenced) and the conversions between domain
// requests and their events.
package adapters

import (
	"fmt"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// RequestToEvent converts a domain request into its event form.
func RequestToEvent(r *domain.Request) *eventsv1.LedgerTransactionRequested {
	e := &eventsv1.LedgerTransactionRequested{
		TransactionId: r.ID,
		Asset:         r.Asset,
		Kind:          eventsv1.PostingKind(r.Kind),
		RequestedBy:   r.RequestedBy,
		Memo:          r.Memo,
	}
	for _, p := range r.Postings {
		e.Postings = append(e.Postings, &eventsv1.Posting{Debit: p.Debit, Credit: p.Credit, Asset: r.Asset, Amount: p.Amount, Kind: eventsv1.PostingKind(p.Kind)})
	}
	for _, h := range r.Holds {
		op := &eventsv1.HoldOperation{Op: eventsv1.HoldOperation_Op(h.Kind), HoldId: h.HoldID, Account: h.Account, Amount: h.Amount, Credit: h.Credit}
		if !h.ExpiresAt.IsZero() {
			op.ExpiresAt = timestamppb.New(h.ExpiresAt)
		}
		e.Holds = append(e.Holds, op)
	}
	return e
}

// RequestFromEvent converts the event form back. A posting whose asset
// differs from the request's makes the request invalid (the book rejects
// it), so the asset is checked here and reported as an error.
func RequestFromEvent(e *eventsv1.LedgerTransactionRequested) (domain.Request, error) {
	r := domain.Request{
		ID:          e.TransactionId,
		Asset:       e.Asset,
		Kind:        domain.PostingKind(e.Kind),
		RequestedBy: e.RequestedBy,
		Memo:        e.Memo,
	}
	for i, p := range e.Postings {
		if p.Asset != "" && p.Asset != e.Asset {
			return r, fmt.Errorf("posting %d is in %s, the transaction in %s", i+1, p.Asset, e.Asset)
		}
		r.Postings = append(r.Postings, domain.Posting{Debit: p.Debit, Credit: p.Credit, Amount: p.Amount, Kind: domain.PostingKind(p.Kind)})
	}
	for _, h := range e.Holds {
		op := domain.HoldOp{Kind: domain.HoldOpKind(h.Op), HoldID: h.HoldId, Account: h.Account, Amount: h.Amount, Credit: h.Credit}
		if h.ExpiresAt != nil {
			op.ExpiresAt = h.ExpiresAt.AsTime()
		}
		r.Holds = append(r.Holds, op)
	}
	return r, nil
}

var reasonToEvent = map[domain.Reason]eventsv1.LedgerTransactionRejected_Reason{
	domain.ReasonInsufficientFunds: eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS,
	domain.ReasonSupplyCap:         eventsv1.LedgerTransactionRejected_REASON_SUPPLY_CAP,
	domain.ReasonUnknownAccount:    eventsv1.LedgerTransactionRejected_REASON_UNKNOWN_ACCOUNT,
	domain.ReasonInvalid:           eventsv1.LedgerTransactionRejected_REASON_INVALID,
	domain.ReasonIDConflict:        eventsv1.LedgerTransactionRejected_REASON_IDEMPOTENCY_CONFLICT,
}

// ReasonCode is the rejection code for an event reason
// (insufficient_funds, supply_cap, id_conflict, invalid, unknown_account).
func ReasonCode(r eventsv1.LedgerTransactionRejected_Reason) string {
	for k, v := range reasonToEvent {
		if v == r {
			return string(k)
		}
	}
	return "unknown"
}

// DecisionEntry is the log entry for a request and its outcome (the
// writer logs it; replays and benchmarks rebuild it).
func DecisionEntry(req *domain.Request, out domain.Outcome) *eventsv1.BookBatchAppended_Entry {
	ev := RequestToEvent(req)
	d := &eventsv1.BookBatchAppended_Decision{Request: ev, PolicyVersion: out.PolicyVersion}
	if out.Committed() {
		// Everything that moved: the postings, then what captures paid out.
		moved := append([]*eventsv1.Posting(nil), ev.Postings...)
		for _, h := range out.Holds {
			if h.Kind == domain.HoldCapture && h.Amount > 0 {
				moved = append(moved, &eventsv1.Posting{Debit: h.Account, Credit: h.Credit, Asset: req.Asset, Amount: h.Amount, Kind: eventsv1.PostingKind(req.Kind)})
			}
		}
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{
			TransactionId: req.ID, Postings: moved, RequestedBy: req.RequestedBy, Memo: req.Memo, Sequence: out.Sequence}}
	} else {
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{
			TransactionId: req.ID, Reason: reasonToEvent[out.Reason], AccountId: out.Account, Detail: errText(out.Err), RequestedBy: req.RequestedBy}}
	}
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Decision{Decision: d}}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func openedEntry(account, asset string) *eventsv1.BookBatchAppended_Entry {
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Opened{Opened: &eventsv1.AccountOpened{AccountId: account, Asset: asset}}}
}

func expiredEntry(t time.Time) *eventsv1.BookBatchAppended_Entry {
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_HoldsExpiredAt{HoldsExpiredAt: timestamppb.New(t)}}
}
