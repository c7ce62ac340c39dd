package app

import (
	"context"
	"github.com/fanfare/fanfare/internal/platform/apperr"

	"github.com/fanfare/fanfare/services/accounts/domain"
)

// RequestWithdrawal holds the amount on the caller's wallet (so it cannot be
// spent twice) and records the withdrawal for finance.
func (a *App) RequestWithdrawal(ctx context.Context, requestID, account, amount, railName, destination string) (string, string, error) {
	if err := apperr.CheckRequestID(requestID); err != nil {
		return "", "", err
	}
	who, aid, err := ownWallet(ctx, account)
	if err != nil {
		return "", "", err
	}
	amt, err := a.parseAmount(aid.Asset, amount)
	if err != nil {
		return "", "", err
	}
	rail, err := a.rail(railName)
	if err != nil {
		return "", "", err
	}
	// Check the request id before holding anything under it.
	t, _, err := a.Transfers.Load(ctx, requestID)
	if err != nil {
		return "", "", err
	}
	hold := "withdrawal:" + requestID
	if err := t.RequestWithdrawal(account, aid.Asset, amt.Units(), rail.Name(), destination, hold); err != nil {
		return "", "", err
	}
	if _, err := a.apply(ctx, domain.Request{ID: hold, Asset: aid.Asset, Kind: domain.KindWithdrawal, RequestedBy: who.ID, Memo: "withdrawal " + requestID,
		Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: hold, Account: account, Amount: amt.Units()}}}); err != nil {
		return "", "", err
	}
	err = a.Transfers.Update(ctx, requestID, func(t *domain.Transfer) error {
		return t.RequestWithdrawal(account, aid.Asset, amt.Units(), rail.Name(), destination, hold)
	})
	return requestID, hold, err
}

// SettleWithdrawal (finance) captures the hold to the rail's account.
func (a *App) SettleWithdrawal(ctx context.Context, requestID, withdrawalID, railRef string) (string, error) {
	return a.closeWithdrawal(ctx, requestID, withdrawalID, false, railRef)
}

// RejectWithdrawal (finance) voids the hold; nothing leaves.
func (a *App) RejectWithdrawal(ctx context.Context, requestID, withdrawalID, reason string) error {
	_, err := a.closeWithdrawal(ctx, requestID, withdrawalID, true, reason)
	return err
}

func (a *App) closeWithdrawal(ctx context.Context, requestID, id string, reject bool, note string) (string, error) {
	who, t, done, err := a.closing(ctx, requestID, id, true, reject)
	if err != nil || done {
		return t.Transaction, err
	}
	op := domain.HoldOp{Kind: domain.HoldCapture, HoldID: t.HoldID, Credit: domain.ExternalID(t.Rail)}
	tx := "withdrawal-settle:" + id
	if reject {
		op = domain.HoldOp{Kind: domain.HoldVoid, HoldID: t.HoldID}
		tx = "withdrawal-reject:" + id
	}
	if _, err := a.apply(ctx, domain.Request{ID: tx, Asset: t.Asset, Kind: domain.KindWithdrawal, RequestedBy: who.ID,
		Memo: "withdrawal " + id, Holds: []domain.HoldOp{op}}); err != nil {
		return "", err
	}
	err = a.Transfers.Update(ctx, id, func(t *domain.Transfer) error {
		if reject {
			return t.Reject(note, who.ID)
		}
		return t.Settle(tx, note, who.ID)
	})
	return tx, err
}
