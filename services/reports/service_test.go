package reports_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports"
	"github.com/fanfare/fanfare/services/reports/app"
	"github.com/fanfare/fanfare/services/reports/audit"
	"github.com/fanfare/fanfare/services/reports/settlement"
)

type harness struct {
	t       *testing.T
	ctx     context.Context
	store   *eventstore.Store
	esURL   string
	brokers []string
	key     ed25519.PrivateKey
	usd     *adapters.BookWriter
	fan     *adapters.BookWriter
	accURL  string // the accounts service
	url     string
	stop    func()
}

func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	client, url := estest.ConnectURL(t)
	h := &harness{t: t, ctx: ctx, store: eventstore.NewStore(client), esURL: url}
	h.brokers = servicetest.Bus(t, h.store)
	_, h.key, _ = ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: h.store, IdentityKey: h.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	h.accURL, _ = servicetest.Serve(t, acc)
	h.usd, h.fan = acc.App.Books["USD"], acc.App.Books["FAN"]
	return h
}

// start runs a reports service (the previous one must be stopped).
func (h *harness) start() {
	svc, err := reports.New(h.ctx, reports.Config{Store: h.store, EventStoreURL: h.esURL, Brokers: h.brokers,
		IdentityKey: h.key.Public().(ed25519.PublicKey), SaveEvery: 50 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	h.url, h.stop = servicetest.Serve(h.t, svc)
}

func (h *harness) as(id string, roles ...string) reportsv1connect.ReportsServiceClient {
	return reportsv1connect.NewReportsServiceClient(http.DefaultClient, h.url, connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

// accountsAs is an accounts service client calling as id.
func (h *harness) accountsAs(id string, roles ...string) accountsv1connect.AccountsServiceClient {
	return accountsv1connect.NewAccountsServiceClient(http.DefaultClient, h.accURL, connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

func (h *harness) move(bw *adapters.BookWriter, id string, kind domain.PostingKind, from, to string, amount int64) {
	h.t.Helper()
	req := domain.Request{ID: id, Asset: bw.Asset(), Kind: kind, RequestedBy: "test", Postings: []domain.Posting{{Debit: from, Credit: to, Amount: amount}}}
	if out, err := bw.Apply(h.ctx, req); err != nil || !out.Committed() {
		h.t.Fatalf("%s: %+v %v", id, out, err)
	}
}

func (h *harness) appendEvent(stream string, msg ...eventstore.Pending) {
	h.t.Helper()
	if _, err := h.store.Append(h.ctx, stream, esdb.Any{}, msg...); err != nil {
		h.t.Fatal(err)
	}
}

// until reads the dashboard as carl until ok says it is what the test
// waits for.
func (h *harness) until(what string, ok func(*reportsv1.ArtistDashboard) bool) *reportsv1.ArtistDashboard {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := h.as("carl").GetArtistDashboard(h.ctx, connect.NewRequest(&reportsv1.GetArtistDashboardRequest{ArtistId: "carl"}))
		if err != nil {
			h.t.Fatal(err)
		}
		if ok(res.Msg.Dashboard) {
			return res.Msg.Dashboard
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("dashboard never %s: %v", what, res.Msg.Dashboard)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	ann    = domain.WalletID("ann", "USD")
	carl   = domain.WalletID("carl", "USD")
	carlF  = domain.WalletID("carl", "FAN")
	escrow = domain.EscrowID("discovery", "carl", "FAN")
)

// The dashboard is built from the real events through Kafka: songs and
// their rewarded plays by tier, FAN earned and escrowed, tips and
// purchases, earnings per day. A watcher sees a new tip without asking
// again. After a restart the service starts from its saved projection,
// reads the topics again and counts nothing twice.
func TestDashboardLiveAndRestartWithoutDoubleCounting(t *testing.T) {
	h := newHarness(t)
	for _, acc := range []struct {
		bw *adapters.BookWriter
		id string
	}{{h.usd, ann}, {h.usd, carl}, {h.fan, carlF}, {h.fan, escrow}} {
		if _, err := acc.bw.Open(h.ctx, acc.id); err != nil {
			t.Fatal(err)
		}
	}
	h.appendEvent("song-s1", eventstore.Pending{Message: &eventsv1.SongRegistered{Description: &eventsv1.SongDescription{SongId: "s1", Title: "One", ArtistId: "carl"}}})
	h.appendEvent("royalty-test",
		eventstore.Pending{Message: &eventsv1.RewardRequested{PlayId: "p1", SongId: "s1", Tier: "discovery"}},
		eventstore.Pending{Message: &eventsv1.RewardRequested{PlayId: "p2", SongId: "s1", Tier: "discovery"}},
		eventstore.Pending{Message: &eventsv1.RewardRequested{PlayId: "p3", SongId: "s1", Tier: "standard"}})
	h.move(h.usd, "dep", domain.KindDeposit, domain.ExternalID("bank"), ann, 5000)
	h.move(h.fan, "p1", domain.KindRoyalty, domain.Mint, escrow, 200_000_000)
	h.move(h.fan, "p3", domain.KindRoyalty, domain.Mint, carlF, 100_000_000)
	h.move(h.usd, "tip-1", domain.KindTip, ann, carl, 250)
	h.move(h.usd, "buy-1", domain.KindPurchase, ann, carl, 199)
	h.start()

	// Songs, rewards and the ledger come through three topics, each at its
	// own pace: wait until all three have arrived.
	d := h.until("shows the tips and the plays", func(d *reportsv1.ArtistDashboard) bool {
		return d.Tips.Value == "2.50" && d.Purchases.Value == "1.99" && len(d.Songs) == 1 && d.Songs[0].DiscoveryPlays+d.Songs[0].StandardPlays == 3
	})
	if d.FanEarned.Value != "1.00000000" || d.FanEscrowed.Value != "2.00000000" || len(d.Songs) != 1 ||
		d.Songs[0].Title != "One" || d.Songs[0].DiscoveryPlays != 2 || d.Songs[0].StandardPlays != 1 {
		t.Fatalf("dashboard %v", d)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if len(d.EarningsByDay) != 2 || d.EarningsByDay[0].Day != today || d.EarningsByDay[0].Amount.Value != "1.00000000" || d.EarningsByDay[1].Amount.Value != "4.49" {
		t.Fatalf("earnings %v", d.EarningsByDay)
	}

	// A watcher gets the dashboard at once, then again when a tip lands.
	wctx, wcancel := context.WithCancel(h.ctx)
	defer wcancel()
	watch, err := h.as("carl").WatchArtistDashboard(wctx, connect.NewRequest(&reportsv1.WatchArtistDashboardRequest{ArtistId: "carl"}))
	if err != nil {
		t.Fatal(err)
	}
	if !watch.Receive() || watch.Msg().Dashboard.Tips.Value != "2.50" {
		t.Fatalf("first watched dashboard: %v %v", watch.Msg(), watch.Err())
	}
	h.move(h.usd, "tip-2", domain.KindTip, ann, carl, 10)
	for watch.Receive() && watch.Msg().Dashboard.Tips.Value != "2.60" {
	}
	if watch.Msg().GetDashboard().GetTips().GetValue() != "2.60" {
		t.Fatalf("the watch ended without the new tip: %v", watch.Err())
	}
	wcancel()

	// Activity by day and kind.
	act, err := h.as("carl").GetPayeeActivity(h.ctx, connect.NewRequest(&reportsv1.GetPayeeActivityRequest{AccountId: carl}))
	if err != nil || len(act.Msg.Days) != 2 || act.Msg.Days[1].Kind != "tip" || act.Msg.Days[1].Credits.Value != "2.60" {
		t.Fatalf("activity %v %v", act, err)
	}

	// Restart from the saved projection: nothing is counted twice.
	h.stop()
	if _, _, found, err := h.store.LoadSnapshot(h.ctx, app.SnapshotStream); !found || err != nil {
		t.Fatalf("no saved projection after stopping (%v)", err)
	}
	h.start()
	h.move(h.usd, "tip-3", domain.KindTip, ann, carl, 5)
	d = h.until("shows the tip after the restart", func(d *reportsv1.ArtistDashboard) bool { return d.Tips.Value != "2.60" })
	if d.Tips.Value != "2.65" || d.Purchases.Value != "1.99" || d.Songs[0].DiscoveryPlays != 2 || d.FanEarned.Value != "1.00000000" {
		t.Fatalf("after the restart: %v", d)
	}
}

// Each refusal names the role that is missing, and changes nothing.
func TestReportsAuthorization(t *testing.T) {
	h := newHarness(t)
	h.start()
	ann := h.as("ann", identity.RoleListener)
	denied := func(what string, err error) {
		t.Helper()
		if servicetest.Code(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "finance or auditor role") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := ann.GetArtistDashboard(h.ctx, connect.NewRequest(&reportsv1.GetArtistDashboardRequest{ArtistId: "carl"}))
	denied("another artist's dashboard", err)
	w, err := ann.WatchArtistDashboard(h.ctx, connect.NewRequest(&reportsv1.WatchArtistDashboardRequest{ArtistId: "carl"}))
	if err == nil {
		w.Receive()
		err = w.Err()
	}
	denied("watching another artist's dashboard", err)
	_, err = ann.GetPayeeActivity(h.ctx, connect.NewRequest(&reportsv1.GetPayeeActivityRequest{AccountId: carl}))
	denied("another payee's activity", err)
	ex, err := ann.ExportSettlement(h.ctx, connect.NewRequest(&reportsv1.ExportSettlementRequest{From: "2026-01-01", To: "2026-01-02"}))
	if err == nil {
		ex.Receive()
		err = ex.Err()
	}
	denied("an export", err)
	_, err = h.as("ann", identity.RoleArtist).RunAudit(h.ctx, connect.NewRequest(&reportsv1.RunAuditRequest{}))
	if servicetest.Code(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "auditor or finance role") {
		t.Fatalf("an audit by an artist: %v", err)
	}
	_, err = ann.GetPayeeActivity(h.ctx, connect.NewRequest(&reportsv1.GetPayeeActivityRequest{AccountId: "mint"}))
	if servicetest.Code(err) != connect.CodeInvalidArgument {
		t.Fatalf("activity of a system account: %v", err)
	}
	ex, err = h.as("fin", identity.RoleFinance).ExportSettlement(h.ctx, connect.NewRequest(&reportsv1.ExportSettlementRequest{From: "2026-01-02", To: "2026-01-01"}))
	if err == nil {
		ex.Receive()
		err = ex.Err()
	}
	if servicetest.Code(err) != connect.CodeInvalidArgument {
		t.Fatalf("a period that ends before it starts: %v", err)
	}
}

// The audit RPC gives the CLI's hash and finds the projection equal to
// the replayed books; the export RPC sends the file the CLI writes.
func TestAuditAndExportRPCs(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{ann, carl} {
		if _, err := h.usd.Open(h.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	h.move(h.usd, "dep", domain.KindDeposit, domain.ExternalID("bank"), ann, 5000)
	h.move(h.usd, "tip", domain.KindTip, ann, carl, 321)
	h.start()
	res, err := h.as("aud", identity.RoleAuditor).RunAudit(h.ctx, connect.NewRequest(&reportsv1.RunAuditRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := audit.Replay(h.ctx, h.esURL, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Msg.Clean || len(res.Msg.Differences) != 0 || res.Msg.Hash != direct.Hash || res.Msg.Events != direct.Events {
		t.Fatalf("audit rpc %v; direct %s %d", res.Msg, direct.Hash, direct.Events)
	}

	today := time.Now().UTC().Format(time.DateOnly)
	ex, err := h.as("fin", identity.RoleFinance).ExportSettlement(h.ctx, connect.NewRequest(&reportsv1.ExportSettlementRequest{From: today, To: today, Format: "csv"}))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for ex.Receive() {
		got.Write(ex.Msg().Chunk)
	}
	if ex.Err() != nil {
		t.Fatal(ex.Err())
	}
	d, _ := settlement.ParseDay(today)
	rep, err := settlement.Export(h.ctx, h.esURL, settlement.Options{From: d, To: d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := settlement.Write(&want, rep, "csv"); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() || !strings.Contains(got.String(), "wallet:carl:USD") {
		t.Fatalf("export rpc:\n%s\nwant:\n%s", got.String(), want.String())
	}
}

// pending lists the pending transfers of kind as finance until ok accepts
// them.
func (h *harness) pending(kind, what string, ok func([]*reportsv1.PendingTransfer) bool) []*reportsv1.PendingTransfer {
	h.t.Helper()
	var got []*reportsv1.PendingTransfer
	servicetest.Eventually(h.t, what, func() error {
		res, err := h.as("fin", identity.RoleFinance).ListPendingTransfers(h.ctx, connect.NewRequest(&reportsv1.ListPendingTransfersRequest{Kind: kind}))
		if err != nil {
			h.t.Fatal(err)
		}
		if got = res.Msg.Transfers; !ok(got) {
			return fmt.Errorf("pending %q: %v", kind, got)
		}
		return nil
	})
	return got
}

func transferIDs(ts []*reportsv1.PendingTransfer) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Id)
	}
	return out
}

func exactly(ids ...string) func([]*reportsv1.PendingTransfer) bool {
	return func(ts []*reportsv1.PendingTransfer) bool { return slices.Equal(transferIDs(ts), ids) }
}

// Deposits and withdrawals requested through the real accounts service
// show as pending, oldest first, until finance closes them; the list
// survives a restart without bringing closed ones back. Only finance and
// auditors may read it, and an unknown kind is refused.
func TestListPendingTransfers(t *testing.T) {
	h := newHarness(t)
	h.start()
	owner, fin := h.accountsAs("ann"), h.accountsAs("fin", identity.RoleFinance)
	if _, err := owner.OpenAccount(h.ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{})); err != nil { // 5.00 welcome credit
		t.Fatal(err)
	}
	before := time.Now()
	var refB string
	for _, d := range []struct{ id, amount string }{{"dep-a", "20.00"}, {"dep-b", "7.50"}} {
		res, err := owner.RequestDeposit(h.ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: d.id, AccountId: ann, Amount: d.amount}))
		if err != nil {
			t.Fatal(err)
		}
		refB = res.Msg.Reference
	}
	if _, err := owner.RequestWithdrawal(h.ctx, connect.NewRequest(&accountsv1.RequestWithdrawalRequest{RequestId: "wd-1", AccountId: ann, Amount: "2.00", Destination: "GB11"})); err != nil {
		t.Fatal(err)
	}
	if _, err := fin.ConfirmDeposit(h.ctx, connect.NewRequest(&accountsv1.ConfirmDepositRequest{RequestId: "c-a", DepositId: "dep-a", RailReference: "BANK-1"})); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	got := h.pending("", "the other deposit and the withdrawal pending", exactly("dep-b", "wd-1"))
	dep, wd := got[0], got[1]
	if dep.Kind != "deposit" || dep.AccountId != ann || dep.Amount.GetAsset() != "USD" || dep.Amount.GetValue() != "7.50" ||
		dep.Rail != "bank" || refB == "" || dep.Reference != refB || dep.Destination != "" {
		t.Fatalf("pending deposit %v (reference %q)", dep, refB)
	}
	if wd.Kind != "withdrawal" || wd.AccountId != ann || wd.Amount.GetAsset() != "USD" || wd.Amount.GetValue() != "2.00" ||
		wd.Rail != "bank" || wd.Destination != "GB11" || wd.Reference != "" {
		t.Fatalf("pending withdrawal %v", wd)
	}
	for _, p := range got {
		if at := p.RequestedAt.AsTime(); at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
			t.Fatalf("%s requested at %v, not between %v and %v", p.Id, at, before, after)
		}
	}
	if dep.RequestedAt.AsTime().After(wd.RequestedAt.AsTime()) {
		t.Fatalf("not oldest first: %v", got)
	}

	// Filtered by kind; an auditor may read it too.
	for kind, want := range map[string]string{"deposit": "dep-b", "withdrawal": "wd-1"} {
		res, err := h.as("aud", identity.RoleAuditor).ListPendingTransfers(h.ctx, connect.NewRequest(&reportsv1.ListPendingTransfersRequest{Kind: kind}))
		if err != nil || !slices.Equal(transferIDs(res.Msg.Transfers), []string{want}) {
			t.Fatalf("kind %s: %v %v", kind, res, err)
		}
	}

	// Settled: gone.
	if _, err := fin.SettleWithdrawal(h.ctx, connect.NewRequest(&accountsv1.SettleWithdrawalRequest{RequestId: "s-1", WithdrawalId: "wd-1", RailReference: "OUT-1"})); err != nil {
		t.Fatal(err)
	}
	h.pending("", "the settled withdrawal gone", exactly("dep-b"))

	// After a restart (saved projection, topics read again) a new request
	// shows next to the old one, and nothing closed comes back.
	h.stop()
	h.start()
	if _, err := owner.RequestDeposit(h.ctx, connect.NewRequest(&accountsv1.RequestDepositRequest{RequestId: "dep-c", AccountId: ann, Amount: "1.00"})); err != nil {
		t.Fatal(err)
	}
	h.pending("", "the new deposit after the restart", func(ts []*reportsv1.PendingTransfer) bool {
		ids := transferIDs(ts)
		if slices.Contains(ids, "dep-a") || slices.Contains(ids, "wd-1") {
			t.Fatalf("a closed transfer came back after the restart: %v", ids)
		}
		return slices.Equal(ids, []string{"dep-b", "dep-c"})
	})

	// Refusals.
	_, err := h.as("ann", identity.RoleListener).ListPendingTransfers(h.ctx, connect.NewRequest(&reportsv1.ListPendingTransfersRequest{}))
	if servicetest.Code(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "finance or auditor role") {
		t.Fatalf("a listener: %v", err)
	}
	_, err = h.as("fin", identity.RoleFinance).ListPendingTransfers(h.ctx, connect.NewRequest(&reportsv1.ListPendingTransfersRequest{Kind: "bogus"}))
	if servicetest.Code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("kind bogus: %v", err)
	}
}
