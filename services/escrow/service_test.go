package escrow_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/sagas/crowdfund"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/escrow"
	"github.com/fanfare/fanfare/services/reports/audit"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const oneFAN = 100_000_000

type harness struct {
	t        *testing.T
	ctx      context.Context
	store    *eventstore.Store
	esURL    string
	key      ed25519.PrivateKey
	usd, fan *adapters.BookWriter
	clock    *servicetest.Clock
	url      string
}

// newHarness runs the accounts service, the escrow service on a test
// clock and the crowdfund saga on one event store and Kafka (with the
// forwarder).
func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	client, url := estest.ConnectURL(t)
	h := &harness{t: t, ctx: ctx, store: eventstore.NewStore(client), esURL: url, clock: servicetest.NewClock(time.Now().UTC())}
	brokers := servicetest.Bus(t, h.store)
	_, h.key, _ = ed25519.GenerateKey(nil)
	pub := h.key.Public().(ed25519.PublicKey)
	sub := kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}
	acc, err := accounts.New(ctx, accounts.Config{Store: h.store, Brokers: brokers, IdentityKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Serve(t, acc)
	h.usd, h.fan = acc.App.Books["USD"], acc.App.Books["FAN"]
	svc, err := escrow.New(ctx, escrow.Config{Store: h.store, Brokers: brokers, IdentityKey: pub, Tick: 20 * time.Millisecond, Now: h.clock.Now, Subscriber: sub})
	if err != nil {
		t.Fatal(err)
	}
	h.url, _ = servicetest.Serve(t, svc)
	saga, err := crowdfund.New(crowdfund.Config{Store: h.store, Brokers: brokers, Subscriber: sub})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- saga.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("crowdfund saga: %v", err)
		}
	})
	return h
}

