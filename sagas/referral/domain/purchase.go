package domain

import (
	"errors"
	"fmt"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// RequestedBy names the saga on its ledger requests; the saga picks its
// decisions out of the ledger's log by it.
const RequestedBy = "referral"

// SongLookup returns a song's current description, nil when it is not
// known (yet). The aggregate calls it only when it plans, so the price and
// splits are those in force at that moment.
type SongLookup func(songID string) *eventsv1.SongDescription

// Status is where a purchase's payout stands.
type Status uint8

const (
	// Waiting: the request, the chain or neither is known.
	Waiting Status = iota
	// Planned: the ledger was asked for the transaction.
	Planned
	// Completed: the transaction committed (or there was nothing to move).
	Completed
	// Failed: nothing was paid.
	Failed
)

// Referral is the aggregate of stream referral-<purchase id>: one
// purchase's payout, from the request and the chains service's answer
// (which may arrive in either order) to the ledger's decision.
type Referral struct {
	events.Recorder
	ID string
	// Purchase is the request, once seen.
	Purchase *Purchase
	// Chain is the chains service's answer, once seen.
	Chain  *eventsv1.ReferralChainNoted
	Status Status
	// TransactionID is the ledger transaction asked for once Planned.
	TransactionID string
}

// NewReferral is a repository factory.
func NewReferral(id string) *Referral { return &Referral{ID: id} }

// NotePurchase takes the purchase request: noted while the chain is not
// known, planned when it is (see [Referral.NoteChain]). A request seen
// before (a redelivery or a copy) or after the outcome is a no-op: the
// first one counts.
//
// Errors: [ErrSongUnknown] (wrapped) when planning needs the song and songs
// has none; nothing is recorded then.
func (r *Referral) NotePurchase(e *eventsv1.PurchaseRequested, songs SongLookup) error {
	if r.Purchase != nil || r.Status != Waiting {
		return nil
	}
	p := Purchase{PurchaseID: r.ID, SongID: e.SongId, PurchaserID: e.PurchaserId, Asset: e.GetPrice().GetAsset(), Price: e.GetPrice().GetUnits()}
	if r.Chain == nil {
		return r.record(&eventsv1.ReferralPurchaseNoted{PurchaseId: r.ID, SongId: e.SongId, PurchaserId: e.PurchaserId, Price: e.Price})
	}
	return r.settle(p, r.Chain, songs)
}

// NoteChain takes the resolved chain: noted while the request is not
// known, else the purchase is planned: ReferralPayoutPlanned with its
// LedgerTransactionRequested, ReferralPayoutPlanned with
// ReferralPayoutCompleted when there is nothing to move, or
// ReferralPayoutFailed. A song [Plan] finds invalid fails the purchase as
// REASON_NOT_FOR_SALE, an invalid purchase as REASON_REJECTED: neither
// gets better by trying again. A second answer is a no-op.
//
// Errors: [ErrSongUnknown] as for NotePurchase.
func (r *Referral) NoteChain(e *eventsv1.DistributorChainResolved, songs SongLookup) error {
	return r.noteChain(&eventsv1.ReferralChainNoted{PurchaseId: r.ID, DistributorIds: e.DistributorIds}, songs)
}

// NoteRejectedChain takes the rejection of the purchase's referral token:
// noted while the request is not known, else the purchase fails as
// REASON_INVALID_REFERRAL with the rejection's detail. A second answer is a
// no-op.
func (r *Referral) NoteRejectedChain(e *eventsv1.DistributorChainRejected) error {
	return r.noteChain(&eventsv1.ReferralChainNoted{PurchaseId: r.ID, Rejected: true, Reason: e.Reason, Detail: e.Detail}, nil)
}

func (r *Referral) noteChain(c *eventsv1.ReferralChainNoted, songs SongLookup) error {
	if r.Chain != nil || r.Status != Waiting {
		return nil
	}
	if r.Purchase == nil {
		return r.record(c)
	}
	return r.settle(*r.Purchase, c, songs)
}

// settle plans the purchase now that both halves are known.
func (r *Referral) settle(p Purchase, c *eventsv1.ReferralChainNoted, songs SongLookup) error {
	if c.Rejected {
		return r.record(failed(p, eventsv1.PurchaseFailed_REASON_INVALID_REFERRAL, c.Detail))
	}
	var song *eventsv1.SongDescription
	if songs != nil {
		song = songs(p.SongID)
	}
	if song == nil {
		return apperr.Of(apperr.NotFound, ErrSongUnknown, "song %s of purchase %s", p.SongID, r.ID)
	}
	payout, failure, err := Plan(p, song, c.DistributorIds)
	switch {
	case errors.Is(err, ErrInvalidSong):
		failure = &Failure{Reason: eventsv1.PurchaseFailed_REASON_NOT_FOR_SALE, Detail: err.Error()}
	case errors.Is(err, ErrInvalidPurchase):
		failure = &Failure{Reason: eventsv1.PurchaseFailed_REASON_REJECTED, Detail: err.Error()}
	case err != nil:
		return err
	}
	if failure != nil {
		return r.record(failed(p, failure.Reason, failure.Detail))
	}
	if len(payout.Postings) == 0 {
		// E.g. the only payee buying their own song without fees: there is
		// nothing to move, and the ledger refuses a transaction without
		// postings, so the purchase is complete as planned (sequence 0).
		return r.record(payout.Planned(), &eventsv1.ReferralPayoutCompleted{PurchaseId: p.PurchaseID, SongId: p.SongID, PurchaserId: p.PurchaserID})
	}
	return r.record(payout.Planned(), payout.Request(RequestedBy))
}

// Decide records the ledger's decision on the planned transaction:
// ReferralPayoutCompleted when it committed, ReferralPayoutFailed when it
// was rejected (REASON_INSUFFICIENT_FUNDS for insufficient funds, else
// REASON_REJECTED; the detail is "ledger: <reason> <detail>"). A decision
// on another transaction, before the plan or after the outcome is a no-op.
func (r *Referral) Decide(d *eventsv1.BookBatchAppended_Decision) error {
	if r.Status != Planned || r.Purchase == nil || d.GetRequest().GetTransactionId() != r.TransactionID {
		return nil
	}
	p := *r.Purchase
	if c := d.GetCommitted(); c != nil {
		return r.record(&eventsv1.ReferralPayoutCompleted{PurchaseId: p.PurchaseID, SongId: p.SongID, PurchaserId: p.PurchaserID,
			TransactionId: r.TransactionID, Sequence: c.Sequence})
	}
	rej := d.GetRejected()
	if rej == nil {
		return nil // a decision without an outcome decides nothing
	}
	reason := eventsv1.PurchaseFailed_REASON_REJECTED
	if rej.Reason == eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS {
		reason = eventsv1.PurchaseFailed_REASON_INSUFFICIENT_FUNDS
	}
	return r.record(failed(p, reason, "ledger: "+rej.Reason.String()+" "+rej.Detail))
}

func failed(p Purchase, reason eventsv1.PurchaseFailed_Reason, detail string) *eventsv1.ReferralPayoutFailed {
	return &eventsv1.ReferralPayoutFailed{PurchaseId: p.PurchaseID, SongId: p.SongID, PurchaserId: p.PurchaserID, Reason: reason, Detail: detail}
}

// record applies new events to the aggregate, as a replay would, and
// records them.
func (r *Referral) record(evs ...proto.Message) error { return events.RecordNew(r, evs...) }

// Apply evolves the aggregate by one event.
func (r *Referral) Apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.ReferralPurchaseNoted:
		r.Purchase = &Purchase{PurchaseID: e.PurchaseId, SongID: e.SongId, PurchaserID: e.PurchaserId,
			Asset: e.GetPrice().GetAsset(), Price: e.GetPrice().GetUnits()}
	case *eventsv1.ReferralChainNoted:
		r.Chain = e
	case *eventsv1.ReferralPayoutPlanned:
		// A request that came second was never noted on its own: the plan
		// carries it.
		r.Purchase = &Purchase{PurchaseID: e.PurchaseId, SongID: e.SongId, PurchaserID: e.PurchaserId,
			Asset: e.GetPrice().GetAsset(), Price: e.GetPrice().GetUnits()}
		if r.Chain == nil {
			r.Chain = &eventsv1.ReferralChainNoted{PurchaseId: e.PurchaseId, DistributorIds: e.DistributorIds}
		}
		r.Status, r.TransactionID = Planned, e.TransactionId
	case *eventsv1.LedgerTransactionRequested:
	case *eventsv1.ReferralPayoutCompleted:
		r.Status = Completed
	case *eventsv1.ReferralPayoutFailed:
		r.Status = Failed
	default:
		return fmt.Errorf("referral %s: unexpected event %T", r.ID, m)
	}
	return nil
}
