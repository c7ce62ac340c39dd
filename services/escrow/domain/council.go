// Package domain holds the escrow service's rules (DESIGN §7): the
// moderator council that releases or forfeits an artist's discovery
// escrow, with the artist's payees (stream council-<artist id>), and
// crowdfund campaigns (stream campaign-<id>). No I/O.
package domain

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
)

// FAN is the asset of discovery escrows.
const FAN = "FAN"

// RequestedBy names the escrow service on its ledger requests (never
// rename: its answers are found by it).
const RequestedBy = "escrow"

// CouncilRules are the council's membership and threshold.
type CouncilRules struct {
	// Members may propose and approve; empty: every moderator.
	Members []string
	// Quorum is how many distinct members must approve (default 2).
	Quorum uint32
}

// DefaultCouncilRules: any moderator, 2 approvals.
func DefaultCouncilRules() CouncilRules { return CouncilRules{Quorum: 2} }

// CouncilRulesFromPolicy reads a policy's escrow rules; nil or a zero
// quorum keeps the defaults. Errors: InvalidInput (ErrInvalidProposal)
// for a quorum larger than a named membership, which no proposal could
// reach.
func CouncilRulesFromPolicy(p *eventsv1.EscrowRules) (CouncilRules, error) {
	r := DefaultCouncilRules()
	if p == nil {
		return r, nil
	}
	if p.CouncilQuorum > 0 {
		r.Quorum = p.CouncilQuorum
	}
	r.Members = slices.Clone(p.CouncilMembers)
	if len(r.Members) > 0 && int(r.Quorum) > len(r.Members) {
		return CouncilRules{}, apperr.Of(apperr.InvalidInput, ErrInvalidProposal, "a quorum of %d cannot be reached by %d council members", r.Quorum, len(r.Members))
	}
	return r, nil
}

// Sentinels; errors of this package wrap one of them (apperr.Of).
var (
	ErrNotMember       = errors.New("escrow: not on the council")
	ErrInvalidProposal = errors.New("escrow: invalid proposal")
	ErrOverBalance     = errors.New("escrow: more than the escrow holds")
	ErrNoProposal      = errors.New("escrow: no such proposal")
	ErrClosed          = errors.New("escrow: proposal no longer open")
	ErrAlreadyApproved = errors.New("escrow: already approved")
)

// Proposal states.
const (
	Open       = "open"
	Authorized = "authorized" // quorum reached, the ledger deciding
	Settled    = "settled"
	Failed     = "failed"
)

// Proposal is one proposed release or forfeit.
type Proposal struct {
	ID         string
	Action     eventsv1.EscrowAction
	Amount     int64
	ProposedBy string
	Quorum     uint32
	Approvals  []string // the proposer first
	State      string
	Reason     string // the proposer's
	Failure    string // why the ledger refused it
}

// Council is the aggregate of stream council-<artist id>.
type Council struct {
	events.Recorder
	Artist    string
	Proposals map[string]*Proposal
	// payees set by the artist (nil: the artist alone).
	payees []*eventsv1.Split
}

// Payees are who the artist's released escrow and captured pledges pay.
func (c *Council) Payees() []*eventsv1.Split {
	if len(c.payees) == 0 {
		return []*eventsv1.Split{{PayeeId: c.Artist, SharePpm: 1_000_000}}
	}
	return c.payees
}

// SetPayees records the artist's payees (checked by the caller: the
// songs' split rules). The same list again is a no-op.
func (c *Council) SetPayees(splits []*eventsv1.Split) error {
	if slices.EqualFunc(splits, c.payees, func(a, b *eventsv1.Split) bool { return proto.Equal(a, b) }) {
		return nil
	}
	return c.record(&eventsv1.ArtistPayeesSet{ArtistId: c.Artist, Splits: splits})
}

// NewCouncil is a repository factory.
func NewCouncil(artist string) *Council {
	return &Council{Artist: artist, Proposals: map[string]*Proposal{}}
}

// Escrow is the artist's discovery escrow account.
func (c *Council) Escrow() string { return accounts.EscrowID("discovery", c.Artist, FAN) }

// reserved is what authorized actions are about to take out of the escrow.
func (c *Council) reserved(except string) int64 {
	var n int64
	for _, p := range c.Proposals {
		if p.State == Authorized && p.ID != except {
			n += p.Amount
		}
	}
	return n
}

