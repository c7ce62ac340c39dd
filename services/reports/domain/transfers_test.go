package domain_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/reports/domain"
	"google.golang.org/protobuf/proto"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func usd(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: "USD", Units: units} }

// apply applies msg as revision rev of stream, at t0 + minutes.
func apply(t *testing.T, p *domain.Projection, stream string, rev uint64, minutes int, msg proto.Message) bool {
	t.Helper()
	touched, applied := p.Apply(domain.Source{Stream: stream, Revision: rev, At: t0.Add(time.Duration(minutes) * time.Minute)}, msg)
	if len(touched) != 0 {
		t.Fatalf("%T touched dashboards %v", msg, touched)
	}
	return applied
}

func ids(ts []domain.PendingTransfer) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func wantPending(t *testing.T, p *domain.Projection, kind string, want ...string) []domain.PendingTransfer {
	t.Helper()
	got := p.Pending(kind)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("pending %q: %v, want %v", kind, ids(got), want)
	}
	return got
}

// Requests are kept with what finance needs, oldest first (ties by id);
// confirming, settling or rejecting closes them; an event delivered again
// (Kafka is at least once) changes nothing, nor does a close of the other
// kind.
func TestPendingTransfers(t *testing.T) {
	p := domain.New()
	if !apply(t, p, "transfer-w1", 0, 0, &eventsv1.WithdrawalRequested{WithdrawalId: "w1", AccountId: "wallet:ann:USD", Amount: usd(200),
		Rail: "bank", Destination: "GB11", HoldId: "withdrawal:w1"}) {
		t.Fatal("withdrawal request not applied")
	}
	apply(t, p, "transfer-d2", 0, 5, &eventsv1.DepositRequested{DepositId: "d2", AccountId: "wallet:bob:USD", Amount: usd(750), Rail: "bank", Reference: "REF-D2"})
	apply(t, p, "transfer-d1", 0, 5, &eventsv1.DepositRequested{DepositId: "d1", AccountId: "wallet:ann:USD", Amount: usd(2000), Rail: "bank", Reference: "REF-D1"})

	all := wantPending(t, p, "", "w1", "d1", "d2")
	want := domain.Transfer{Kind: domain.TransferWithdrawal, Account: "wallet:ann:USD", Asset: "USD", Amount: 200, Rail: "bank", Destination: "GB11", RequestedAt: t0}
	if all[0].Transfer != want {
		t.Fatalf("w1: %+v, want %+v", all[0].Transfer, want)
	}
	want = domain.Transfer{Kind: domain.TransferDeposit, Account: "wallet:bob:USD", Asset: "USD", Amount: 750, Rail: "bank", Reference: "REF-D2", RequestedAt: t0.Add(5 * time.Minute)}
	if all[2].Transfer != want {
		t.Fatalf("d2: %+v, want %+v", all[2].Transfer, want)
	}
	wantPending(t, p, domain.TransferDeposit, "d1", "d2")
	wantPending(t, p, domain.TransferWithdrawal, "w1")

	// Redelivered request: not applied again, nothing changes.
	version := p.Version
	if apply(t, p, "transfer-d1", 0, 9, &eventsv1.DepositRequested{DepositId: "d1", AccountId: "wallet:ann:USD", Amount: usd(1), Rail: "bank"}) {
		t.Fatal("a redelivered request was applied again")
	}
	if got := p.Pending(domain.TransferDeposit)[0]; got.Amount != 2000 || !got.RequestedAt.Equal(t0.Add(5*time.Minute)) || p.Version != version {
		t.Fatalf("after a redelivery: %+v, version %d → %d", got, version, p.Version)
	}

	// A close of the other kind under the same id drops nothing.
	apply(t, p, "other-stream", 0, 10, &eventsv1.WithdrawalSettled{WithdrawalId: "d1", AccountId: "wallet:ann:USD", Amount: usd(2000)})
	wantPending(t, p, "", "w1", "d1", "d2")

	// Closing: confirmed, settled, rejected.
	apply(t, p, "transfer-d1", 1, 11, &eventsv1.DepositConfirmed{DepositId: "d1", AccountId: "wallet:ann:USD", Amount: usd(2000), Rail: "bank", TransactionId: "deposit:d1"})
	wantPending(t, p, "", "w1", "d2")
	apply(t, p, "transfer-w1", 1, 12, &eventsv1.WithdrawalSettled{WithdrawalId: "w1", AccountId: "wallet:ann:USD", Amount: usd(200), Rail: "bank"})
	wantPending(t, p, "", "d2")

	// The request delivered again after its close does not bring it back.
	if apply(t, p, "transfer-d1", 0, 13, &eventsv1.DepositRequested{DepositId: "d1", AccountId: "wallet:ann:USD", Amount: usd(2000), Rail: "bank"}) ||
		apply(t, p, "transfer-w1", 0, 13, &eventsv1.WithdrawalRequested{WithdrawalId: "w1", AccountId: "wallet:ann:USD", Amount: usd(200), Rail: "bank"}) {
		t.Fatal("a request redelivered after its close was applied")
	}
	wantPending(t, p, "", "d2")

	apply(t, p, "transfer-d2", 1, 14, &eventsv1.DepositRejected{DepositId: "d2", AccountId: "wallet:bob:USD", Reason: "never arrived"})
	apply(t, p, "transfer-w3", 0, 15, &eventsv1.WithdrawalRequested{WithdrawalId: "w3", AccountId: "wallet:bob:USD", Amount: usd(100), Rail: "bank"})
	apply(t, p, "transfer-w3", 1, 16, &eventsv1.WithdrawalRejected{WithdrawalId: "w3", AccountId: "wallet:bob:USD", Reason: "name mismatch"})
	wantPending(t, p, "")
}

// The pending transfers survive a save and restore; a projection saved
// before it had them takes transfers after its restore.
func TestPendingTransfersSavedAndRestored(t *testing.T) {
	p := domain.New()
	apply(t, p, "transfer-d1", 0, 0, &eventsv1.DepositRequested{DepositId: "d1", AccountId: "wallet:ann:USD", Amount: usd(2000), Rail: "bank", Reference: "R1"})
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back domain.Projection
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	got := wantPending(t, &back, "", "d1")
	if got[0].Transfer != p.Pending("")[0].Transfer {
		t.Fatalf("restored %+v, saved %+v", got[0].Transfer, p.Pending("")[0].Transfer)
	}

	var old domain.Projection
	if err := json.Unmarshal([]byte(`{"Version":3,"Marks":{"book-USD":3},"Songs":{},"People":{},"Accounts":{},"Campaigns":{}}`), &old); err != nil {
		t.Fatal(err)
	}
	wantPending(t, &old, "")
	apply(t, &old, "transfer-d9", 0, 1, &eventsv1.DepositRequested{DepositId: "d9", AccountId: "wallet:ann:USD", Amount: usd(1), Rail: "bank"})
	apply(t, &old, "transfer-w9", 0, 2, &eventsv1.WithdrawalRejected{WithdrawalId: "w9"})
	wantPending(t, &old, "", "d9")
}
