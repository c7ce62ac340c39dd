package app

import (
	"context"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	chains "github.com/fanfare/fanfare/services/chains/domain"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
)

// Purchase asks to buy a song at its price through an optional referral
// token (its text form) and waits up to wait for the referral saga's
// payout. Errors: InvalidInput (request id, token, key, price text),
// NotFound (song), Forbidden (not for sale, or the price is not the
// expected one), Conflict (request id used for another purchase),
// Unavailable (catalog still loading).
func (a *App) Purchase(ctx context.Context, requestID, songID, token string, key []byte, expectedPrice string, wait time.Duration) (*domain.Purchase, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return nil, err
	}
	var tok []byte
	if token != "" {
		if tok, err = chains.ParseTokenText(token); err != nil {
			return nil, apperr.New(apperr.InvalidInput, "referral_token: %v", err)
		}
	}
	if len(key) > 0 {
		if _, err := sealbox.PublicKey(key); err != nil {
			return nil, apperr.New(apperr.InvalidInput, "purchaser_public_key: %v", err)
		}
	}
	song, err := a.Songs.Lookup(songID)
	if err != nil {
		return nil, err
	}
	if song.Price.GetUnits() <= 0 {
		return nil, apperr.New(apperr.Forbidden, "song %s is not for sale", songID)
	}
	price := song.Price.GetUnits()
	if expectedPrice != "" {
		want, err := domain.ParseUSD("expected_price", expectedPrice, 1)
		if err != nil {
			return nil, err
		}
		if want != price {
			return nil, apperr.New(apperr.Forbidden, "song %s costs %s USD now, not %s", songID, domain.FormatUSD(price), domain.FormatUSD(want))
		}
	}
	id := uuid.NewSHA1(purchaseIDs, []byte(who.ID+"/"+requestID)).String()
	req := &eventsv1.PurchaseRequested{PurchaseId: id, SongId: songID, PurchaserId: who.ID, Price: domain.USDMoney(price),
		ReferralToken: tok, PurchaserPublicKey: key}
	if err := a.Purchases.Update(ctx, id, func(p *domain.Purchase) error { return p.Start(req) }); err != nil {
		return nil, err
	}
	return a.awaitPurchase(ctx, who.ID, id, wait)
}

// GetPurchase reports one of the caller's purchases, waiting up to wait
// while it is pending. Errors: NotFound.
func (a *App) GetPurchase(ctx context.Context, id string, wait time.Duration) (*domain.Purchase, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return a.awaitPurchase(ctx, who.ID, id, wait)
}

func (a *App) awaitPurchase(ctx context.Context, purchaser, id string, wait time.Duration) (*domain.Purchase, error) {
	var p *domain.Purchase
	err := a.waits.Wait(ctx, id, wait, func() (bool, error) {
		var err error
		if p, _, err = a.Purchases.Load(ctx, id); err != nil {
			return false, err
		}
		if p.Request == nil || p.Request.PurchaserId != purchaser {
			return false, apperr.New(apperr.NotFound, "you have no purchase %s", id)
		}
		return p.Status != domain.Pending, nil
	})
	return p, err
}

// OnPayoutCompleted records the referral saga's payout on the purchase.
func (a *App) OnPayoutCompleted(ctx context.Context, cause events.Envelope, e *eventsv1.ReferralPayoutCompleted) error {
	return a.purchaseOutcome(ctx, cause, e.PurchaseId, func(p *domain.Purchase) error { return p.Complete(e) })
}

// OnPayoutFailed records why the purchase was not paid.
func (a *App) OnPayoutFailed(ctx context.Context, cause events.Envelope, e *eventsv1.ReferralPayoutFailed) error {
	return a.purchaseOutcome(ctx, cause, e.PurchaseId, func(p *domain.Purchase) error { return p.Fail(e) })
}

func (a *App) purchaseOutcome(ctx context.Context, cause events.Envelope, id string, fn func(*domain.Purchase) error) error {
	if err := a.Purchases.React(ctx, id, PurchaseOutcomeConsumer, cause, fn); err != nil {
		return err
	}
	a.waits.Notify(id)
	return nil
}
