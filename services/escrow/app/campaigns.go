package app

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/google/uuid"
)

// Bounds of a campaign's terms.
const (
	MaxUnlocks  = 2000
	MaxSongs    = 100
	MaxDuration = 366 * 24 * time.Hour
)

// OpenCampaign (artist) opens a crowdfund paying the caller's payees.
// Errors: PermissionDenied, InvalidInput (goal, deadline, unlocks,
// songs), Conflict (request id reused with other terms).
func (a *App) OpenCampaign(ctx context.Context, requestID, goal string, deadline time.Time, unlocks string, songs []string, closeOnGoal bool) (*domain.Campaign, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.Require(who, identity.RoleArtist); err != nil {
		return nil, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return nil, err
	}
	units, err := money.ParseField(money.USD, "goal", goal, 1)
	if err != nil {
		return nil, err
	}
	now := a.Now()
	switch {
	case !deadline.After(now):
		return nil, apperr.New(apperr.InvalidInput, "deadline %s is not in the future", deadline.UTC().Format(time.RFC3339))
	case deadline.Sub(now) > MaxDuration:
		return nil, apperr.New(apperr.InvalidInput, "deadline is more than %d days away", MaxDuration/(24*time.Hour))
	case unlocks == "" || len(unlocks) > MaxUnlocks || !utf8.ValidString(unlocks):
		return nil, apperr.New(apperr.InvalidInput, "unlocks must say what unlocks, in 1–%d bytes of UTF-8", MaxUnlocks)
	case len(songs) > MaxSongs:
		return nil, apperr.New(apperr.InvalidInput, "at most %d song_ids", MaxSongs)
	}
	for i, s := range songs {
		if _, err := uuid.Parse(s); err != nil {
			return nil, apperr.New(apperr.InvalidInput, "song_ids[%d] %q is not a song id", i, s)
		}
		if slices.Index(songs, s) != i {
			return nil, apperr.New(apperr.InvalidInput, "song_ids[%d] %s appears twice", i, s)
		}
	}
	council, _, err := a.Councils.Load(ctx, who.ID)
	if err != nil {
		return nil, err
	}
	id := uuid.NewSHA1(campaignIDs, []byte(who.ID+"/"+requestID)).String()
	e := domain.NewCampaignOpened(id, who.ID, units, deadline.UTC().Truncate(time.Millisecond), unlocks, slices.Clone(songs), council.Payees(), closeOnGoal)
	var out *domain.Campaign
	if err := a.Campaigns.Update(ctx, id, func(c *domain.Campaign) error {
		out = c
		return c.Open(e)
	}); err != nil {
		return nil, err
	}
	a.track(out)
	return out, nil
}

// Pledge places a hold of amount (USD text) on the caller's wallet for a
// campaign and waits up to wait for the ledger. Errors: InvalidInput,
// NotFound, Forbidden (closed, deadline passed, own campaign), Conflict.
func (a *App) Pledge(ctx context.Context, requestID, campaignID, amount string, wait time.Duration) (*domain.Campaign, *domain.Pledge, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return nil, nil, err
	}
	units, err := money.ParseField(money.USD, "amount", amount, 1)
	if err != nil {
		return nil, nil, err
	}
	id := uuid.NewSHA1(pledgeIDs, []byte(who.ID+"/"+requestID)).String()
	now := a.Now()
	if err := a.updateCampaign(ctx, campaignID, func(c *domain.Campaign) error { return c.Pledge(id, who.ID, units, now) }); err != nil {
		return nil, nil, err
	}
	return a.awaitPledge(ctx, campaignID, id, wait)
}

// CancelPledge voids one of the caller's placed pledges before the
// deadline. Errors: NotFound, Forbidden.
func (a *App) CancelPledge(ctx context.Context, campaignID, pledgeID string) (*domain.Campaign, *domain.Pledge, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := a.Now()
	var out *domain.Campaign
	if err := a.updateCampaign(ctx, campaignID, func(c *domain.Campaign) error {
		out = c
		return c.Cancel(pledgeID, who.ID, now)
	}); err != nil {
		return nil, nil, err
	}
	return out, out.Pledges[pledgeID], nil
}

// GetCampaign reads a campaign. Errors: NotFound.
func (a *App) GetCampaign(ctx context.Context, id string) (*domain.Campaign, error) {
	if _, err := identity.Caller(ctx); err != nil {
		return nil, err
	}
	return a.loadCampaign(ctx, id)
}

func (a *App) loadCampaign(ctx context.Context, id string) (*domain.Campaign, error) {
	if err := checkCampaignID(id); err != nil {
		return nil, err
	}
	c, _, err := a.Campaigns.Load(ctx, id)
	if err == nil {
		err = opened(c)
	}
	return c, err
}

// updateCampaign runs fn on an opened campaign (one read of its stream).
func (a *App) updateCampaign(ctx context.Context, id string, fn func(*domain.Campaign) error) error {
	if err := checkCampaignID(id); err != nil {
		return err
	}
	return a.Campaigns.Update(ctx, id, func(c *domain.Campaign) error {
		if err := opened(c); err != nil {
			return err
		}
		return fn(c)
	})
}

func checkCampaignID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return apperr.New(apperr.InvalidInput, "campaign_id %q is not a campaign id", id)
	}
	return nil
}

func opened(c *domain.Campaign) error {
	if c.Opened == nil {
		return apperr.New(apperr.NotFound, "no campaign %s", c.ID)
	}
	return nil
}

func (a *App) awaitPledge(ctx context.Context, campaignID, pledgeID string, wait time.Duration) (*domain.Campaign, *domain.Pledge, error) {
	var c *domain.Campaign
	err := a.waits.Wait(ctx, pledgeID, wait, func() (bool, error) {
		var err error
		if c, _, err = a.Campaigns.Load(ctx, campaignID); err != nil {
			return false, err
		}
		return c.Pledges[pledgeID].State != domain.PledgePending, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c, c.Pledges[pledgeID], nil
}

// track keeps an unclosed campaign's deadline for the clock.
func (a *App) track(c *domain.Campaign) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.State == domain.CampaignOpen {
		a.due[c.ID] = c.Deadline()
	} else {
		delete(a.due, c.ID)
	}
}

// Recover rebuilds the deadlines of the campaigns not closed yet from the
// store (at start; the deadlines are in the campaigns' streams, so the
// clock is as durable as they are).
func (a *App) Recover(ctx context.Context, store *eventstore.Store) error {
	_, err := store.CatchUp(ctx, []string{a.Campaigns.Stream("")}, func(e eventstore.Event) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch m := e.Message.(type) {
		case *eventsv1.CampaignOpened:
			a.due[m.CampaignId] = m.Deadline.AsTime()
		case *eventsv1.CampaignClosed:
			delete(a.due, m.CampaignId)
		}
		return nil
	})
	return err
}

// RunDue closes every campaign whose deadline passed (one whose holds are
// still being placed closes when the last answer comes).
func (a *App) RunDue(ctx context.Context) error {
	now := a.Now()
	a.mu.Lock()
	var ids []string
	for id, d := range a.due {
		if !now.Before(d) {
			ids = append(ids, id)
		}
	}
	a.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		var c *domain.Campaign
		if err := a.Campaigns.Update(ctx, id, func(cc *domain.Campaign) error {
			c = cc
			return cc.CloseIfDue(now)
		}); err != nil {
			return fmt.Errorf("escrow: close campaign %s: %w", id, err)
		}
		a.track(c)
	}
	return nil
}
