package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// USD is the asset of crowdfunds.
const USD = "USD"

// CampaignsRequestedBy names the campaigns' ledger requests (never rename:
// their answers are found by it).
const CampaignsRequestedBy = "escrow.campaigns"

// Campaign-side sentinels.
var (
	ErrCampaignClosed = errors.New("escrow: campaign closed")
	ErrNoPledge       = errors.New("escrow: no such pledge")
	ErrOwnCampaign    = errors.New("escrow: pledge to one's own campaign")
)

// Campaign states.
const (
	CampaignOpen      = "open"
	CampaignClosed    = "closed" // the crowdfund saga settling it
	CampaignSucceeded = "succeeded"
	CampaignFailed    = "failed"
)

// Pledge states.
const (
	PledgePending   = "pending" // the ledger placing the hold
	PledgePlaced    = "placed"
	PledgeRejected  = "rejected"
	PledgeCancelled = "cancelled"
	PledgeCaptured  = "captured"
	PledgeVoided    = "voided"
)

// Pledge is one backer's pledge; its hold id is its id.
type Pledge struct {
	ID, Backer string
	Amount     int64
	State      string
	Failure    string
}

// Campaign is the aggregate of stream campaign-<id>: a crowdfund, its
// pledges and, once closed, its outcome.
type Campaign struct {
	events.Recorder
	ID          string
	Opened      *eventsv1.CampaignOpened
	State       string
	Pledges     map[string]*Pledge
	Order       []string // pledge ids, first first
	Placed      int64    // sum of the placed, uncancelled pledges
	pending     int
	CloseReason string
}

// NewCampaign is a repository factory.
func NewCampaign(id string) *Campaign { return &Campaign{ID: id, Pledges: map[string]*Pledge{}} }

// Escrow is the account captured pledges pass through to the payees.
func (c *Campaign) Escrow() string { return accounts.EscrowID("campaign", c.ID, USD) }

// Deadline of the campaign.
func (c *Campaign) Deadline() time.Time { return c.Opened.GetDeadline().AsTime() }

func usd(units int64) string { return money.FormatUnits(units, 2) + " USD" }

// TransactionID is the ledger transaction of a hold operation on a
// campaign's pledge ("place" and "void" here, "settle" in the crowdfund
// saga); the campaign id in it leads the answer back (CampaignOf).
func TransactionID(campaignID, op, pledgeID string) string {
	return campaignID + "/" + op + "/" + pledgeID
}

// CampaignOf is the campaign a TransactionID names ("" if none).
func CampaignOf(txID string) string {
	id, _, ok := strings.Cut(txID, "/")
	if !ok {
		return ""
	}
	return id
}

// Open records the campaign. Opening it again with the same terms is a
// no-op; with other terms a Conflict.
func (c *Campaign) Open(e *eventsv1.CampaignOpened) error {
	if c.Opened != nil {
		if proto.Equal(c.Opened, e) {
			return nil
		}
		return apperr.New(apperr.Conflict, "campaign %s was already opened with other terms", c.ID)
	}
	return c.record(e)
}

func (c *Campaign) open(now time.Time) error {
	if c.State != CampaignOpen {
		return apperr.Of(apperr.Forbidden, ErrCampaignClosed, "campaign %s is %s and takes no more pledges or cancellations", c.ID, c.State)
	}
	if !now.Before(c.Deadline()) {
		return apperr.Of(apperr.Forbidden, ErrCampaignClosed, "the deadline of campaign %s passed at %s", c.ID, c.Deadline().UTC().Format(time.RFC3339))
	}
	return nil
}

