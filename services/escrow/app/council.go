package app

import (
	"context"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/escrow/domain"
	songs "github.com/fanfare/fanfare/services/songs/domain"
	"github.com/google/uuid"
)

// SetPayees (artist) records who the caller's escrow releases and
// captured pledges pay. Errors: PermissionDenied, InvalidInput.
func (a *App) SetPayees(ctx context.Context, splits []*eventsv1.Split) (*domain.Council, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.Require(who, identity.RoleArtist); err != nil {
		return nil, err
	}
	if err := songs.ValidateSplits(splits); err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err)
	}
	var out *domain.Council
	err = a.Councils.Update(ctx, who.ID, func(c *domain.Council) error {
		out = c
		return c.SetPayees(splits)
	})
	return out, err
}

// GetEscrow reads an artist's escrow (default: the caller's) for the
// artist, moderators, finance and auditors. Errors: PermissionDenied.
func (a *App) GetEscrow(ctx context.Context, artist string) (*domain.Council, int64, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, 0, err
	}
	if artist == "" {
		artist = who.ID
	}
	if artist != who.ID {
		if err := identity.RequireAny(who, identity.RoleModerator, identity.RoleFinance, identity.RoleAuditor); err != nil {
			return nil, 0, err
		}
	}
	c, _, err := a.Councils.Load(ctx, artist)
	if err != nil {
		return nil, 0, err
	}
	return c, a.FAN.Get(c.Escrow()), nil
}

// Propose (moderator) proposes a release or forfeit of amount (FAN text)
// of an artist's discovery escrow. Errors: PermissionDenied,
// InvalidInput, Forbidden (over the balance), Conflict (request id reused).
func (a *App) Propose(ctx context.Context, requestID, artist string, action eventsv1.EscrowAction, amount, reason string) (*domain.Proposal, error) {
	who, err := a.moderator(ctx)
	if err != nil {
		return nil, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return nil, err
	}
	if artist == "" {
		return nil, apperr.New(apperr.InvalidInput, "artist_id is required")
	}
	units, err := money.ParseField(money.FAN, "amount", amount, 1)
	if err != nil {
		return nil, err
	}
	if len(reason) > 1000 {
		return nil, apperr.New(apperr.InvalidInput, "reason is longer than 1000 bytes")
	}
	id := uuid.NewSHA1(proposalIDs, []byte(who.ID+"/"+requestID)).String()
	var out *domain.Proposal
	err = a.Councils.Update(ctx, artist, func(c *domain.Council) error {
		if err := c.Propose(id, action, units, who.ID, reason, a.FAN.Get(c.Escrow()), a.Rules()); err != nil {
			return err
		}
		out = c.Proposals[id]
		return nil
	})
	return out, err
}

// Approve (moderator) approves a proposal. Errors: PermissionDenied,
// NotFound, Conflict (approved before), Forbidden (closed, over balance).
func (a *App) Approve(ctx context.Context, artist, proposalID string) (*domain.Proposal, error) {
	who, err := a.moderator(ctx)
	if err != nil {
		return nil, err
	}
	if artist == "" || proposalID == "" {
		return nil, apperr.New(apperr.InvalidInput, "artist_id and proposal_id are required")
	}
	var out *domain.Proposal
	err = a.Councils.Update(ctx, artist, func(c *domain.Council) error {
		if err := c.Approve(proposalID, who.ID, a.FAN.Get(c.Escrow()), a.Rules()); err != nil {
			return err
		}
		out = c.Proposals[proposalID]
		return nil
	})
	return out, err
}

func (a *App) moderator(ctx context.Context) (identity.Identity, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return who, err
	}
	return who, identity.Require(who, identity.RoleModerator)
}
