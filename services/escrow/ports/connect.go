// Package ports exposes the escrow service: the Connect API and the Kafka
// handlers.
package ports

import (
	"context"
	"slices"

	"connectrpc.com/connect"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/internal/platform/waiters"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/escrow/app"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
)

// Consumer groups of the escrow service (Kafka group ids: never rename).
const (
	LedgerGroup      = "escrow.ledger"      // fanfare.accounts.v1: answers to council actions and pledge holds
	SettlementsGroup = "escrow.settlements" // fanfare.crowdfund.v1: campaigns settled
)

// Groups are the service's Kafka handlers.
func Groups(a *app.App) []kafka.HandlerGroup {
	return []kafka.HandlerGroup{
		{Name: LedgerGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.OnLedgerBatch)}},
		{Name: SettlementsGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.OnSettlementCompleted)}},
	}
}

// Connect implements EscrowService.
type Connect struct {
	App *app.App
}

var _ escrowv1connect.EscrowServiceHandler = Connect{}

func escrow(c *domain.Council, balance int64, quorum uint32) *escrowv1.Escrow {
	out := &escrowv1.Escrow{ArtistId: c.Artist, Balance: money.FormatUnits(balance, money.FAN.Scale), Payees: songview.FormatSplits(c.Payees()), Quorum: quorum}
	ids := make([]string, 0, len(c.Proposals))
	for id := range c.Proposals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		out.Proposals = append(out.Proposals, proposal(c.Proposals[id]))
	}
	return out
}

func proposal(p *domain.Proposal) *escrowv1.Proposal {
	action := "release"
	if p.Action == eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT {
		action = "forfeit"
	}
	return &escrowv1.Proposal{ProposalId: p.ID, Action: action, Amount: money.FormatUnits(p.Amount, money.FAN.Scale), ProposedBy: p.ProposedBy,
		Approvals: slices.Clone(p.Approvals), Quorum: p.Quorum, State: p.State, Failure: p.Failure, Reason: p.Reason}
}

func quorum(a *app.App) uint32 { return max(a.Rules().Quorum, 1) }

func (c Connect) SetPayees(ctx context.Context, req *connect.Request[escrowv1.SetPayeesRequest]) (*connect.Response[escrowv1.SetPayeesResponse], error) {
	splits, err := songview.ParseSplits(req.Msg.Payees)
	if err != nil {
		return nil, apperr.New(apperr.InvalidInput, "payees: %v", err)
	}
	co, err := c.App.SetPayees(ctx, splits)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.SetPayeesResponse{Escrow: escrow(co, c.App.FAN.Get(co.Escrow()), quorum(c.App))}), nil
}

func (c Connect) GetEscrow(ctx context.Context, req *connect.Request[escrowv1.GetEscrowRequest]) (*connect.Response[escrowv1.GetEscrowResponse], error) {
	co, bal, err := c.App.GetEscrow(ctx, req.Msg.ArtistId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.GetEscrowResponse{Escrow: escrow(co, bal, quorum(c.App))}), nil
}

func (c Connect) ProposeRelease(ctx context.Context, req *connect.Request[escrowv1.ProposeReleaseRequest]) (*connect.Response[escrowv1.ProposeReleaseResponse], error) {
	p, err := c.App.Propose(ctx, req.Msg.RequestId, req.Msg.ArtistId, eventsv1.EscrowAction_ESCROW_ACTION_RELEASE, req.Msg.Amount, req.Msg.Reason)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.ProposeReleaseResponse{Proposal: proposal(p)}), nil
}

func (c Connect) Forfeit(ctx context.Context, req *connect.Request[escrowv1.ForfeitRequest]) (*connect.Response[escrowv1.ForfeitResponse], error) {
	p, err := c.App.Propose(ctx, req.Msg.RequestId, req.Msg.ArtistId, eventsv1.EscrowAction_ESCROW_ACTION_FORFEIT, req.Msg.Amount, req.Msg.Reason)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.ForfeitResponse{Proposal: proposal(p)}), nil
}

func (c Connect) ApproveRelease(ctx context.Context, req *connect.Request[escrowv1.ApproveReleaseRequest]) (*connect.Response[escrowv1.ApproveReleaseResponse], error) {
	p, err := c.App.Approve(ctx, req.Msg.ArtistId, req.Msg.ProposalId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.ApproveReleaseResponse{Proposal: proposal(p)}), nil
}

func campaign(ctx context.Context, c *domain.Campaign) *escrowv1.Campaign {
	o := c.Opened
	out := &escrowv1.Campaign{CampaignId: c.ID, ArtistId: o.ArtistId, Goal: money.FormatUnits(o.GetGoal().GetUnits(), money.USD.Scale), Deadline: o.Deadline,
		Unlocks: o.Unlocks, SongIds: o.SongIds, CloseOnGoal: o.CloseOnGoal, Payees: songview.FormatSplits(o.Splits),
		Pledged: money.FormatUnits(c.Placed, money.USD.Scale), Status: c.State}
	who, _ := identity.From(ctx)
	backers := map[string]bool{}
	for _, id := range c.Order {
		p := c.Pledges[id]
		if p.State == domain.PledgePlaced || p.State == domain.PledgeCaptured {
			backers[p.Backer] = true
		}
		if p.Backer == who.ID {
			out.MyPledges = append(out.MyPledges, pledge(c.ID, p))
		}
	}
	out.Backers = uint32(len(backers))
	return out
}

func pledge(campaignID string, p *domain.Pledge) *escrowv1.Pledge {
	return &escrowv1.Pledge{PledgeId: p.ID, CampaignId: campaignID, Amount: money.FormatUnits(p.Amount, money.USD.Scale), Status: p.State, Failure: p.Failure}
}

func (c Connect) OpenCampaign(ctx context.Context, req *connect.Request[escrowv1.OpenCampaignRequest]) (*connect.Response[escrowv1.OpenCampaignResponse], error) {
	if req.Msg.Deadline == nil || req.Msg.Deadline.CheckValid() != nil {
		return nil, apperr.New(apperr.InvalidInput, "deadline is required (a valid timestamp)")
	}
	cp, err := c.App.OpenCampaign(ctx, req.Msg.RequestId, req.Msg.Goal, req.Msg.Deadline.AsTime(), req.Msg.Unlocks, req.Msg.SongIds, req.Msg.CloseOnGoal)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.OpenCampaignResponse{Campaign: campaign(ctx, cp)}), nil
}

func (c Connect) Pledge(ctx context.Context, req *connect.Request[escrowv1.PledgeRequest]) (*connect.Response[escrowv1.PledgeResponse], error) {
	cp, p, err := c.App.Pledge(ctx, req.Msg.RequestId, req.Msg.CampaignId, req.Msg.Amount, waiters.For(req.Msg.WaitMs))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.PledgeResponse{Pledge: pledge(cp.ID, p)}), nil
}

func (c Connect) CancelPledge(ctx context.Context, req *connect.Request[escrowv1.CancelPledgeRequest]) (*connect.Response[escrowv1.CancelPledgeResponse], error) {
	cp, p, err := c.App.CancelPledge(ctx, req.Msg.CampaignId, req.Msg.PledgeId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.CancelPledgeResponse{Pledge: pledge(cp.ID, p)}), nil
}

func (c Connect) GetCampaign(ctx context.Context, req *connect.Request[escrowv1.GetCampaignRequest]) (*connect.Response[escrowv1.GetCampaignResponse], error) {
	cp, err := c.App.GetCampaign(ctx, req.Msg.CampaignId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&escrowv1.GetCampaignResponse{Campaign: campaign(ctx, cp)}), nil
}
