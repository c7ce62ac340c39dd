package tipping_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	accdomain "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/tipping"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

type harness struct {
	t       *testing.T
	ctx     context.Context
	store   *eventstore.Store
	brokers []string
	key     ed25519.PrivateKey
	usd     *adapters.BookWriter
	clock   *servicetest.Clock
	url     string
	stop    func()
}

func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, store: eventstore.NewStore(estest.Connect(t)), clock: servicetest.NewClock(time.Now().UTC())}
	h.brokers = servicetest.Bus(t, h.store)
	_, h.key, _ = ed25519.GenerateKey(nil)
	acc, err := accounts.New(ctx, accounts.Config{Store: h.store, Brokers: h.brokers, IdentityKey: h.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Serve(t, acc)
	h.usd = acc.App.Books["USD"]
	return h
}

// start runs a tipping service (a previous one must be stopped).
func (h *harness) start() {
	svc, err := tipping.New(h.ctx, tipping.Config{Store: h.store, Brokers: h.brokers, IdentityKey: h.key.Public().(ed25519.PublicKey),
		Tick: 20 * time.Millisecond, Now: h.clock.Now,
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.url, h.stop = servicetest.Serve(h.t, svc)
}

func (h *harness) as(id string, roles ...string) tippingv1connect.TippingServiceClient {
	return tippingv1connect.NewTippingServiceClient(http.DefaultClient, h.url,
		connect.WithInterceptors(identity.CallAs(h.key, identity.Identity{ID: id, Roles: roles})))
}

func (h *harness) appendEvent(stream string, msgs ...proto.Message) {
	h.t.Helper()
	var ps []eventstore.Pending
	for _, m := range msgs {
		ps = append(ps, eventstore.Pending{Message: m})
	}
	if _, err := h.store.Append(h.ctx, stream, esdb.Any{}, ps...); err != nil {
		h.t.Fatal(err)
	}
}

// song registers a song paying three payees 33.3333/33.3333/33.3334%.
func (h *harness) song(artist string, payees ...string) string {
	id := uuid.NewString()
	h.appendEvent("song-"+id, &eventsv1.SongRegistered{Description: &eventsv1.SongDescription{SongId: id, Title: "t", ArtistId: artist,
		DurationMs: 180_000, Splits: []*eventsv1.Split{{PayeeId: payees[0], SharePpm: 333_333}, {PayeeId: payees[1], SharePpm: 333_333},
			{PayeeId: payees[2], SharePpm: 333_334}}}})
	return id
}

// wantBalances checks the USD totals of the named identities' wallets
// (and that every balance of the book sums to zero).
func (h *harness) wantBalances(want map[string]int64) {
	h.t.Helper()
	accountstest.Want(h.t, h.usd, want)
}

// eventually retries check until it passes (20 s at most).
func (h *harness) eventually(what string, check func() error) {
	h.t.Helper()
	servicetest.Eventually(h.t, what, check)
}

// events reads a stream's event types.
func (h *harness) events(stream string) []proto.Message {
	h.t.Helper()
	var out []proto.Message
	if _, err := h.store.ReadStream(h.ctx, stream, 0, func(e eventstore.Event) error { out = append(out, e.Message); return nil }); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func count[T proto.Message](evs []proto.Message) int {
	n := 0
	for _, e := range evs {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

// newTippingHarness runs a tipping service with a song by pa paying pa,
// pb and pc (each holding 0.01, so their wallets are open) and lena
// holding 10.00.
func newTippingHarness(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.start()
	for _, p := range []string{"pa", "pb", "pc"} {
		accountstest.Fund(t, h.usd, accdomain.WalletID(p, "USD"), "open-"+p, 1)
	}
	accountstest.Fund(t, h.usd, accdomain.WalletID("lena", "USD"), "dep-lena", 1000)
	return h, h.song("pa", "pa", "pb", "pc")
}

// Tips pay the song's payees by its splits to the cent (largest remainder,
// ties to the smaller payee id); a repeat moves nothing, a reused request
// id with other content and every bad input are refused and change
// nothing, and a tip the wallet cannot cover fails whole.
func TestTipsPayTheSplits(t *testing.T) {
	h, song := newTippingHarness(t)
	lena := h.as("lena")
	var res *connect.Response[tippingv1.TipResponse]
	h.eventually("the catalog knows the song", func() error {
		var err error
		res, err = lena.Tip(h.ctx, connect.NewRequest(&tippingv1.TipRequest{RequestId: "t1", SongId: song, Amount: "1.00"}))
		return err
	})
	if tip := res.Msg.Tip; tip.Status != tippingv1.Status_STATUS_COMPLETED || tip.Amount != "1.00" || tip.Source != "manual" {
		t.Fatalf("tip: %v", tip)
	}
	// 100 cents: 33.3333 + 33.3333 + 33.3334 → 33, 33, 34.
	h.wantBalances(map[string]int64{"lena": 900, "pa": 34, "pb": 34, "pc": 35})

	again, err := lena.Tip(h.ctx, connect.NewRequest(&tippingv1.TipRequest{RequestId: "t1", SongId: song, Amount: "1.00"}))
	if err != nil || again.Msg.Tip.TipId != res.Msg.Tip.TipId || again.Msg.Tip.Status != tippingv1.Status_STATUS_COMPLETED {
		t.Fatalf("repeat: %v %v", again, err)
	}
	if _, err := lena.Tip(h.ctx, connect.NewRequest(&tippingv1.TipRequest{RequestId: "t1", SongId: song, Amount: "2.00"})); servicetest.Code(err) != connect.CodeAlreadyExists {
		t.Fatalf("reused request id: %v", err)
	}
	// Thumbs-up: 50 cents → 16.6666.. each; remainders .66665, .66665, .6667 → pc, then pa (smaller id).
	up, err := lena.ThumbsUp(h.ctx, connect.NewRequest(&tippingv1.ThumbsUpRequest{RequestId: "u1", SongId: song}))
	if err != nil || up.Msg.Tip.Amount != "0.50" || up.Msg.Tip.Source != "thumbs_up" || up.Msg.Tip.Status != tippingv1.Status_STATUS_COMPLETED {
		t.Fatalf("thumbs-up: %v %v", up, err)
	}
	h.wantBalances(map[string]int64{"lena": 850, "pa": 51, "pb": 50, "pc": 52})

	if _, err := lena.SetThumbsUpAmount(h.ctx, connect.NewRequest(&tippingv1.SetThumbsUpAmountRequest{Amount: "0.03"})); err != nil {
		t.Fatal(err)
	}
	if _, err := lena.ThumbsUp(h.ctx, connect.NewRequest(&tippingv1.ThumbsUpRequest{RequestId: "u2", SongId: song})); err != nil {
		t.Fatal(err)
	}
	h.wantBalances(map[string]int64{"lena": 847, "pa": 52, "pb": 51, "pc": 53})

	bad := []struct {
		req  *tippingv1.TipRequest
		code connect.Code
		msg  string
	}{
		{&tippingv1.TipRequest{RequestId: "b1", SongId: song, Amount: "0.001"}, connect.CodeInvalidArgument, "amount"},
		{&tippingv1.TipRequest{RequestId: "b2", SongId: song, Amount: "0"}, connect.CodeInvalidArgument, "amount"},
		{&tippingv1.TipRequest{RequestId: "b3", SongId: song, Amount: "-1.00"}, connect.CodeInvalidArgument, "amount"},
		{&tippingv1.TipRequest{RequestId: "b4", SongId: song, Amount: "ten"}, connect.CodeInvalidArgument, "amount"},
		{&tippingv1.TipRequest{RequestId: "", SongId: song, Amount: "1.00"}, connect.CodeInvalidArgument, "request_id"},
		{&tippingv1.TipRequest{RequestId: "b5", SongId: uuid.NewString(), Amount: "1.00"}, connect.CodeNotFound, "not registered"},
	}
	for _, b := range bad {
		_, err := lena.Tip(h.ctx, connect.NewRequest(b.req))
		if servicetest.Code(err) != b.code || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%v: got %v, want %v mentioning %q", b.req, err, b.code, b.msg)
		}
	}
	// A tip the wallet cannot cover fails whole, with the ledger's reason.
	poor, err := lena.Tip(h.ctx, connect.NewRequest(&tippingv1.TipRequest{RequestId: "big", SongId: song, Amount: "100.00"}))
	if err != nil || poor.Msg.Tip.Status != tippingv1.Status_STATUS_FAILED || poor.Msg.Tip.FailureReason != "insufficient_funds" {
		t.Fatalf("uncovered tip: %v %v", poor, err)
	}
	h.wantBalances(map[string]int64{"lena": 847, "pa": 52, "pb": 51, "pc": 53})
	got, err := lena.GetTip(h.ctx, connect.NewRequest(&tippingv1.GetTipRequest{TipId: poor.Msg.Tip.TipId}))
	if err != nil || got.Msg.Tip.Status != tippingv1.Status_STATUS_FAILED {
		t.Fatalf("get failed tip: %v %v", got, err)
	}
	if _, err := h.as("pb").GetTip(h.ctx, connect.NewRequest(&tippingv1.GetTipRequest{TipId: poor.Msg.Tip.TipId})); servicetest.Code(err) != connect.CodeNotFound {
		t.Fatalf("another fan's tip: %v", err)
	}
}

// After the 5th counted play of a song every further counted play tips
// USD 0.05 within the month's budget; over budget the tip is skipped and
// recorded; a play delivered twice tips once.
func TestAutoTipsWithinTheBudget(t *testing.T) {
	h, song := newTippingHarness(t)
	lena := h.as("lena")
	set, err := lena.SetAutoTip(h.ctx, connect.NewRequest(&tippingv1.SetAutoTipRequest{MonthlyBudget: "0.10"}))
	if err != nil || !set.Msg.Settings.AutoTip || set.Msg.Settings.AutoTipMonthlyBudget != "0.10" || set.Msg.Settings.AutoTipAmount != "0.05" {
		t.Fatalf("set auto-tip: %v %v", set, err)
	}
	if _, err := lena.SetAutoTip(h.ctx, connect.NewRequest(&tippingv1.SetAutoTipRequest{MonthlyBudget: "0.01"})); servicetest.Code(err) != connect.CodeInvalidArgument {
		t.Fatalf("budget below one auto-tip: %v", err)
	}
	play := func(n uint64) *eventsv1.PlayCounted {
		return &eventsv1.PlayCounted{PlayId: fmt.Sprintf("play-%d", n), SessionId: fmt.Sprintf("s-%d", n), SongId: song, ListenerId: "lena",
			NodeId: "node", SongPlayNumber: n, ListenerPlayNumber: n, CoverageMs: 90_000}
	}
	for n := uint64(1); n <= 8; n++ {
		h.appendEvent("playshard-0", play(n))
	}
	h.appendEvent("playshard-0", play(6)) // redelivered by a replaying producer: same play id
	h.eventually("plays 6 and 7 tipped, 8 skipped", func() error {
		evs := h.events("fan-lena")
		if n := count[*eventsv1.TipSettled](evs); n != 2 {
			return fmt.Errorf("%d tips settled", n)
		}
		if n := count[*eventsv1.AutoTipSkipped](evs); n != 1 {
			return fmt.Errorf("%d skips", n)
		}
		return nil
	})
	evs := h.events("fan-lena")
	if n := count[*eventsv1.TipRequested](evs); n != 2 {
		t.Fatalf("%d auto-tips requested, want 2", n)
	}
	for _, e := range evs {
		if s, ok := e.(*eventsv1.AutoTipSkipped); ok && (s.PlayId != "play-8" || s.Spent.Units != 10 || s.MonthlyBudget.Units != 10) {
			t.Fatalf("skip: %v", s)
		}
	}
	// 5 cents: 1.66665 each → pc 2, then pa (smaller id) 2, pb 1; twice.
	h.wantBalances(map[string]int64{"lena": 990, "pa": 5, "pb": 3, "pc": 5})
	st, err := lena.GetTipSettings(h.ctx, connect.NewRequest(&tippingv1.GetTipSettingsRequest{}))
	if err != nil || st.Msg.Settings.AutoTipSpentThisMonth != "0.10" {
		t.Fatalf("settings: %v %v", st, err)
	}
	// Opted out: a 9th play tips nothing even after raising the budget.
	if _, err := lena.ClearAutoTip(h.ctx, connect.NewRequest(&tippingv1.ClearAutoTipRequest{})); err != nil {
		t.Fatal(err)
	}
	h.appendEvent("playshard-0", play(9))
	h.appendEvent("playshard-0", &eventsv1.PlayCounted{PlayId: "other", SongId: song, ListenerId: "max", SongPlayNumber: 10, ListenerPlayNumber: 9})
	time.Sleep(300 * time.Millisecond) // let the plays be consumed
	if n := count[*eventsv1.TipRequested](h.events("fan-lena")); n != 2 {
		t.Fatalf("%d auto-tips after opting out", n)
	}
	h.wantBalances(map[string]int64{"lena": 990, "pa": 5, "pb": 3, "pc": 5})
}

// Subscriptions are charged on the injectable clock: at once, at each
// period's start, retried 3 times over 3 days and then lapsed; a restart
// neither loses nor repeats a charge, and a cancellation ends the
// subscription when its paid period does.
func TestSubscriptionsOnTheClock(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	h.clock.Set(start)
	h.start()
	accountstest.Fund(t, h.usd, accdomain.WalletID("ava", "USD"), "open-ava", 1)
	accountstest.Fund(t, h.usd, accdomain.WalletID("lena", "USD"), "dep-lena", 300)
	accountstest.Fund(t, h.usd, accdomain.WalletID("max", "USD"), "dep-max", 50)

	if _, err := h.as("lena").SetTrueFanAmount(h.ctx, connect.NewRequest(&tippingv1.SetTrueFanAmountRequest{Monthly: "2.00"})); servicetest.Code(err) != connect.CodePermissionDenied {
		t.Fatalf("a listener setting a true-fan amount: %v", err)
	}
	if _, err := h.as("ava", identity.RoleArtist).SetTrueFanAmount(h.ctx, connect.NewRequest(&tippingv1.SetTrueFanAmountRequest{Monthly: "2.00"})); err != nil {
		t.Fatal(err)
	}
	lena := h.as("lena")
	sub, err := lena.Subscribe(h.ctx, connect.NewRequest(&tippingv1.SubscribeRequest{RequestId: "s1", ArtistId: "ava"}))
	if err != nil {
		t.Fatal(err)
	}
	s := sub.Msg.Subscription
	feb28 := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC) // Jan 31 + 1 month, clamped
	if s.State != "active" || s.Monthly != "2.00" || s.Period != 1 || !s.PaidUntil.AsTime().Equal(feb28) || !s.NextChargeAt.AsTime().Equal(feb28) {
		t.Fatalf("subscribed: %v", s)
	}
	h.wantBalances(map[string]int64{"lena": 100, "ava": 201})
	if again, err := lena.Subscribe(h.ctx, connect.NewRequest(&tippingv1.SubscribeRequest{RequestId: "s2", ArtistId: "ava"})); err != nil || again.Msg.Subscription.SubscriptionId != s.SubscriptionId {
		t.Fatalf("subscribing while subscribed: %v %v", again, err)
	}
	for _, bad := range []*tippingv1.SubscribeRequest{{RequestId: "x", ArtistId: "lena"}, {RequestId: "x", ArtistId: ""}, {RequestId: "", ArtistId: "ava"}} {
		if _, err := lena.Subscribe(h.ctx, connect.NewRequest(bad)); servicetest.Code(err) != connect.CodeInvalidArgument {
			t.Errorf("%v: %v", bad, err)
		}
	}

	get := func(c tippingv1connect.TippingServiceClient, id string) *tippingv1.Subscription {
		t.Helper()
		res, err := c.GetSubscription(h.ctx, connect.NewRequest(&tippingv1.GetSubscriptionRequest{SubscriptionId: id}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.Subscription
	}
	// Period 2: lena has 1.00 of 2.00; the charge fails and is retried a
	// day later. The service is restarted meanwhile, then lena is funded.
	h.clock.Set(feb28)
	h.eventually("period 2's first charge failed", func() error {
		if s := get(lena, s.SubscriptionId); s.State != "past_due" || s.FailureReason != "insufficient_funds" {
			return fmt.Errorf("%v", s)
		}
		return nil
	})
	if got := get(lena, s.SubscriptionId); !got.NextChargeAt.AsTime().Equal(feb28.Add(24 * time.Hour)) {
		t.Fatalf("retry at %v", got.NextChargeAt.AsTime())
	}
	h.stop()
	accountstest.Fund(t, h.usd, accdomain.WalletID("lena", "USD"), "dep-lena-2", 500)
	h.clock.Set(feb28.Add(25 * time.Hour))
	h.start()
	lena = h.as("lena")
	mar31 := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	h.eventually("the retry paid period 2", func() error {
		if s := get(lena, s.SubscriptionId); s.State != "active" || s.Period != 2 || !s.PaidUntil.AsTime().Equal(mar31) {
			return fmt.Errorf("%v", s)
		}
		return nil
	})
	h.wantBalances(map[string]int64{"lena": 400, "ava": 401})
	// Restarted at the same time: nothing is charged again.
	h.stop()
	h.start()
	lena = h.as("lena")
	time.Sleep(200 * time.Millisecond) // ten ticks of the clock
	evs := h.events(tipping.SubscriptionsStream)
	if n := count[*eventsv1.SubscriptionChargeRequested](evs); n != 3 {
		t.Fatalf("%d charges requested, want 3 (period 1, period 2 twice)", n)
	}
	h.wantBalances(map[string]int64{"lena": 400, "ava": 401})

	// max cannot pay at all: 4 attempts over 3 days, then the subscription lapses.
	mx := h.as("max")
	ms, err := mx.Subscribe(h.ctx, connect.NewRequest(&tippingv1.SubscribeRequest{RequestId: "m1", ArtistId: "ava"}))
	if err != nil || ms.Msg.Subscription.State != "past_due" {
		t.Fatalf("max subscribed: %v %v", ms, err)
	}
	maxID := ms.Msg.Subscription.SubscriptionId
	for day := 1; day <= 3; day++ {
		h.clock.Set(feb28.Add(25*time.Hour + time.Duration(day)*24*time.Hour))
		want := "past_due"
		if day == 3 {
			want = "lapsed"
		}
		h.eventually(fmt.Sprintf("max's retry %d", day), func() error {
			if s := get(mx, maxID); s.State != want || (want == "past_due" && s.FailureReason != "insufficient_funds") {
				return fmt.Errorf("%v", s)
			}
			return nil
		})
	}
	maxCharges := 0
	for _, e := range h.events(tipping.SubscriptionsStream) {
		if c, ok := e.(*eventsv1.SubscriptionChargeRequested); ok && c.SubscriptionId == maxID {
			maxCharges++
		}
	}
	if maxCharges != 4 {
		t.Fatalf("max: %d attempts, want 4", maxCharges)
	}
	h.wantBalances(map[string]int64{"max": 50, "ava": 401})

	// lena cancels: nothing more is charged; it ends with the paid period.
	c, err := lena.CancelSubscription(h.ctx, connect.NewRequest(&tippingv1.CancelSubscriptionRequest{SubscriptionId: s.SubscriptionId}))
	if err != nil || c.Msg.Subscription.State != "cancelling" || c.Msg.Subscription.NextChargeAt != nil {
		t.Fatalf("cancel: %v %v", c, err)
	}
	if _, err := mx.CancelSubscription(h.ctx, connect.NewRequest(&tippingv1.CancelSubscriptionRequest{SubscriptionId: s.SubscriptionId})); servicetest.Code(err) != connect.CodeNotFound {
		t.Fatalf("cancelling another fan's subscription: %v", err)
	}
	h.clock.Set(mar31.Add(time.Hour))
	h.eventually("lena's subscription ended", func() error {
		if s := get(lena, s.SubscriptionId); s.State != "ended" {
			return fmt.Errorf("%v", s)
		}
		return nil
	})
	h.wantBalances(map[string]int64{"lena": 400, "ava": 401, "max": 50})
	if n := count[*eventsv1.SubscriptionChargeRequested](h.events(tipping.SubscriptionsStream)); n != 7 {
		t.Fatalf("%d charges requested in all, want 7", n)
	}
	// A new subscription after the end starts afresh.
	re, err := lena.Subscribe(h.ctx, connect.NewRequest(&tippingv1.SubscribeRequest{RequestId: "s3", ArtistId: "ava"}))
	if err != nil || re.Msg.Subscription.SubscriptionId == s.SubscriptionId || re.Msg.Subscription.State != "active" {
		t.Fatalf("resubscribe: %v %v", re, err)
	}
	h.wantBalances(map[string]int64{"lena": 200, "ava": 601})
}
