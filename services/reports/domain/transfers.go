package domain

import (
	"slices"
	"strings"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// The kinds of transfer: money entering or leaving through a payment rail.
const (
	TransferDeposit    = "deposit"
	TransferWithdrawal = "withdrawal"
)

// Transfer is a deposit or withdrawal requested and not yet closed by
// finance (confirmed or settled, or rejected): closed ones leave the
// projection.
type Transfer struct {
	Kind    string // TransferDeposit or TransferWithdrawal
	Account string
	Asset   string
	Amount  int64 // minor units
	Rail    string
	// Reference is the payer's reference (deposits); Destination where the
	// rail pays (withdrawals).
	Reference, Destination string
	RequestedAt            time.Time
}

// PendingTransfer is a pending transfer with its id (the deposit or
// withdrawal id).
type PendingTransfer struct {
	ID string
	Transfer
}

// transfer applies a deposit or withdrawal event requested or closed at
// at.
func (p *Projection) transfer(at time.Time, msg proto.Message) {
	if p.Transfers == nil { // restored from a projection saved without them
		p.Transfers = map[string]*Transfer{}
	}
	switch e := msg.(type) {
	case *eventsv1.DepositRequested:
		p.Transfers[e.DepositId] = &Transfer{Kind: TransferDeposit, Account: e.AccountId, Asset: e.GetAmount().GetAsset(),
			Amount: e.GetAmount().GetUnits(), Rail: e.Rail, Reference: e.Reference, RequestedAt: at.UTC()}
	case *eventsv1.WithdrawalRequested:
		p.Transfers[e.WithdrawalId] = &Transfer{Kind: TransferWithdrawal, Account: e.AccountId, Asset: e.GetAmount().GetAsset(),
			Amount: e.GetAmount().GetUnits(), Rail: e.Rail, Destination: e.Destination, RequestedAt: at.UTC()}
	case *eventsv1.DepositConfirmed:
		p.close(TransferDeposit, e.DepositId)
	case *eventsv1.DepositRejected:
		p.close(TransferDeposit, e.DepositId)
	case *eventsv1.WithdrawalSettled:
		p.close(TransferWithdrawal, e.WithdrawalId)
	case *eventsv1.WithdrawalRejected:
		p.close(TransferWithdrawal, e.WithdrawalId)
	}
}

// close drops a transfer once finance closed it. Deposit and withdrawal
// ids are one namespace (the accounts service's transfer streams), but only
// a transfer of the closing event's kind is dropped.
func (p *Projection) close(kind, id string) {
	if t := p.Transfers[id]; t != nil && t.Kind == kind {
		delete(p.Transfers, id)
	}
}

// Pending lists the pending transfers of kind (TransferDeposit,
// TransferWithdrawal, or "" for both), oldest request first, ties by id.
func (p *Projection) Pending(kind string) []PendingTransfer {
	var out []PendingTransfer
	for id, t := range p.Transfers {
		if kind == "" || t.Kind == kind {
			out = append(out, PendingTransfer{ID: id, Transfer: *t})
		}
	}
	slices.SortFunc(out, func(a, b PendingTransfer) int {
		if c := a.RequestedAt.Compare(b.RequestedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}
