package app

import (
	"context"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// SetTrueFanAmount (artist) sets the monthly amount of the caller's new
// subscriptions. Errors: PermissionDenied, InvalidInput.
func (a *App) SetTrueFanAmount(ctx context.Context, monthly string) (string, int64, error) {
	who, err := identity.Caller(ctx)
	if err == nil {
		err = identity.Require(who, identity.RoleArtist)
	}
	if err != nil {
		return "", 0, err
	}
	units, err := domain.ParseUSD("monthly", monthly, a.Rules.MinimumTip)
	if err != nil {
		return "", 0, err
	}
	err = a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) { return s.SetTrueFan(who.ID, units) })
	return who.ID, units, err
}

// Subscribe subscribes the caller to an artist and waits up to wait for
// the first charge's answer. Errors: InvalidInput (request id, artist id,
// oneself), Conflict (request id used for another artist).
func (a *App) Subscribe(ctx context.Context, requestID, artistID string, wait time.Duration) (domain.Subscription, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Subscription{}, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return domain.Subscription{}, err
	}
	if _, err := accounts.ParseAccountID(accounts.WalletID(artistID, domain.USD.Code)); err != nil || artistID == "" {
		return domain.Subscription{}, apperr.New(apperr.InvalidInput, "artist_id %q is not an identity id", artistID)
	}
	id := uuid.NewSHA1(subscriptionIDs, []byte(who.ID+"/"+requestID)).String()
	err = a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) {
		var evs []proto.Message
		var err error
		id, evs, err = s.Subscribe(id, who.ID, artistID, a.Now())
		return evs, err
	})
	if err != nil {
		return domain.Subscription{}, err
	}
	return a.awaitSubscription(ctx, who.ID, id, wait)
}

// CancelSubscription stops the caller's subscription's charges. Errors:
// NotFound.
func (a *App) CancelSubscription(ctx context.Context, id string) (domain.Subscription, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Subscription{}, err
	}
	err = a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) { return s.Cancel(id, who.ID, a.Now()) })
	if err != nil {
		return domain.Subscription{}, err
	}
	return a.awaitSubscription(ctx, who.ID, id, 0)
}

// GetSubscription reads one of the caller's subscriptions. Errors:
// NotFound.
func (a *App) GetSubscription(ctx context.Context, id string) (domain.Subscription, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return domain.Subscription{}, err
	}
	return a.awaitSubscription(ctx, who.ID, id, 0)
}

// awaitSubscription reads a subscription, waiting up to wait while a
// charge is in flight.
func (a *App) awaitSubscription(ctx context.Context, listener, id string, wait time.Duration) (domain.Subscription, error) {
	var sub domain.Subscription
	err := a.waits.Wait(ctx, id, wait, func() (bool, error) {
		err := a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) {
			x, ok := s.Subs[id]
			if !ok || x.Listener != listener {
				return nil, apperr.New(apperr.NotFound, "you have no subscription %s", id)
			}
			sub = *x
			return nil, nil
		})
		return sub.PendingTx == "", err
	})
	return sub, err
}

// RunDue records whatever the clock made due: charges, retries, ends.
func (a *App) RunDue(ctx context.Context) error {
	return a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) { return s.Due(a.Now()) })
}
