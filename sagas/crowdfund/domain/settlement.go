// Package domain holds the crowdfund saga's rules (DESIGN §7): a closed
// campaign's holds are all captured to its payees or all voided. The
// outcome and the full set of holds are fixed first, so a crash
// mid-settlement resumes to the same end. No I/O.
package domain

import (
	"fmt"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	escrow "github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
)

// RequestedBy names the saga's ledger requests (never rename: their
// answers are found by it).
const RequestedBy = "crowdfund"

// USD is the asset of crowdfunds.
const USD = "USD"

// Window is how many hold requests are in flight at once: the ledger
// gets a campaign's holds in waves, not all in one append.
const Window = 32

// Outcomes.
const (
	Capture = eventsv1.CampaignSettlementStarted_OUTCOME_CAPTURE
	Void    = eventsv1.CampaignSettlementStarted_OUTCOME_VOID
)

// Hold states within a settlement.
const (
	holdWaiting   = iota // not requested yet
	holdRequested        // the ledger deciding
	holdSettled          // captured or voided
)

type hold struct {
	id     string
	amount int64
	state  int
}

// Settlement is the aggregate of stream crowdfund-<campaign id>.
type Settlement struct {
	events.Recorder
	CampaignID string
	Outcome    eventsv1.CampaignSettlementStarted_Outcome
	Completed  bool
	splits     []*eventsv1.Split
	holds      []*hold
	byID       map[string]*hold
	byTx       map[string]*hold
}

// NewSettlement is a repository factory.
func NewSettlement(id string) *Settlement {
	return &Settlement{CampaignID: id, byID: map[string]*hold{}, byTx: map[string]*hold{}}
}

// Escrow is the account captured pledges pass through to the payees.
func Escrow(campaignID string) string { return accounts.EscrowID("campaign", campaignID, USD) }

// TransactionID is the ledger transaction settling one hold; the campaign
// id in it leads the answer back (escrow.CampaignOf).
func TransactionID(campaignID, holdID string) string {
	return escrow.TransactionID(campaignID, "settle", holdID)
}

// Started reports whether the outcome is fixed.
func (s *Settlement) Started() bool {
	return s.Outcome != eventsv1.CampaignSettlementStarted_OUTCOME_UNSPECIFIED
}

// Start fixes the outcome of a closed campaign (capture when its standing
// pledges reach the goal, void otherwise) and its holds, and requests the
// first wave. A redelivery records nothing.
func (s *Settlement) Start(c *eventsv1.CampaignClosed) error {
	if s.Started() {
		return nil
	}
	outcome := Void
	if len(c.Pledges) > 0 && c.GetTotal().GetUnits() >= c.GetGoal().GetUnits() {
		outcome = Capture
	}
	e := &eventsv1.CampaignSettlementStarted{CampaignId: s.CampaignID, Outcome: outcome, Total: c.Total, Pledges: c.Pledges, Splits: c.Splits}
	for _, p := range c.Pledges {
		e.HoldIds = append(e.HoldIds, p.HoldId)
	}
	if err := s.record(e); err != nil {
		return err
	}
	return s.next()
}

// next requests holds up to the window, or completes once every hold is
// settled.
func (s *Settlement) next() error {
	inFlight := 0
	var evs []proto.Message
	for _, h := range s.holds {
		if h.state == holdRequested {
			inFlight++
		}
	}
	for _, h := range s.holds {
		if inFlight >= Window {
			break
		}
		if h.state != holdWaiting {
			continue
		}
		r, err := s.request(h)
		if err != nil {
			return err
		}
		evs = append(evs, r)
		inFlight++
	}
	if len(evs) == 0 && inFlight == 0 && !s.Completed {
		evs = append(evs, &eventsv1.CampaignSettlementCompleted{CampaignId: s.CampaignID, Outcome: s.Outcome})
	}
	return s.record(evs...)
}

