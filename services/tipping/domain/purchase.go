package domain

import (
	"bytes"
	"fmt"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// Purchase is the aggregate of stream purchase-<id>: a song bought through
// a referral token. The referral saga pays it; the purchase records how
// that ended.
type Purchase struct {
	events.Recorder
	ID      string
	Request *eventsv1.PurchaseRequested
	Status  Status
	Reason  eventsv1.PurchaseFailed_Reason
	Detail  string
	TxID    string
}

// NewPurchase is a repository factory.
func NewPurchase(id string) *Purchase { return &Purchase{ID: id} }

// Start records the request. A repeat of the same request is a no-op.
// Errors: Conflict when the id was used for another purchase.
func (p *Purchase) Start(r *eventsv1.PurchaseRequested) error {
	if q := p.Request; q != nil {
		if q.SongId == r.SongId && q.PurchaserId == r.PurchaserId && bytes.Equal(q.ReferralToken, r.ReferralToken) &&
			bytes.Equal(q.PurchaserPublicKey, r.PurchaserPublicKey) {
			return nil // the price may have moved since: the first request stands
		}
		return apperr.New(apperr.Conflict, "request id was already used for a purchase of song %s", q.SongId)
	}
	return p.record(r)
}

// Complete records the saga's payout; nothing when the purchase is no
// longer pending.
func (p *Purchase) Complete(e *eventsv1.ReferralPayoutCompleted) error {
	if p.Request == nil || p.Status != Pending {
		return nil
	}
	r := p.Request
	return p.record(&eventsv1.PurchaseCompleted{PurchaseId: p.ID, SongId: r.SongId, PurchaserId: r.PurchaserId, Price: r.Price,
		TransactionId: e.TransactionId, PurchaserPublicKey: r.PurchaserPublicKey})
}

// Fail records why nothing was paid; nothing when no longer pending.
func (p *Purchase) Fail(e *eventsv1.ReferralPayoutFailed) error {
	if p.Request == nil || p.Status != Pending {
		return nil
	}
	return p.record(&eventsv1.PurchaseFailed{PurchaseId: p.ID, SongId: p.Request.SongId, PurchaserId: p.Request.PurchaserId,
		Reason: e.Reason, Detail: e.Detail})
}

func (p *Purchase) record(e proto.Message) error { return events.RecordNew(p, e) }

// Apply evolves the purchase by one event.
func (p *Purchase) Apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.PurchaseRequested:
		p.Request, p.Status = e, Pending
	case *eventsv1.PurchaseCompleted:
		p.Status, p.TxID = Completed, e.TransactionId
	case *eventsv1.PurchaseFailed:
		p.Status, p.Reason, p.Detail = Failed, e.Reason, e.Detail
	default:
		return fmt.Errorf("purchase %s: unexpected event %T", p.ID, m)
	}
	return nil
}
