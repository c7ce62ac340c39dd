// Package ports exposes the accounts service: the Connect API and the Kafka
// handler for ledger requests from sagas.
package ports

import (
	"context"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/money"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	"github.com/fanfare/fanfare/services/accounts/app"
)

// Connect implements AccountsService on the application layer. Errors go
// out through apperr's interceptor, which picks the code from their kind.
type Connect struct {
	App *app.App
}

var _ accountsv1connect.AccountsServiceHandler = Connect{}

func (c Connect) scale(asset string) uint8 {
	a, err := c.App.Policy.Assets.Lookup(asset)
	if err != nil {
		return 0
	}
	return a.Scale
}

func (c Connect) OpenAccount(ctx context.Context, req *connect.Request[accountsv1.OpenAccountRequest]) (*connect.Response[accountsv1.OpenAccountResponse], error) {
	ids, opened, err := c.App.OpenAccount(ctx, req.Msg.IdentityId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.OpenAccountResponse{AccountIds: ids, Opened: opened}), nil
}

func (c Connect) GetBalance(ctx context.Context, req *connect.Request[accountsv1.GetBalanceRequest]) (*connect.Response[accountsv1.GetBalanceResponse], error) {
	asset, bal, err := c.App.Balance(ctx, req.Msg.AccountId, req.Msg.Asset)
	if err != nil {
		return nil, err
	}
	s := c.scale(asset)
	return connect.NewResponse(&accountsv1.GetBalanceResponse{AccountId: req.Msg.AccountId, Asset: asset,
		Total: money.FormatUnits(bal.Total, s), Held: money.FormatUnits(bal.Held, s), Available: money.FormatUnits(bal.Available, s)}), nil
}

func (c Connect) ListStatement(ctx context.Context, req *connect.Request[accountsv1.ListStatementRequest]) (*connect.Response[accountsv1.ListStatementResponse], error) {
	asset, entries, next, err := c.App.Statement(ctx, req.Msg.AccountId, req.Msg.Asset, int(req.Msg.PageSize), req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	s := c.scale(asset)
	res := &accountsv1.ListStatementResponse{AccountId: req.Msg.AccountId, Asset: asset, NextPageToken: next}
	for _, e := range entries {
		res.Entries = append(res.Entries, &accountsv1.StatementEntry{Sequence: e.Sequence, TransactionId: e.Transaction,
			Amount: money.FormatUnits(e.Amount, s), Balance: money.FormatUnits(e.Balance, s), Counterparty: e.Counterparty,
			Kind: e.Kind.String(), Memo: e.Memo})
	}
	return connect.NewResponse(res), nil
}

func (c Connect) RequestDeposit(ctx context.Context, req *connect.Request[accountsv1.RequestDepositRequest]) (*connect.Response[accountsv1.RequestDepositResponse], error) {
	d, err := c.App.RequestDeposit(ctx, req.Msg.RequestId, req.Msg.AccountId, req.Msg.Amount, req.Msg.Rail)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.RequestDepositResponse{DepositId: d.ID, Instructions: d.Instructions, Reference: d.Reference}), nil
}

func (c Connect) ConfirmDeposit(ctx context.Context, req *connect.Request[accountsv1.ConfirmDepositRequest]) (*connect.Response[accountsv1.ConfirmDepositResponse], error) {
	tx, err := c.App.ConfirmDeposit(ctx, req.Msg.RequestId, req.Msg.DepositId, req.Msg.RailReference)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.ConfirmDepositResponse{DepositId: req.Msg.DepositId, TransactionId: tx}), nil
}

func (c Connect) RequestWithdrawal(ctx context.Context, req *connect.Request[accountsv1.RequestWithdrawalRequest]) (*connect.Response[accountsv1.RequestWithdrawalResponse], error) {
	id, hold, err := c.App.RequestWithdrawal(ctx, req.Msg.RequestId, req.Msg.AccountId, req.Msg.Amount, req.Msg.Rail, req.Msg.Destination)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.RequestWithdrawalResponse{WithdrawalId: id, HoldId: hold}), nil
}

func (c Connect) SettleWithdrawal(ctx context.Context, req *connect.Request[accountsv1.SettleWithdrawalRequest]) (*connect.Response[accountsv1.SettleWithdrawalResponse], error) {
	tx, err := c.App.SettleWithdrawal(ctx, req.Msg.RequestId, req.Msg.WithdrawalId, req.Msg.RailReference)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.SettleWithdrawalResponse{WithdrawalId: req.Msg.WithdrawalId, TransactionId: tx}), nil
}

func (c Connect) RejectWithdrawal(ctx context.Context, req *connect.Request[accountsv1.RejectWithdrawalRequest]) (*connect.Response[accountsv1.RejectWithdrawalResponse], error) {
	if err := c.App.RejectWithdrawal(ctx, req.Msg.RequestId, req.Msg.WithdrawalId, req.Msg.Reason); err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountsv1.RejectWithdrawalResponse{WithdrawalId: req.Msg.WithdrawalId}), nil
}