// Pledge records a backer's pledge and the ledger request that places its
// hold (hold id = pledge id). A repeat is a no-op. Errors: Forbidden
// (ErrCampaignClosed: closed, deadline passed, or close-on-goal and the
// goal is reached; ErrOwnCampaign), Conflict (the id was used for another
// pledge), InvalidInput (amount ≤ 0).
func (c *Campaign) Pledge(id, backer string, amount int64, now time.Time) error {
	if p, ok := c.Pledges[id]; ok {
		if p.Backer == backer && p.Amount == amount {
			return nil
		}
		return apperr.New(apperr.Conflict, "pledge id %s was already used for another pledge", id)
	}
	if amount <= 0 {
		return apperr.New(apperr.InvalidInput, "amount must be positive")
	}
	if backer == c.Opened.ArtistId {
		return apperr.Of(apperr.Forbidden, ErrOwnCampaign, "an artist cannot pledge to their own campaign")
	}
	if err := c.open(now); err != nil {
		return err
	}
	if c.Opened.CloseOnGoal && c.Placed >= c.Opened.GetGoal().GetUnits() {
		return apperr.Of(apperr.Forbidden, ErrCampaignClosed, "campaign %s reached its goal and is closing", c.ID)
	}
	tx := TransactionID(c.ID, "place", id)
	return c.record(
		&eventsv1.PledgeRequested{CampaignId: c.ID, PledgeId: id, BackerId: backer, Amount: &eventsv1.Money{Asset: USD, Units: amount}, HoldId: id, TransactionId: tx},
		&eventsv1.LedgerTransactionRequested{TransactionId: tx, RequestedBy: CampaignsRequestedBy, Asset: USD, Kind: eventsv1.PostingKind_POSTING_KIND_PLEDGE_CAPTURE,
			Memo:  fmt.Sprintf("pledge of %s to campaign %s", usd(amount), c.ID),
			Holds: []*eventsv1.HoldOperation{{Op: eventsv1.HoldOperation_OP_PLACE, HoldId: id, Account: accounts.WalletID(backer, USD), Amount: amount}}})
}

// Cancel records a backer's cancellation and the void of its hold. A
// cancelled pledge is a no-op. Errors: NotFound (ErrNoPledge: no such
// pledge of this backer), Forbidden (ErrCampaignClosed; a pledge still
// being placed or rejected).
func (c *Campaign) Cancel(id, backer string, now time.Time) error {
	p, ok := c.Pledges[id]
	if !ok || p.Backer != backer {
		return apperr.Of(apperr.NotFound, ErrNoPledge, "campaign %s has no pledge %s of yours", c.ID, id)
	}
	switch p.State {
	case PledgeCancelled:
		return nil
	case PledgePending:
		return apperr.New(apperr.Forbidden, "pledge %s is still being placed; ask again in a moment", id)
	case PledgeRejected:
		return apperr.New(apperr.Forbidden, "pledge %s was not placed (%s): there is nothing to cancel", id, p.Failure)
	}
	if err := c.open(now); err != nil {
		return err
	}
	tx := TransactionID(c.ID, "void", id)
	return c.record(
		&eventsv1.PledgeCancelled{CampaignId: c.ID, PledgeId: id, BackerId: backer, HoldId: id},
		&eventsv1.LedgerTransactionRequested{TransactionId: tx, RequestedBy: CampaignsRequestedBy, Asset: USD, Kind: eventsv1.PostingKind_POSTING_KIND_PLEDGE_CAPTURE,
			Memo:  fmt.Sprintf("pledge %s to campaign %s cancelled", id, c.ID),
			Holds: []*eventsv1.HoldOperation{{Op: eventsv1.HoldOperation_OP_VOID, HoldId: id}}})
}

// Decide records the ledger's answer to a pledge's hold; answers to voids
// and redeliveries record nothing. A campaign that closes on its goal and
// waited for this answer closes.
func (c *Campaign) Decide(d *eventsv1.BookBatchAppended_Decision, now time.Time) error {
	tx := d.GetRequest().GetTransactionId()
	var p *Pledge
	for _, h := range d.GetRequest().GetHolds() {
		if q, ok := c.Pledges[h.HoldId]; ok && h.Op == eventsv1.HoldOperation_OP_PLACE && TransactionID(c.ID, "place", q.ID) == tx {
			p = q
		}
	}
	if p == nil || p.State != PledgePending {
		return nil
	}
	if d.GetCommitted() != nil {
		if err := c.record(&eventsv1.PledgePlaced{CampaignId: c.ID, PledgeId: p.ID, BackerId: p.Backer, Amount: &eventsv1.Money{Asset: USD, Units: p.Amount}, HoldId: p.ID}); err != nil {
			return err
		}
	} else {
		rj := d.GetRejected()
		if err := c.record(&eventsv1.PledgeRejected{CampaignId: c.ID, PledgeId: p.ID, BackerId: p.Backer, Reason: rj.GetReason(), Detail: rj.GetDetail()}); err != nil {
			return err
		}
	}
	return c.CloseIfDue(now)
}