func (h *harness) as(id string, roles ...string) escrowv1connect.EscrowServiceClient {
	return escrowv1connect.NewEscrowServiceClient(http.DefaultClient, h.url,
		connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

func (h *harness) open(book *adapters.BookWriter, ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		if _, err := book.Open(h.ctx, accdomain.WalletID(id, book.Asset())); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) balances(book *adapters.BookWriter, ids ...string) map[string]int64 {
	h.t.Helper()
	return accountstest.Named(h.t, book, ids...)
}

func (h *harness) wantBalances(book *adapters.BookWriter, want map[string]int64) {
	h.t.Helper()
	accountstest.Want(h.t, book, want)
}

func wantCode(t *testing.T, err error, code connect.Code, mentions string) {
	t.Helper()
	if servicetest.Code(err) != code || !strings.Contains(err.Error(), mentions) {
		t.Fatalf("got %v, want %v mentioning %q", err, code, mentions)
	}
}

// The council through the service: the policy's quorum (default 2) of
// distinct moderators releases to the artist's payees by their splits, the
// same moderator cannot approve twice, a release above the escrow is
// refused, a forfeit burns under the same threshold, and only moderators
// act.
func TestCouncilThroughTheService(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	h.open(h.fan, "ava", "bo")
	esc := accdomain.EscrowID("discovery", "ava", "FAN")
	if _, err := h.fan.Open(ctx, esc); err != nil {
		t.Fatal(err)
	}
	if out, err := h.fan.Apply(ctx, accdomain.Request{ID: "reward", Asset: "FAN", Kind: accdomain.KindRoyalty, RequestedBy: "test",
		Postings: []accdomain.Posting{{Debit: accdomain.Mint, Credit: esc, Amount: 10 * oneFAN}}}); err != nil || !out.Committed() {
		t.Fatalf("mint: %+v %v", out, err)
	}
	ava := h.as("ava", identity.RoleArtist)
	m1, m2, m3 := h.as("m1", identity.RoleModerator), h.as("m2", identity.RoleModerator), h.as("m3", identity.RoleModerator)
	servicetest.Eventually(t, "the escrow balance read from the ledger", func() error {
		r, err := ava.GetEscrow(ctx, connect.NewRequest(&escrowv1.GetEscrowRequest{}))
		if err != nil || r.Msg.Escrow.Balance != "10.00000000" || r.Msg.Escrow.Quorum != 2 {
			return fmt.Errorf("%v %v", r, err)
		}
		return nil
	})
	if _, err := ava.SetPayees(ctx, connect.NewRequest(&escrowv1.SetPayeesRequest{Payees: []*songsv1.Split{{PayeeId: "ava", Percent: "75"}, {PayeeId: "bo", Percent: "25"}}})); err != nil {
		t.Fatal(err)
	}
	_, err := ava.SetPayees(ctx, connect.NewRequest(&escrowv1.SetPayeesRequest{Payees: []*songsv1.Split{{PayeeId: "ava", Percent: "75"}}}))
	wantCode(t, err, connect.CodeInvalidArgument, "100%")

	_, err = h.as("lis", identity.RoleListener).ProposeRelease(ctx, connect.NewRequest(&escrowv1.ProposeReleaseRequest{RequestId: "r", ArtistId: "ava", Amount: "1"}))
	wantCode(t, err, connect.CodePermissionDenied, "moderator")
	for _, bad := range []string{"", "abc", "-1", "0", "0.000000001"} {
		_, err = m1.ProposeRelease(ctx, connect.NewRequest(&escrowv1.ProposeReleaseRequest{RequestId: "bad", ArtistId: "ava", Amount: bad}))
		wantCode(t, err, connect.CodeInvalidArgument, "amount")
	}

	p, err := m1.ProposeRelease(ctx, connect.NewRequest(&escrowv1.ProposeReleaseRequest{RequestId: "r1", ArtistId: "ava", Amount: "4", Reason: "a good year"}))
	if err != nil || p.Msg.Proposal.State != "open" {
		t.Fatalf("propose: %v %v", p, err)
	}
	id := p.Msg.Proposal.ProposalId
	_, err = m1.ApproveRelease(ctx, connect.NewRequest(&escrowv1.ApproveReleaseRequest{ArtistId: "ava", ProposalId: id}))
	wantCode(t, err, connect.CodeAlreadyExists, "already approved")
	h.wantBalances(h.fan, map[string]int64{esc: 10 * oneFAN, "ava": 0, "bo": 0})
	a, err := m2.ApproveRelease(ctx, connect.NewRequest(&escrowv1.ApproveReleaseRequest{ArtistId: "ava", ProposalId: id}))
	if err != nil || a.Msg.Proposal.State != "authorized" {
		t.Fatalf("approve: %v %v", a, err)
	}
	servicetest.Eventually(t, "the release settled", func() error {
		r, err := ava.GetEscrow(ctx, connect.NewRequest(&escrowv1.GetEscrowRequest{}))
		if err != nil || r.Msg.Escrow.Balance != "6.00000000" || r.Msg.Escrow.Proposals[0].State != "settled" {
			return fmt.Errorf("%v %v", r, err)
		}
		return nil
	})
	h.wantBalances(h.fan, map[string]int64{esc: 6 * oneFAN, "ava": 3 * oneFAN, "bo": oneFAN})

	_, err = m2.ProposeRelease(ctx, connect.NewRequest(&escrowv1.ProposeReleaseRequest{RequestId: "r2", ArtistId: "ava", Amount: "7"}))
	wantCode(t, err, connect.CodeFailedPrecondition, "more than")
	f, err := m3.Forfeit(ctx, connect.NewRequest(&escrowv1.ForfeitRequest{RequestId: "f1", ArtistId: "ava", Amount: "6", Reason: "fraud"}))
	if err != nil {
		t.Fatal(err)
	}
	h.wantBalances(h.fan, map[string]int64{esc: 6 * oneFAN})
	if _, err := m1.ApproveRelease(ctx, connect.NewRequest(&escrowv1.ApproveReleaseRequest{ArtistId: "ava", ProposalId: f.Msg.Proposal.ProposalId})); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the forfeit settled", func() error {
		if b := h.balances(h.fan, esc, accdomain.Burn); b[esc] != 0 || b[accdomain.Burn] != 6*oneFAN {
			return fmt.Errorf("%v", b)
		}
		return nil
	})
	h.wantBalances(h.fan, map[string]int64{"ava": 3 * oneFAN, "bo": oneFAN, accdomain.Mint: -10 * oneFAN})
	_, err = h.as("lis").GetEscrow(ctx, connect.NewRequest(&escrowv1.GetEscrowRequest{ArtistId: "ava"}))
	wantCode(t, err, connect.CodePermissionDenied, "")
}

