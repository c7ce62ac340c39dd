package app

import (
	"context"
	"github.com/fanfare/fanfare/internal/platform/identity"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// Balance gives an account's total, held and available amounts.
func (a *App) Balance(ctx context.Context, account, asset string) (string, domain.Balance, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", domain.Balance{}, err
	}
	aid, err := domain.ParseAccountID(account)
	if err != nil {
		return "", domain.Balance{}, err
	}
	if err := mayRead(who, aid); err != nil {
		return "", domain.Balance{}, err
	}
	asset, err = a.assetOf(aid, asset)
	if err != nil {
		return "", domain.Balance{}, err
	}
	book, err := a.Book(asset)
	if err != nil {
		return "", domain.Balance{}, err
	}
	var bal domain.Balance
	err = book.Read(func(b *domain.Book) error {
		var err error
		bal, err = b.Balance(account)
		return err
	})
	return asset, bal, err
}

// assetOf is the book an account is read in: a user account's own asset,
// or, for system accounts (which exist in every book), the one named.
func (a *App) assetOf(aid domain.AccountID, asset string) (string, error) {
	switch {
	case aid.Asset != "" && asset != "" && asset != aid.Asset:
		return "", apperr.New(apperr.InvalidInput, "account %s holds %s, not %s", aid.ID, aid.Asset, asset)
	case aid.Asset != "":
		return aid.Asset, nil
	case asset == "":
		return "", apperr.New(apperr.InvalidInput, "account %s exists in every book: name the asset", aid.ID)
	}
	return asset, nil
}

// Statement lists an account's movements, newest first.
func (a *App) Statement(ctx context.Context, account, asset string, size int, cursor string) (string, []adapters.StatementEntry, string, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", nil, "", err
	}
	aid, err := domain.ParseAccountID(account)
	if err != nil {
		return "", nil, "", err
	}
	if err := mayRead(who, aid); err != nil {
		return "", nil, "", err
	}
	asset, err = a.assetOf(aid, asset)
	if err != nil {
		return "", nil, "", err
	}
	switch {
	case size == 0:
		size = 50
	case size < 0 || size > 500:
		return "", nil, "", apperr.New(apperr.InvalidInput, "page_size must be 1..500, got %d", size)
	}
	entries, next, err := a.Statements.Page(account, size, cursor)
	return asset, entries, next, err
}
