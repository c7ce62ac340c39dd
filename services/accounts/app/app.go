// Package app holds the accounts service's use cases, one file each. They
// authorize the caller, check input at the edge (decimal strings → minor
// units) and drive the book writers and the transfer aggregates.
package app

import (
	"context"
	"errors"
	"strings"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// App is the accounts service's application layer.
type App struct {
	Books      map[string]*adapters.BookWriter // by asset code
	Transfers  *eventstore.Repository[*domain.Transfer]
	Statements *adapters.Statements
	Rails      map[string]Rail
	Policy     domain.Policy
}

// Book returns the writer of an asset's book.
func (a *App) Book(asset string) (*adapters.BookWriter, error) {
	b, ok := a.Books[asset]
	if !ok {
		return nil, apperr.New(apperr.InvalidInput, "unknown asset %q (have %s)", asset, strings.Join(a.Policy.Assets.Codes(), ", "))
	}
	return b, nil
}

// mayRead: the owner of a wallet, or finance and auditors for any account.
func mayRead(who identity.Identity, aid domain.AccountID) error {
	if who.Has(identity.RoleFinance) || who.Has(identity.RoleAuditor) {
		return nil
	}
	if aid.Kind == domain.AccountWallet && aid.Owner == who.ID {
		return nil
	}
	return apperr.New(apperr.PermissionDenied, "%s may not read account %s: it needs its owner or the finance or auditor role", who.ID, aid.ID)
}

// parseAmount reads a positive amount of the account's asset.
func (a *App) parseAmount(asset, s string) (money.Amount, error) {
	amt, err := a.Policy.Assets.Parse(asset, s, money.Positive)
	if err != nil {
		return amt, apperr.Wrap(apperr.InvalidInput, err)
	}
	return amt, nil
}

// apply runs a ledger request and turns a rejection into its error.
func (a *App) apply(ctx context.Context, req domain.Request) (domain.Outcome, error) {
	book, err := a.Book(req.Asset)
	if err != nil {
		return domain.Outcome{}, err
	}
	out, err := book.Apply(ctx, req)
	if err != nil {
		if errors.Is(err, adapters.ErrFenced) || errors.Is(err, adapters.ErrWriterStopped) {
			return out, apperr.Wrap(apperr.Unavailable, err)
		}
		return out, err
	}
	if !out.Committed() {
		return out, out.Err
	}
	return out, nil
}