func (h *harness) campaign(artist, goal string, closeOnGoal bool) *escrowv1.Campaign {
	h.t.Helper()
	r, err := h.as(artist, identity.RoleArtist).OpenCampaign(h.ctx, connect.NewRequest(&escrowv1.OpenCampaignRequest{RequestId: uuid.NewString(), Goal: goal,
		Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "the album", CloseOnGoal: closeOnGoal}))
	if err != nil {
		h.t.Fatal(err)
	}
	return r.Msg.Campaign
}

func (h *harness) pledge(backer, campaign, amount string) *escrowv1.Pledge {
	h.t.Helper()
	r, err := h.as(backer, identity.RoleListener).Pledge(h.ctx, connect.NewRequest(&escrowv1.PledgeRequest{RequestId: uuid.NewString(), CampaignId: campaign, Amount: amount, WaitMs: 20_000}))
	if err != nil {
		h.t.Fatal(err)
	}
	return r.Msg.Pledge
}

func (h *harness) status(id string) *escrowv1.Campaign {
	h.t.Helper()
	r, err := h.as("anyone").GetCampaign(h.ctx, connect.NewRequest(&escrowv1.GetCampaignRequest{CampaignId: id}))
	if err != nil {
		h.t.Fatal(err)
	}
	return r.Msg.Campaign
}

func (h *harness) settled(ids ...string) {
	h.t.Helper()
	servicetest.Eventually(h.t, "campaigns settled", func() error {
		for _, id := range ids {
			if s := h.status(id).Status; s != "succeeded" && s != "failed" {
				return fmt.Errorf("campaign %s is %s", id, s)
			}
		}
		return nil
	})
}