func member(r CouncilRules, who string) error {
	if len(r.Members) > 0 && !slices.Contains(r.Members, who) {
		return apperr.Of(apperr.PermissionDenied, ErrNotMember, "%s is not on the council (members: %v)", who, r.Members)
	}
	return nil
}

func fan(units int64) string { return money.FormatUnits(units, 8) + " FAN" }

// Propose records a member's proposal; the proposer's approval counts, so
// with a quorum of 1 it is authorized at once. balance is the escrow's
// balance as last read from the ledger. A repeat of the same proposal is a
// no-op. Errors: PermissionDenied (ErrNotMember), InvalidInput
// (ErrInvalidProposal: no action, amount ≤ 0), Forbidden (ErrOverBalance:
// more than the balance less what authorized actions take), Conflict (the
// id was used for another proposal).
func (c *Council) Propose(id string, action eventsv1.EscrowAction, amount int64, by, reason string, balance int64, r CouncilRules) error {
	if err := member(r, by); err != nil {
		return err
	}
	if p, ok := c.Proposals[id]; ok {
		if p.Action == action && p.Amount == amount && p.ProposedBy == by {
			return nil
		}
		return apperr.New(apperr.Conflict, "proposal id %s was already used for another proposal", id)
	}
	if action != eventsv1.EscrowAction_ESCROW_ACTION_RELEASE && action != eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT {
		return apperr.Of(apperr.InvalidInput, ErrInvalidProposal, "action must be release or forfeit")
	}
	if amount <= 0 {
		return apperr.Of(apperr.InvalidInput, ErrInvalidProposal, "amount must be positive")
	}
	if err := c.covered(id, amount, balance); err != nil {
		return err
	}
	q := max(r.Quorum, 1)
	if err := c.record(&eventsv1.EscrowActionProposed{ProposalId: id, ArtistId: c.Artist, Action: action,
		Amount: &eventsv1.Money{Asset: FAN, Units: amount}, ProposedBy: by, Quorum: q, Reason: reason}); err != nil {
		return err
	}
	return c.authorizeIfDue(c.Proposals[id])
}

func (c *Council) covered(id string, amount, balance int64) error {
	if free := balance - c.reserved(id); amount > free {
		return apperr.Of(apperr.Forbidden, ErrOverBalance, "the escrow of %s holds %s, %s of it promised to authorized proposals: %s is more than the %s left",
			c.Artist, fan(balance), fan(c.reserved(id)), fan(amount), fan(max(free, 0)))
	}
	return nil
}

// Approve records another member's approval; at the quorum the action is
// authorized and its ledger request recorded. The balance is checked
// again then: it may have changed since the proposal. Errors:
// PermissionDenied (ErrNotMember), NotFound (ErrNoProposal), Forbidden
// (ErrClosed, ErrOverBalance), Conflict (ErrAlreadyApproved: the same
// moderator twice, the proposer included).
func (c *Council) Approve(id, by string, balance int64, r CouncilRules) error {
	if err := member(r, by); err != nil {
		return err
	}
	p, ok := c.Proposals[id]
	if !ok {
		return apperr.Of(apperr.NotFound, ErrNoProposal, "artist %s has no proposal %s", c.Artist, id)
	}
	if slices.Contains(p.Approvals, by) {
		return apperr.Of(apperr.Conflict, ErrAlreadyApproved, "%s already approved proposal %s", by, id)
	}
	if p.State != Open {
		return apperr.Of(apperr.Forbidden, ErrClosed, "proposal %s is %s", id, p.State)
	}
	if uint32(len(p.Approvals))+1 >= p.Quorum {
		if err := c.covered(id, p.Amount, balance); err != nil {
			return err
		}
	}
	if err := c.record(&eventsv1.EscrowActionApproved{ProposalId: id, ArtistId: c.Artist, ModeratorId: by, Approvals: uint32(len(p.Approvals)) + 1}); err != nil {
		return err
	}
	return c.authorizeIfDue(p)
}

