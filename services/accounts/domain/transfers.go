package domain

import (
	"fmt"
	"github.com/fanfare/fanfare/events"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// Errors of deposits and withdrawals.
var (
	ErrTransferNotFound = sentinel("transfer_not_found", KindNotFound, ReasonInvalid, "no such deposit or withdrawal")
	ErrTransferClosed   = sentinel("transfer_closed", KindConflict, ReasonInvalid, "deposit or withdrawal already closed the other way")
)

// TransferStatus is where a deposit or withdrawal stands.
type TransferStatus uint8

const (
	TransferNone TransferStatus = iota
	TransferRequested
	TransferDone     // deposit confirmed, withdrawal settled
	TransferRejected // rejected by finance
)

// Transfer is a deposit or a withdrawal: money crossing a payment rail. It
// is requested once (the request id is its id), then closed once by finance
// — confirmed/settled or rejected. Repeating a step with the same content
// is a no-op; with other content it is a conflict.
type Transfer struct {
	events.Recorder
	ID          string
	Withdrawal  bool
	Account     string
	Asset       string
	Amount      int64
	Rail        string
	Reference   string // deposit: the payer's reference; withdrawal: the destination
	HoldID      string // withdrawal only
	Status      TransferStatus
	Transaction string // the ledger transaction that moved the money
}

// NewTransfer is an empty transfer with the given id (a repository factory).
func NewTransfer(id string) *Transfer { return &Transfer{ID: id} }

// Apply evolves the transfer by one event.
func (t *Transfer) Apply(e proto.Message) error {
	switch e := e.(type) {
	case *eventsv1.DepositRequested:
		t.Account, t.Asset, t.Amount, t.Rail, t.Reference = e.AccountId, e.Amount.GetAsset(), e.Amount.GetUnits(), e.Rail, e.Reference
		t.Status = TransferRequested
	case *eventsv1.WithdrawalRequested:
		t.Withdrawal = true
		t.Account, t.Asset, t.Amount, t.Rail, t.Reference, t.HoldID = e.AccountId, e.Amount.GetAsset(), e.Amount.GetUnits(), e.Rail, e.Destination, e.HoldId
		t.Status = TransferRequested
	case *eventsv1.DepositConfirmed:
		t.Status, t.Transaction = TransferDone, e.TransactionId
	case *eventsv1.WithdrawalSettled:
		t.Status, t.Transaction = TransferDone, e.TransactionId
	case *eventsv1.DepositRejected, *eventsv1.WithdrawalRejected:
		t.Status = TransferRejected
	default:
		return fmt.Errorf("transfer %s: unexpected event %T", t.ID, e)
	}
	return nil
}

func (t *Transfer) raise(e proto.Message) error {
	if err := t.Apply(e); err != nil {
		return err
	}
	t.Record(e)
	return nil
}

// RequestDeposit records a deposit request; a repeat with the same content
// changes nothing.
func (t *Transfer) RequestDeposit(account, asset string, amount int64, rail, reference string) error {
	if t.Status != TransferNone {
		if t.Withdrawal || t.Account != account || t.Asset != asset || t.Amount != amount || t.Rail != rail {
			return reject(ErrIDConflict, account, "request id %s was used for another transfer", t.ID)
		}
		return nil
	}
	return t.raise(&eventsv1.DepositRequested{DepositId: t.ID, AccountId: account,
		Amount: &eventsv1.Money{Asset: asset, Units: amount}, Rail: rail, Reference: reference})
}

// RequestWithdrawal records a withdrawal request whose funds are held under holdID.
func (t *Transfer) RequestWithdrawal(account, asset string, amount int64, rail, destination, holdID string) error {
	if t.Status != TransferNone {
		if !t.Withdrawal || t.Account != account || t.Asset != asset || t.Amount != amount || t.Rail != rail || t.Reference != destination {
			return reject(ErrIDConflict, account, "request id %s was used for another transfer", t.ID)
		}
		return nil
	}
	return t.raise(&eventsv1.WithdrawalRequested{WithdrawalId: t.ID, AccountId: account,
		Amount: &eventsv1.Money{Asset: asset, Units: amount}, Rail: rail, Destination: destination, HoldId: holdID})
}

// checkOpen reports whether the transfer can be completed (done=true: it
// already was, the same way).
func (t *Transfer) checkOpen(withdrawal bool, closing TransferStatus) (done bool, err error) {
	switch {
	case t.Status == TransferNone || t.Withdrawal != withdrawal:
		return false, reject(ErrTransferNotFound, "", "no %s %s", kindName(withdrawal), t.ID)
	case t.Status == closing:
		return true, nil
	case t.Status != TransferRequested:
		return false, reject(ErrTransferClosed, t.Account, "%s %s is already closed", kindName(withdrawal), t.ID)
	}
	return false, nil
}

func kindName(withdrawal bool) string {
	if withdrawal {
		return "withdrawal"
	}
	return "deposit"
}

// Confirm records that the deposit's money arrived and was credited by tx.
func (t *Transfer) Confirm(tx, railRef, by string) error {
	if done, err := t.checkOpen(false, TransferDone); done || err != nil {
		return err
	}
	return t.raise(&eventsv1.DepositConfirmed{DepositId: t.ID, AccountId: t.Account, Amount: &eventsv1.Money{Asset: t.Asset, Units: t.Amount},
		Rail: t.Rail, RailReference: railRef, ConfirmedBy: by, TransactionId: tx})
}

// CanClose reports whether a confirm/settle (rejected=false) or a reject
// (rejected=true) may proceed; done means it already happened.
func (t *Transfer) CanClose(withdrawal, rejected bool) (done bool, err error) {
	closing := TransferDone
	if rejected {
		closing = TransferRejected
	}
	return t.checkOpen(withdrawal, closing)
}

// Settle records that the withdrawal was paid out by tx.
func (t *Transfer) Settle(tx, railRef, by string) error {
	if done, err := t.checkOpen(true, TransferDone); done || err != nil {
		return err
	}
	return t.raise(&eventsv1.WithdrawalSettled{WithdrawalId: t.ID, AccountId: t.Account, Amount: &eventsv1.Money{Asset: t.Asset, Units: t.Amount},
		Rail: t.Rail, RailReference: railRef, SettledBy: by, TransactionId: tx})
}

// Reject closes the transfer without moving money.
func (t *Transfer) Reject(reason, by string) error {
	if done, err := t.checkOpen(t.Withdrawal, TransferRejected); done || err != nil {
		return err
	}
	if t.Withdrawal {
		return t.raise(&eventsv1.WithdrawalRejected{WithdrawalId: t.ID, AccountId: t.Account, Reason: reason, RejectedBy: by})
	}
	return t.raise(&eventsv1.DepositRejected{DepositId: t.ID, AccountId: t.Account, Reason: reason, RejectedBy: by})
}
