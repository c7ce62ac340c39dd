package accounts_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

type harness struct {
	t     *testing.T
	key   ed25519.PrivateKey
	store *eventstore.Store
	svc   *accounts.Service
	url   string
	stop  func()
}

func start(t *testing.T, store *eventstore.Store, key ed25519.PrivateKey) *harness {
	t.Helper()
	svc, err := accounts.New(context.Background(), accounts.Config{Store: store, IdentityKey: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, key: key, store: store, svc: svc}
	h.url, h.stop = servicetest.Serve(t, svc)
	return h
}

// as is a client that calls with a signed identity.
func (h *harness) as(id string, roles ...string) accountsv1connect.AccountsServiceClient {
	return accountsv1connect.NewAccountsServiceClient(http.DefaultClient, h.url,
		connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

var code = servicetest.Code

func wantCode(t *testing.T, what string, err error, c connect.Code) {
	t.Helper()
	if code(err) != c {
		t.Fatalf("%s: want %v, got %v", what, c, err)
	}
}

func balance(t *testing.T, c accountsv1connect.AccountsServiceClient, account string) (string, string, string) {
	t.Helper()
	req := &accountsv1.GetBalanceRequest{AccountId: account}
	if strings.HasPrefix(account, "external:") || account == "promotions" {
		req.Asset = "USD"
	}
	res, err := c.GetBalance(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("balance of %s: %v", account, err)
	}
	return res.Msg.Total, res.Msg.Held, res.Msg.Available
}

func wantBalance(t *testing.T, c accountsv1connect.AccountsServiceClient, account, total, held, available string) {
	t.Helper()
	tt, h, a := balance(t, c, account)
	if tt != total || h != held || a != available {
		t.Fatalf("%s: total %s held %s available %s, want %s %s %s", account, tt, h, a, total, held, available)
	}
}

// sumZero checks the sum of every balance of every book, system accounts included.
func sumZero(t *testing.T, svc *accounts.Service) {
	t.Helper()
	for _, w := range svc.App.Books {
		accountstest.Balances(t, w)
	}
}

func TestAccountsServiceEndToEnd(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	store := eventstore.NewStore(estest.Connect(t))
	h := start(t, store, key)
	alice, bob, finance := h.as("alice"), h.as("bob"), h.as("fin", identity.RoleFinance)
	const wallet = "wallet:alice:USD"

	// No signed identity: refused.
	anon := accountsv1connect.NewAccountsServiceClient(http.DefaultClient, h.url)
	_, err := anon.OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	wantCode(t, "unsigned call", err, connect.CodeUnauthenticated)

	// Open: wallets and the welcome credit, once.
	for i, wantOpened := range []bool{true, false} {
		res, err := alice.OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
		if err != nil || res.Msg.Opened != wantOpened || len(res.Msg.AccountIds) != 2 {
			t.Fatalf("open #%d: %+v %v", i+1, res, err)
		}
	}
	wantBalance(t, alice, wallet, "5.00", "0.00", "5.00")
	wantBalance(t, alice, "wallet:alice:FAN", "0.00000000", "0.00000000", "0.00000000")
	_, err = bob.GetBalance(ctx, connect.NewRequest(&accountsv1.GetBalanceRequest{AccountId: wallet}))
	wantCode(t, "bob reads alice", err, connect.CodePermissionDenied)

	// Deposit: requested by alice, confirmed by finance only, once.
	dep, err := alice.RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "dep-1", AccountId: wallet, Amount: "20.00"}))
	if err != nil || dep.Msg.DepositId != "dep-1" || dep.Msg.Reference == "" {
		t.Fatalf("request deposit: %+v %v", dep, err)
	}
	wantBalance(t, alice, wallet, "5.00", "0.00", "5.00")
	_, err = alice.ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-1", DepositId: "dep-1"}))
	wantCode(t, "alice confirms her own deposit", err, connect.CodePermissionDenied)
	var tx string
	for i := 0; i < 2; i++ {
		res, err := finance.ConfirmDeposit(ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-1", DepositId: "dep-1", RailReference: "BANK-77"}))
		if err != nil || (tx != "" && res.Msg.TransactionId != tx) {
			t.Fatalf("confirm #%d: %+v %v", i+1, res, err)
		}
		tx = res.Msg.TransactionId
	}
	wantBalance(t, alice, wallet, "25.00", "0.00", "25.00")
	wantBalance(t, finance, "external:bank", "-20.00", "0.00", "-20.00")
	_, err = alice.RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "dep-1", AccountId: wallet, Amount: "21.00"}))
	wantCode(t, "request id reused with another amount", err, connect.CodeAlreadyExists)

	// Bad input is refused precisely and changes nothing.
	for _, bad := range []struct{ account, amount string }{
		{wallet, "0.001"}, {wallet, "0"}, {wallet, "-1.00"}, {wallet, "abc"}, {wallet, ""}, {"wallet:alice:EUR", "1.00"}, {"nonsense", "1.00"},
	} {
		_, err := alice.RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "bad-" + bad.amount + bad.account, AccountId: bad.account, Amount: bad.amount}))
		if c := code(err); c != connect.CodeInvalidArgument && c != connect.CodePermissionDenied {
			t.Fatalf("deposit %q to %s: want invalid argument, got %v", bad.amount, bad.account, err)
		}
	}
	_, err = alice.RequestDeposit(ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "bad-x", AccountId: wallet, Amount: "0.001"}))
	if code(err) != connect.CodeInvalidArgument || err.Error() == "" {
		t.Fatalf("0.001 USD: %v", err)
	}
	wantBalance(t, alice, wallet, "25.00", "0.00", "25.00")

	// Withdrawal: held, then settled; an overdraft is refused; a rejected one is released.
	w, err := alice.RequestWithdrawal(ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "wd-1", AccountId: wallet, Amount: "10.00", Destination: "GB11"}))
	if err != nil {
		t.Fatal(err)
	}
	wantBalance(t, alice, wallet, "25.00", "10.00", "15.00")
	_, err = alice.RequestWithdrawal(ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "wd-2", AccountId: wallet, Amount: "15.01", Destination: "GB11"}))
	wantCode(t, "overdraft", err, connect.CodeFailedPrecondition)
	if _, err := finance.SettleWithdrawal(ctx, connect.NewRequest(&accountsv1.SettleWithdrawalRequest{RequestId: "s-1", WithdrawalId: w.Msg.WithdrawalId, RailReference: "OUT-1"})); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, alice, wallet, "15.00", "0.00", "15.00")
	_, err = finance.RejectWithdrawal(ctx, connect.NewRequest(&accountsv1.RejectWithdrawalRequest{RequestId: "r-1", WithdrawalId: w.Msg.WithdrawalId}))
	wantCode(t, "reject a settled withdrawal", err, connect.CodeAlreadyExists)
	if _, err := alice.RequestWithdrawal(ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "wd-3", AccountId: wallet, Amount: "5.00", Destination: "GB11"})); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, alice, wallet, "15.00", "5.00", "10.00")
	if _, err := finance.RejectWithdrawal(ctx, connect.NewRequest(&accountsv1.RejectWithdrawalRequest{RequestId: "r-3", WithdrawalId: "wd-3", Reason: "name mismatch"})); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, alice, wallet, "15.00", "0.00", "15.00")
	wantBalance(t, finance, "external:bank", "-10.00", "0.00", "-10.00")
	wantBalance(t, finance, "promotions", "-5.00", "0.00", "-5.00")
	sumZero(t, h.svc)

	// Statement: newest first, running balances, pages of 2.
	var got []*accountsv1.StatementEntry
	token := ""
	for page := 0; page < 5; page++ {
		res, err := alice.ListStatement(ctx, connect.NewRequest(&accountsv1.ListStatementRequest{AccountId: wallet, PageSize: 2, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Msg.Entries...)
		if token = res.Msg.NextPageToken; token == "" {
			break
		}
	}
	want := [][2]string{{"-10.00", "15.00"}, {"20.00", "25.00"}, {"5.00", "5.00"}}
	if len(got) != len(want) {
		t.Fatalf("statement has %d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Amount != w[0] || got[i].Balance != w[1] {
			t.Fatalf("statement entry %d: %s → %s, want %s → %s", i, got[i].Amount, got[i].Balance, w[0], w[1])
		}
	}

	// A restart recovers the same books and statements from the event store.
	h.stop()
	h2 := start(t, store, key)
	defer h2.stop()
	alice2 := h2.as("alice")
	wantBalance(t, alice2, wallet, "15.00", "0.00", "15.00")
	res, err := alice2.ListStatement(ctx, connect.NewRequest(&accountsv1.ListStatementRequest{AccountId: wallet}))
	if err != nil || len(res.Msg.Entries) != 3 || res.Msg.Entries[0].Balance != "15.00" {
		t.Fatalf("statement after restart: %v %v", res, err)
	}
	res2, err := alice2.OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
	if err != nil || res2.Msg.Opened {
		t.Fatalf("open after restart: %v %v", res2, err)
	}
	wantBalance(t, alice2, wallet, "15.00", "0.00", "15.00")
	sumZero(t, h2.svc)
}

// Rules are data: the default policy is recorded as version 1; a newer
// PolicyVersioned in the store is in force after a restart (new identities
// get the new welcome credit), logged in the books so replays agree.
func TestPolicyIsVersionedData(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	store := eventstore.NewStore(estest.Connect(t))
	h := start(t, store, key)
	if _, err := h.as("ann").OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, h.as("ann"), "wallet:ann:USD", "5.00", "0.00", "5.00")
	h.stop()

	var versions []uint64
	store.ReadStream(ctx, adapters.PolicyStream, 0, func(e eventstore.Event) error {
		versions = append(versions, e.Message.(*eventsv1.PolicyVersioned).Version)
		return nil
	})
	if fmt.Sprint(versions) != "[1]" {
		t.Fatalf("policy stream holds versions %v, want [1]", versions)
	}
	p2 := domain.DefaultPolicy()
	p2.Version = 2
	p2.WelcomeCredit = money.New(money.USD, 700)
	if _, err := store.Append(ctx, adapters.PolicyStream, esdb.Revision(0), eventstore.Pending{Message: adapters.PolicyToEvent(p2, "fin", "bigger welcome")}); err != nil {
		t.Fatal(err)
	}
	h2 := start(t, store, key)
	if _, err := h2.as("bea").OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, h2.as("bea"), "wallet:bea:USD", "7.00", "0.00", "7.00")
	wantBalance(t, h2.as("ann"), "wallet:ann:USD", "5.00", "0.00", "5.00")
	h2.stop()

	// A full replay (no snapshot) decides the same way under the same rules.
	h3 := start(t, store, key)
	defer h3.stop()
	wantBalance(t, h3.as("bea"), "wallet:bea:USD", "7.00", "0.00", "7.00")
	wantBalance(t, h3.as("ann"), "wallet:ann:USD", "5.00", "0.00", "5.00")
	var v uint64
	h3.svc.App.Books["USD"].Read(func(b *domain.Book) error { v = b.Policy().Version; return nil })
	if v != 2 {
		t.Fatalf("book under policy v%d, want 2", v)
	}
	sumZero(t, h3.svc)
}