// authorizeIfDue records the authorization and its ledger request once a
// proposal has its quorum. The transaction id is the proposal's.
func (c *Council) authorizeIfDue(p *Proposal) error {
	if p.State != Open || uint32(len(p.Approvals)) < p.Quorum {
		return nil
	}
	amount := &eventsv1.Money{Asset: FAN, Units: p.Amount}
	req := &eventsv1.LedgerTransactionRequested{TransactionId: p.ID, RequestedBy: RequestedBy, Asset: FAN,
		Memo: fmt.Sprintf("council %s of %s from the discovery escrow of %s", actionName(p.Action), fan(p.Amount), c.Artist)}
	if p.Action == eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT {
		req.Kind = eventsv1.PostingKind_POSTING_KIND_ESCROW_FORFEIT
		req.Postings = []*eventsv1.Posting{{Debit: c.Escrow(), Credit: accounts.Burn, Asset: FAN, Amount: p.Amount, Kind: req.Kind}}
	} else {
		req.Kind = eventsv1.PostingKind_POSTING_KIND_ESCROW_RELEASE
		parts, err := songview.Payments(c.Payees(), FAN, p.Amount)
		if err != nil {
			return fmt.Errorf("council %s: payees: %w", c.Artist, err)
		}
		for _, pt := range parts {
			req.Postings = append(req.Postings, &eventsv1.Posting{Debit: c.Escrow(), Credit: pt.Account, Asset: FAN, Amount: pt.Units, Kind: req.Kind})
		}
	}
	return c.record(&eventsv1.EscrowActionAuthorized{ProposalId: p.ID, ArtistId: c.Artist, Action: p.Action, Amount: amount, TransactionId: p.ID}, req)
}

func actionName(a eventsv1.EscrowAction) string {
	if a == eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT {
		return "forfeit"
	}
	return "release"
}

// Decide records the ledger's answer to an authorized action; nothing for
// a proposal that is not waiting for one (a redelivery).
func (c *Council) Decide(d *eventsv1.BookBatchAppended_Decision) error {
	p, ok := c.Proposals[d.GetRequest().GetTransactionId()]
	if !ok || p.State != Authorized {
		return nil
	}
	if cm := d.GetCommitted(); cm != nil {
		return c.record(&eventsv1.EscrowActionSettled{ProposalId: p.ID, ArtistId: c.Artist, Action: p.Action,
			Amount: &eventsv1.Money{Asset: FAN, Units: p.Amount}, Sequence: cm.Sequence})
	}
	rj := d.GetRejected()
	return c.record(&eventsv1.EscrowActionFailed{ProposalId: p.ID, ArtistId: c.Artist, Reason: rj.GetReason(), Detail: rj.GetDetail()})
}

func (c *Council) record(evs ...proto.Message) error { return events.RecordNew(c, evs...) }

// Apply evolves the council by one event.
func (c *Council) Apply(m proto.Message) error {
	get := func(id string) (*Proposal, error) {
		if p, ok := c.Proposals[id]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("council %s: %T for unknown proposal %s", c.Artist, m, id)
	}
	switch e := m.(type) {
	case *eventsv1.EscrowActionProposed:
		c.Proposals[e.ProposalId] = &Proposal{ID: e.ProposalId, Action: e.Action, Amount: e.Amount.GetUnits(), ProposedBy: e.ProposedBy,
			Quorum: e.Quorum, Approvals: []string{e.ProposedBy}, State: Open, Reason: e.Reason}
	case *eventsv1.EscrowActionApproved:
		p, err := get(e.ProposalId)
		if err != nil {
			return err
		}
		p.Approvals = append(p.Approvals, e.ModeratorId)
	case *eventsv1.EscrowActionAuthorized:
		p, err := get(e.ProposalId)
		if err != nil {
			return err
		}
		p.State = Authorized
	case *eventsv1.LedgerTransactionRequested:
	case *eventsv1.ArtistPayeesSet:
		c.payees = e.Splits
	case *eventsv1.EscrowActionSettled:
		p, err := get(e.ProposalId)
		if err != nil {
			return err
		}
		p.State = Settled
	case *eventsv1.EscrowActionFailed:
		p, err := get(e.ProposalId)
		if err != nil {
			return err
		}
		p.State, p.Failure = Failed, e.Reason.String()+" "+e.Detail
	default:
		return fmt.Errorf("council %s: unexpected event %T", c.Artist, m)
	}
	return nil
}
