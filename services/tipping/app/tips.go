package app

import (
	"context"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
)

// Tip pays amount (decimal USD) of the caller's to a song's payees by its
// splits, and waits up to wait for the ledger. Errors: InvalidInput (bad
// request id, amount below the minimum, the caller as the only payee),
// NotFound (song), Conflict (request id used for another tip),
// Unavailable (catalog still loading).
func (a *App) Tip(ctx context.Context, requestID, songID, amount string, wait time.Duration) (domain.Tip, error) {
	units, err := domain.ParseUSD("amount", amount, a.Rules.MinimumTip)
	if err != nil {
		return domain.Tip{}, err
	}
	return a.tip(ctx, requestID, songID, units, eventsv1.TipRequested_SOURCE_MANUAL, wait)
}

// ThumbsUp tips the caller's thumbs-up amount; see Tip.
func (a *App) ThumbsUp(ctx context.Context, requestID, songID string, wait time.Duration) (domain.Tip, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Tip{}, err
	}
	f, _, err := a.Fans.Load(ctx, who.ID)
	if err != nil {
		return domain.Tip{}, err
	}
	return a.tip(ctx, requestID, songID, f.ThumbsUpAmount(a.Rules), eventsv1.TipRequested_SOURCE_THUMBS_UP, wait)
}

func (a *App) tip(ctx context.Context, requestID, songID string, units int64, source eventsv1.TipRequested_Source, wait time.Duration) (domain.Tip, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Tip{}, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return domain.Tip{}, err
	}
	song, err := a.Songs.Lookup(songID)
	if err != nil {
		return domain.Tip{}, err
	}
	parts, err := songview.Payments(song.Splits, domain.USD.Code, units)
	if err != nil {
		return domain.Tip{}, apperr.New(apperr.InvalidInput, "song %s cannot be paid: %v", songID, err)
	}
	id := uuid.NewSHA1(tipIDs, []byte(who.ID+"/"+requestID)).String()
	postings, err := domain.Payments(who.ID, songID, parts)
	if err != nil {
		return domain.Tip{}, err
	}
	err = a.Fans.Update(ctx, who.ID, func(f *domain.Fan) error {
		return f.RequestTip(domain.TipPlan{ID: id, SongID: songID, Amount: units, Source: source, Postings: postings})
	})
	if err != nil {
		return domain.Tip{}, err
	}
	return a.awaitTip(ctx, who.ID, id, wait)
}

// GetTip reports one of the caller's tips, waiting up to wait while it is
// pending. Errors: NotFound.
func (a *App) GetTip(ctx context.Context, tipID string, wait time.Duration) (domain.Tip, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Tip{}, err
	}
	return a.awaitTip(ctx, who.ID, tipID, wait)
}

func (a *App) awaitTip(ctx context.Context, listener, tipID string, wait time.Duration) (domain.Tip, error) {
	var tip domain.Tip
	err := a.waits.Wait(ctx, tipID, wait, func() (bool, error) {
		f, _, err := a.Fans.Load(ctx, listener)
		if err != nil {
			return false, err
		}
		t, ok := f.Tips[tipID]
		if !ok {
			return false, apperr.New(apperr.NotFound, "you have no tip %s", tipID)
		}
		tip = *t
		return t.Status != domain.Pending, nil
	})
	return tip, err
}

// Settings is a fan's tip settings with this month's auto-tip spending.
type Settings struct {
	ThumbsUp, Budget, Spent int64
	AutoTip                 bool
}

// SetThumbsUpAmount sets the caller's thumbs-up amount. Errors:
// InvalidInput.
func (a *App) SetThumbsUpAmount(ctx context.Context, amount string) (Settings, error) {
	units, err := domain.ParseUSD("amount", amount, a.Rules.MinimumTip)
	if err != nil {
		return Settings{}, err
	}
	return a.updateSettings(ctx, func(f *domain.Fan) error { return f.SetThumbsUp(units) })
}

// SetAutoTip opts the caller in with a monthly budget (empty: the
// default). Errors: InvalidInput.
func (a *App) SetAutoTip(ctx context.Context, budget string) (Settings, error) {
	var units int64
	if budget != "" {
		var err error
		if units, err = domain.ParseUSD("monthly_budget", budget, a.Rules.AutoTipAmount); err != nil {
			return Settings{}, err
		}
	}
	return a.updateSettings(ctx, func(f *domain.Fan) error { return f.SetAutoTip(units) })
}

// ClearAutoTip opts the caller out.
func (a *App) ClearAutoTip(ctx context.Context) (Settings, error) {
	return a.updateSettings(ctx, func(f *domain.Fan) error { return f.ClearAutoTip() })
}

// GetTipSettings reads the caller's settings.
func (a *App) GetTipSettings(ctx context.Context) (Settings, error) {
	return a.updateSettings(ctx, nil)
}

func (a *App) updateSettings(ctx context.Context, fn func(*domain.Fan) error) (Settings, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return Settings{}, err
	}
	if fn != nil {
		if err := a.Fans.Update(ctx, who.ID, fn); err != nil {
			return Settings{}, err
		}
	}
	f, _, err := a.Fans.Load(ctx, who.ID)
	if err != nil {
		return Settings{}, err
	}
	return Settings{ThumbsUp: f.ThumbsUpAmount(a.Rules), AutoTip: f.AutoTipOn, Budget: f.MonthlyBudget(a.Rules),
		Spent: f.Spent[domain.Month(a.Now())]}, nil
}