func (s *Settlement) request(h *hold) (*eventsv1.LedgerTransactionRequested, error) {
	r := &eventsv1.LedgerTransactionRequested{TransactionId: TransactionID(s.CampaignID, h.id), RequestedBy: RequestedBy, Asset: USD,
		Kind: eventsv1.PostingKind_POSTING_KIND_PLEDGE_CAPTURE}
	if s.Outcome == Void {
		r.Memo = fmt.Sprintf("campaign %s failed: pledge hold voided", s.CampaignID)
		r.Holds = []*eventsv1.HoldOperation{{Op: eventsv1.HoldOperation_OP_VOID, HoldId: h.id}}
		return r, nil
	}
	// The hold is captured into the campaign's escrow and paid on to the
	// payees in the same transaction: all of it moves or none.
	escrow := Escrow(s.CampaignID)
	parts, err := songview.Payments(s.splits, USD, h.amount)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: payees: %w", s.CampaignID, err)
	}
	r.Memo = fmt.Sprintf("campaign %s succeeded: pledge captured", s.CampaignID)
	r.OpenEscrows = []string{escrow}
	r.Holds = []*eventsv1.HoldOperation{{Op: eventsv1.HoldOperation_OP_CAPTURE, HoldId: h.id, Credit: escrow}}
	for _, p := range parts {
		r.Postings = append(r.Postings, &eventsv1.Posting{Debit: escrow, Credit: p.Account, Asset: USD, Amount: p.Units, Kind: r.Kind})
	}
	return r, nil
}

// Decide records the ledger's answer for one hold and requests the next.
// A void the ledger refuses leaves nothing held (the hold is closed
// already), so it counts as settled. A refused capture is logged and
// leaves the settlement waiting: the outcome is fixed, and capturing the
// rest would break all-or-nothing less than stopping does.
func (s *Settlement) Decide(d *eventsv1.BookBatchAppended_Decision) error {
	h, ok := s.byTx[d.GetRequest().GetTransactionId()]
	if !ok || h.state != holdRequested {
		return nil
	}
	if rj := d.GetRejected(); rj != nil && s.Outcome == Capture {
		slog.Error("crowdfund: the ledger refused a capture; the settlement waits", "campaign", s.CampaignID, "hold", h.id,
			"reason", rj.GetReason().String(), "detail", rj.GetDetail())
		return nil
	}
	e := &eventsv1.CampaignHoldSettled{CampaignId: s.CampaignID, HoldId: h.id, Outcome: s.Outcome, TransactionId: d.Request.TransactionId}
	if s.Outcome == Capture {
		e.Amount = &eventsv1.Money{Asset: USD, Units: h.amount}
	}
	if err := s.record(e); err != nil {
		return err
	}
	return s.next()
}

func (s *Settlement) record(evs ...proto.Message) error { return events.RecordNew(s, evs...) }

// Apply evolves the settlement by one event.
func (s *Settlement) Apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.CampaignSettlementStarted:
		s.Outcome, s.splits = e.Outcome, e.Splits
		for _, p := range e.Pledges {
			h := &hold{id: p.HoldId, amount: p.GetAmount().GetUnits()}
			s.holds = append(s.holds, h)
			s.byID[h.id] = h
		}
	case *eventsv1.LedgerTransactionRequested:
		if len(e.Holds) != 1 {
			return fmt.Errorf("settlement %s: a request with %d hold operations", s.CampaignID, len(e.Holds))
		}
		h, ok := s.byID[e.Holds[0].HoldId]
		if !ok {
			return fmt.Errorf("settlement %s: a request for unknown hold %s", s.CampaignID, e.Holds[0].HoldId)
		}
		h.state = holdRequested
		s.byTx[e.TransactionId] = h
	case *eventsv1.CampaignHoldSettled:
		if h, ok := s.byID[e.HoldId]; ok {
			h.state = holdSettled
		}
	case *eventsv1.CampaignSettlementCompleted:
		s.Completed = true
	default:
		return fmt.Errorf("settlement %s: unexpected event %T", s.CampaignID, m)
	}
	return nil
}
