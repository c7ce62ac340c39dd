package app

import (
	"context"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// DepositStarted is what RequestDeposit returns.
type DepositStarted struct {
	ID, Instructions, Reference string
}

func (a *App) rail(name string) (Rail, error) {
	if name == "" {
		name = "bank"
	}
	r, ok := a.Rails[name]
	if !ok {
		return nil, apperr.New(apperr.InvalidInput, "unknown rail %q", name)
	}
	return r, nil
}

// ownWallet checks that account is a wallet of the caller and returns its asset.
func ownWallet(ctx context.Context, account string) (identity.Identity, domain.AccountID, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return who, domain.AccountID{}, err
	}
	aid, err := domain.ParseAccountID(account)
	if err != nil {
		return who, aid, err
	}
	if aid.Kind != domain.AccountWallet || aid.Owner != who.ID {
		return who, aid, apperr.New(apperr.PermissionDenied, "%s is not a wallet of %s: moving its money needs its owner (no role lets anyone move another identity's money)", account, who.ID)
	}
	return who, aid, nil
}

// RequestDeposit records a deposit (its id is the request id) and returns
// the rail's instructions. Nothing moves until finance confirms it.
func (a *App) RequestDeposit(ctx context.Context, requestID, account, amount, railName string) (DepositStarted, error) {
	if err := apperr.CheckRequestID(requestID); err != nil {
		return DepositStarted{}, err
	}
	_, aid, err := ownWallet(ctx, account)
	if err != nil {
		return DepositStarted{}, err
	}
	amt, err := a.parseAmount(aid.Asset, amount)
	if err != nil {
		return DepositStarted{}, err
	}
	rail, err := a.rail(railName)
	if err != nil {
		return DepositStarted{}, err
	}
	instr, ref := rail.DepositInstructions(requestID, amt)
	err = a.Transfers.Update(ctx, requestID, func(t *domain.Transfer) error {
		return t.RequestDeposit(account, aid.Asset, amt.Units(), rail.Name(), ref)
	})
	if err != nil {
		return DepositStarted{}, err
	}
	return DepositStarted{ID: requestID, Instructions: instr, Reference: ref}, nil
}

// ConfirmDeposit (finance) credits a requested deposit from its rail.
// Repeating it returns the same transaction; a crash between the credit and
// the confirmation is healed by the repeat, as the credit's id is fixed.
func (a *App) ConfirmDeposit(ctx context.Context, requestID, depositID, railRef string) (string, error) {
	who, t, done, err := a.closing(ctx, requestID, depositID, false, false)
	if err != nil || done {
		return t.Transaction, err
	}
	tx := "deposit:" + depositID
	if _, err := a.apply(ctx, domain.Request{ID: tx, Asset: t.Asset, Kind: domain.KindDeposit, RequestedBy: who.ID, Memo: "deposit " + depositID,
		Postings: []domain.Posting{{Debit: domain.ExternalID(t.Rail), Credit: t.Account, Amount: t.Amount}}}); err != nil {
		return "", err
	}
	err = a.Transfers.Update(ctx, depositID, func(t *domain.Transfer) error { return t.Confirm(tx, railRef, who.ID) })
	return tx, err
}

// closing is the common start of finance closing a transfer: the caller
// must be finance, the transfer must exist and be open (done: it was
// already closed the same way, which a repeat reports as success).
func (a *App) closing(ctx context.Context, requestID, id string, withdrawal, reject bool) (identity.Identity, *domain.Transfer, bool, error) {
	who, err := identity.Caller(ctx)
	if err == nil {
		err = identity.Require(who, identity.RoleFinance)
	}
	if err == nil {
		err = apperr.CheckRequestID(requestID)
	}
	if err != nil {
		return who, &domain.Transfer{}, false, err
	}
	t, _, err := a.Transfers.Load(ctx, id)
	if err != nil {
		return who, t, false, err
	}
	done, err := t.CanClose(withdrawal, reject)
	return who, t, done, err
}