// A campaign that reaches its goal captures every standing pledge to the
// artist's payees by their splits; one that falls short voids every hold.
// Cancellations, rejected pledges, late pledges and bad input change
// nothing.
func TestCrowdfundsAllOrNothing(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	for _, b := range []string{"b1", "b2", "b3"} {
		accountstest.Fund(t, h.usd, accdomain.WalletID(b, "USD"), "fund-"+b, 100_00)
	}
	h.open(h.usd, "ar", "co")
	ar := h.as("ar", identity.RoleArtist)
	if _, err := ar.SetPayees(ctx, connect.NewRequest(&escrowv1.SetPayeesRequest{Payees: []*songsv1.Split{{PayeeId: "ar", Percent: "66.6667"}, {PayeeId: "co", Percent: "33.3333"}}})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  *escrowv1.OpenCampaignRequest
		code connect.Code
		says string
	}{
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "0", Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "u"}, connect.CodeInvalidArgument, "goal"},
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1.001", Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "u"}, connect.CodeInvalidArgument, "goal"},
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1", Deadline: timestamppb.New(h.clock.Now().Add(-time.Second)), Unlocks: "u"}, connect.CodeInvalidArgument, "deadline"},
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1", Unlocks: "u"}, connect.CodeInvalidArgument, "deadline"},
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1", Deadline: timestamppb.New(h.clock.Now().Add(time.Hour))}, connect.CodeInvalidArgument, "unlocks"},
		{&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1", Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "u", SongIds: []string{"nope"}}, connect.CodeInvalidArgument, "song_ids"},
		{&escrowv1.OpenCampaignRequest{Goal: "1", Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "u"}, connect.CodeInvalidArgument, "request_id"},
	} {
		_, err := ar.OpenCampaign(ctx, connect.NewRequest(c.req))
		wantCode(t, err, c.code, c.says)
	}
	_, err := h.as("b1", identity.RoleListener).OpenCampaign(ctx, connect.NewRequest(&escrowv1.OpenCampaignRequest{RequestId: "x", Goal: "1",
		Deadline: timestamppb.New(h.clock.Now().Add(time.Hour)), Unlocks: "u"}))
	wantCode(t, err, connect.CodePermissionDenied, "artist")

	win, lose := h.campaign("ar", "50.00", false), h.campaign("ar", "100.00", false)
	if win.Status != "open" || len(win.Payees) != 2 {
		t.Fatalf("opened: %v", win)
	}
	p1 := h.pledge("b1", win.CampaignId, "30.00")
	p2 := h.pledge("b2", win.CampaignId, "15.00")
	p3 := h.pledge("b3", win.CampaignId, "10.00")
	if p1.Status != "placed" || p2.Status != "placed" || p3.Status != "placed" {
		t.Fatalf("pledges: %v %v %v", p1, p2, p3)
	}
	if r := h.pledge("b3", win.CampaignId, "95.00"); r.Status != "rejected" || !strings.Contains(r.Failure, "INSUFFICIENT_FUNDS") {
		t.Fatalf("a pledge over the available balance: %v", r)
	}
	b3 := h.as("b3", identity.RoleListener)
	if c, err := b3.CancelPledge(ctx, connect.NewRequest(&escrowv1.CancelPledgeRequest{CampaignId: win.CampaignId, PledgeId: p3.PledgeId})); err != nil || c.Msg.Pledge.Status != "cancelled" {
		t.Fatalf("cancel: %v %v", c, err)
	}
	_, err = h.as("b1").CancelPledge(ctx, connect.NewRequest(&escrowv1.CancelPledgeRequest{CampaignId: win.CampaignId, PledgeId: p2.PledgeId}))
	wantCode(t, err, connect.CodeNotFound, "no pledge")
	h.pledge("b2", win.CampaignId, "5.00")
	h.pledge("b2", lose.CampaignId, "30.00")
	for _, bad := range []string{"0", "0.001", "ten", "-5"} {
		_, err = h.as("b1").Pledge(ctx, connect.NewRequest(&escrowv1.PledgeRequest{RequestId: "bad", CampaignId: win.CampaignId, Amount: bad}))
		wantCode(t, err, connect.CodeInvalidArgument, "amount")
	}
	_, err = h.as("b1").Pledge(ctx, connect.NewRequest(&escrowv1.PledgeRequest{RequestId: "u", CampaignId: uuid.NewString(), Amount: "1"}))
	wantCode(t, err, connect.CodeNotFound, "no campaign")
	_, err = ar.Pledge(ctx, connect.NewRequest(&escrowv1.PledgeRequest{RequestId: "own", CampaignId: win.CampaignId, Amount: "1"}))
	wantCode(t, err, connect.CodeFailedPrecondition, "own campaign")
	// Holds reserve, nothing moved yet.
	h.wantBalances(h.usd, map[string]int64{"b1": 100_00, "b2": 100_00, "b3": 100_00, "ar": 0, "co": 0})
	if s := h.status(win.CampaignId); s.Pledged != "50.00" || s.Backers != 2 {
		t.Fatalf("progress: %v", s)
	}

	h.clock.Set(h.clock.Now().Add(time.Hour))
	h.settled(win.CampaignId, lose.CampaignId)
	if w, l := h.status(win.CampaignId).Status, h.status(lose.CampaignId).Status; w != "succeeded" || l != "failed" {
		t.Fatalf("outcomes %s %s", w, l)
	}
	// 30 → 20.00/10.00, 15 → 10.00/5.00, 5 → 3.33/1.67: 33.33 and 16.67.
	h.wantBalances(h.usd, map[string]int64{"b1": 70_00, "b2": 80_00, "b3": 100_00, "ar": 33_33, "co": 16_67,
		accdomain.EscrowID("campaign", win.CampaignId, "USD"): 0})
	_, err = h.as("b1").Pledge(ctx, connect.NewRequest(&escrowv1.PledgeRequest{RequestId: "late", CampaignId: win.CampaignId, Amount: "1"}))
	wantCode(t, err, connect.CodeFailedPrecondition, "takes no more pledges")
	// Every hold is closed: the whole balance can move again.
	if r := h.pledge("b2", h.campaign("ar", "1", true).CampaignId, "80.00"); r.Status != "placed" {
		t.Fatalf("a pledge of everything left after the settlements: %v", r)
	}
	// The auditor's replay of the log finds both campaigns all or nothing.
	res, err := audit.Replay(ctx, h.esURL, audit.Options{})
	if err != nil || !res.Clean() {
		t.Fatalf("audit: %v %+v", err, res)
	}
	t.Logf("audit replayed %d events, hash %s", res.Events, res.Hash)
}