// CloseIfDue closes an open campaign whose deadline passed at now, or which
// closes on its goal and reached it, once no hold is still being placed
// (the answer's Decide closes it then): CampaignClosed fixes the pledges
// the crowdfund saga settles.
func (c *Campaign) CloseIfDue(now time.Time) error {
	if c.Opened == nil || c.State != CampaignOpen || c.pending > 0 {
		return nil
	}
	reason := "deadline"
	if now.Before(c.Deadline()) {
		if !c.Opened.CloseOnGoal || c.Placed < c.Opened.GetGoal().GetUnits() {
			return nil
		}
		reason = "goal"
	}
	e := &eventsv1.CampaignClosed{CampaignId: c.ID, ArtistId: c.Opened.ArtistId, Goal: c.Opened.Goal, Total: &eventsv1.Money{Asset: USD, Units: c.Placed},
		Splits: c.Opened.Splits, Reason: reason}
	for _, id := range c.Order {
		if p := c.Pledges[id]; p.State == PledgePlaced {
			e.Pledges = append(e.Pledges, &eventsv1.ClosedPledge{PledgeId: p.ID, BackerId: p.Backer, HoldId: p.ID, Amount: &eventsv1.Money{Asset: USD, Units: p.Amount}})
		}
	}
	return c.record(e)
}

// Settled records the campaign's outcome once the crowdfund saga settled
// every hold; nothing for a redelivery.
func (c *Campaign) Settled(e *eventsv1.CampaignSettlementCompleted) error {
	if c.State != CampaignClosed {
		return nil
	}
	n := uint32(0)
	for _, p := range c.Pledges {
		if p.State == PledgePlaced {
			n++
		}
	}
	total := &eventsv1.Money{Asset: USD, Units: c.Placed}
	if e.Outcome == eventsv1.CampaignSettlementStarted_OUTCOME_CAPTURE {
		return c.record(&eventsv1.CampaignSucceeded{CampaignId: c.ID, Total: total, Pledges: n, SongIds: slices.Clone(c.Opened.SongIds)})
	}
	return c.record(&eventsv1.CampaignFailed{CampaignId: c.ID, Total: total, Pledges: n})
}

func (c *Campaign) record(evs ...proto.Message) error { return events.RecordNew(c, evs...) }

// Apply evolves the campaign by one event.
func (c *Campaign) Apply(m proto.Message) error {
	get := func(id string) (*Pledge, error) {
		if p, ok := c.Pledges[id]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("campaign %s: %T for unknown pledge %s", c.ID, m, id)
	}
	switch e := m.(type) {
	case *eventsv1.CampaignOpened:
		c.Opened, c.State = e, CampaignOpen
	case *eventsv1.PledgeRequested:
		c.Pledges[e.PledgeId] = &Pledge{ID: e.PledgeId, Backer: e.BackerId, Amount: e.GetAmount().GetUnits(), State: PledgePending}
		c.Order = append(c.Order, e.PledgeId)
		c.pending++
	case *eventsv1.LedgerTransactionRequested:
	case *eventsv1.PledgePlaced:
		p, err := get(e.PledgeId)
		if err != nil {
			return err
		}
		p.State = PledgePlaced
		c.pending--
		c.Placed += p.Amount
	case *eventsv1.PledgeRejected:
		p, err := get(e.PledgeId)
		if err != nil {
			return err
		}
		p.State, p.Failure = PledgeRejected, strings.TrimSpace(e.Reason.String()+" "+e.Detail)
		c.pending--
	case *eventsv1.PledgeCancelled:
		p, err := get(e.PledgeId)
		if err != nil {
			return err
		}
		p.State = PledgeCancelled
		c.Placed -= p.Amount
	case *eventsv1.CampaignClosed:
		c.State, c.CloseReason = CampaignClosed, e.Reason
	case *eventsv1.CampaignSucceeded:
		c.settle(CampaignSucceeded, PledgeCaptured)
	case *eventsv1.CampaignFailed:
		c.settle(CampaignFailed, PledgeVoided)
	default:
		return fmt.Errorf("campaign %s: unexpected event %T", c.ID, m)
	}
	return nil
}

func (c *Campaign) settle(state, pledges string) {
	c.State = state
	for _, p := range c.Pledges {
		if p.State == PledgePlaced {
			p.State = pledges
		}
	}
}

// NewCampaignOpened builds the opening event from checked terms.
func NewCampaignOpened(id, artist string, goal int64, deadline time.Time, unlocks string, songs []string, splits []*eventsv1.Split, closeOnGoal bool) *eventsv1.CampaignOpened {
	return &eventsv1.CampaignOpened{CampaignId: id, ArtistId: artist, Goal: &eventsv1.Money{Asset: USD, Units: goal}, Deadline: timestamppb.New(deadline),
		Unlocks: unlocks, SongIds: songs, Splits: splits, CloseOnGoal: closeOnGoal}
}
