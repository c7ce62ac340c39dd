package app

import (
	"context"

	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// OpenAccount opens an identity's wallets (one per asset) and pays the
// welcome credit from promotions. Idempotent per identity: the wallets open
// once and the credit's transaction id is derived from the identity.
// Callers open themselves; finance may open anyone.
func (a *App) OpenAccount(ctx context.Context, identityID string) ([]string, bool, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	if identityID == "" {
		identityID = who.ID
	}
	if identityID != who.ID {
		if err := identity.Require(who, identity.RoleFinance); err != nil {
			return nil, false, err
		}
	}
	var ids []string
	opened := false
	for _, asset := range a.Policy.Assets.Codes() {
		book, err := a.Book(asset)
		if err != nil {
			return nil, false, err
		}
		id := domain.WalletID(identityID, asset)
		isNew, err := book.Open(ctx, id)
		if err != nil {
			return nil, false, err
		}
		opened = opened || isNew
		ids = append(ids, id)
	}
	// Paid even when a crash came between opening and paying: the id makes
	// the credit happen exactly once.
	if w := a.Policy.WelcomeCredit; w.Units() > 0 {
		_, err := a.apply(ctx, domain.Request{
			ID: "welcome:" + identityID, Asset: w.Asset().Code, Kind: domain.KindPromotion, RequestedBy: "accounts", Memo: "welcome credit",
			Postings: []domain.Posting{{Debit: "promotions", Credit: domain.WalletID(identityID, w.Asset().Code), Amount: w.Units()}},
		})
		if err != nil {
			return nil, false, err
		}
	}
	return ids, opened, nil
}