// Random pledges, cancellations and rejected pledges over several
// campaigns, then the deadline: each campaign either captured every
// standing pledge, its payee receiving exactly their sum, or restored
// every backer to the cent.
func TestCrowdfundProperty(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seed := rng.Int63()
	rng = rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	const backers, campaigns = 8, 6
	start := map[string]int64{}
	for i := range backers {
		id := fmt.Sprint("fan", i)
		start[id] = int64(20_00 + rng.Intn(200_00))
		accountstest.Fund(t, h.usd, accdomain.WalletID(id, "USD"), "fund-"+id, start[id])
	}
	type pl struct{ backer, id string }
	var ids []string
	goals := map[string]int64{}
	standing := map[string]map[pl]int64{}
	for i := range campaigns {
		artist := fmt.Sprint("artist", i)
		h.open(h.usd, artist)
		goal := int64(10_00 + rng.Intn(150_00))
		c := h.campaign(artist, fmt.Sprintf("%d.%02d", goal/100, goal%100), false)
		ids, goals[c.CampaignId], standing[c.CampaignId] = append(ids, c.CampaignId), goal, map[pl]int64{}
	}
	placed, rejected, cancelled := 0, 0, 0
	for range 120 {
		c := ids[rng.Intn(len(ids))]
		backer := fmt.Sprint("fan", rng.Intn(backers))
		if rng.Intn(4) == 0 && len(standing[c]) > 0 {
			for p := range standing[c] {
				r, err := h.as(p.backer).CancelPledge(h.ctx, connect.NewRequest(&escrowv1.CancelPledgeRequest{CampaignId: c, PledgeId: p.id}))
				if err != nil || r.Msg.Pledge.Status != "cancelled" {
					t.Fatalf("cancel: %v %v", r, err)
				}
				delete(standing[c], p)
				cancelled++
				break
			}
			continue
		}
		amount := int64(1 + rng.Intn(60_00))
		r := h.pledge(backer, c, fmt.Sprintf("%d.%02d", amount/100, amount%100))
		switch r.Status {
		case "placed":
			standing[c][pl{backer, r.PledgeId}] = amount
			placed++
		case "rejected":
			rejected++
		default:
			t.Fatalf("pledge: %v", r)
		}
	}
	h.clock.Set(h.clock.Now().Add(time.Hour))
	h.settled(ids...)
	want := map[string]int64{}
	for id, v := range start {
		want[id] = v
	}
	succeeded := 0
	for i, c := range ids {
		var sum int64
		for _, amt := range standing[c] {
			sum += amt
		}
		artist := fmt.Sprint("artist", i)
		status := h.status(c).Status
		if reached := sum >= goals[c] && sum > 0; (status == "succeeded") != reached {
			t.Fatalf("campaign %d: %s with %d of %d pledged", i, status, sum, goals[c])
		}
		want[artist] = 0
		if status == "succeeded" {
			succeeded++
			want[artist] = sum
			for p, amt := range standing[c] {
				want[p.backer] -= amt
			}
		}
	}
	h.wantBalances(h.usd, want)
	t.Logf("%d pledges placed, %d rejected, %d cancelled; %d of %d campaigns succeeded", placed, rejected, cancelled, succeeded, campaigns)
}
