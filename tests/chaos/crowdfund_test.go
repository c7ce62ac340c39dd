package chaos

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/servicetest"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/crowdfund"
	cfdomain "github.com/fanfare/fanfare/sagas/crowdfund/domain"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/accountstest"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/escrow"
	escdomain "github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"golang.org/x/sync/errgroup"
)

// The crowdfund saga's process, until killed.
func runCrowdfund() {
	ctx := untilSignal()
	svc, err := crowdfund.New(crowdfund.Config{Store: mustStore(), Brokers: brokers(),
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err == nil {
		err = svc.Run(ctx)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "crowdfund:", err)
		os.Exit(3)
	}
}

// TestKill9CrowdfundSagaMidSettlement: a campaign that reached its goal
// settles while the saga's process is killed with SIGKILL after it
// captured some of the holds and before it captured all. Restarted, it
// settles the same way: every hold captured exactly once, the payees paid
// exactly the pledges' sum by the splits, every backer charged exactly
// their pledge, and the books summing to zero.
func TestKill9CrowdfundSagaMidSettlement(t *testing.T) {
	srv, broker, ctx, env := infra(t)
	_, store, _ := forwarding(t, ctx, srv.URL(), broker.Brokers())
	_, key, _ := ed25519.GenerateKey(nil)
	pk := key.Public().(ed25519.PublicKey)
	acc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: broker.Brokers(), IdentityKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Serve(t, acc)
	usd := acc.App.Books["USD"]
	clock := servicetest.NewClock(time.Now().UTC())
	esc, err := escrow.New(ctx, escrow.Config{Store: store, Brokers: broker.Brokers(), IdentityKey: pk, Tick: 20 * time.Millisecond, Now: clock.Now,
		Subscriber: kafka.SubscriberConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Serve(t, esc)

	const backers = 400
	payees := []*eventsv1.Split{{PayeeId: "band-a", SharePpm: 333_333}, {PayeeId: "band-b", SharePpm: 666_667}}
	for _, p := range payees {
		if _, err := usd.Open(ctx, domain.WalletID(p.PayeeId, "USD")); err != nil {
			t.Fatal(err)
		}
	}
	artist := identity.With(ctx, identity.Identity{ID: "band", Roles: []string{identity.RoleArtist}})
	if _, err := esc.App.SetPayees(artist, payees); err != nil {
		t.Fatal(err)
	}
	c, err := esc.App.OpenCampaign(artist, "open", "100.00", clock.Now().Add(time.Hour), "the tour film", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range backers {
		who, amount := fmt.Sprint("backer", i), int64(1+i%7)*37 // odd cents, so the splits round
		accountstest.Fund(t, usd, domain.WalletID(who, "USD"), "fund-"+who, 10_00)
		want[who] = 10_00 - amount
		g.Go(func() error {
			_, p, err := esc.App.Pledge(identity.With(gctx, identity.Identity{ID: who}), "p", c.ID, fmt.Sprintf("%d.%02d", amount/100, amount%100), 30*time.Second)
			if err == nil && p.State != escdomain.PledgePlaced {
				err = fmt.Errorf("pledge of %s: %+v", who, p)
			}
			return err
		})
		for _, pt := range mustPayments(t, payees, amount) {
			want[pt.Account] += pt.Units
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	// The deadline passes; the saga settles in waves of holds.
	saga := start(t, "crowdfund", env)
	clock.Set(clock.Now().Add(time.Hour))
	captured := func() (n int, perHold map[string]int) {
		perHold = map[string]int{}
		_, err := store.ReadStream(ctx, adapters.BookStream("USD"), 0, func(e eventstore.Event) error {
			for _, en := range e.Message.(*eventsv1.BookBatchAppended).Entries {
				d := en.GetDecision()
				if d.GetRequest().GetRequestedBy() != cfdomain.RequestedBy {
					continue
				}
				if d.GetCommitted() == nil {
					t.Errorf("the ledger refused a capture: %v", d.GetRejected())
					continue
				}
				for _, h := range d.Request.Holds {
					perHold[h.HoldId]++
					n++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, perHold
	}
	for {
		if n, _ := captured(); n > 0 {
			saga.kill9(t)
			if n, _ = captured(); n >= backers {
				t.Fatalf("the saga captured all %d holds before it was killed: the test proves nothing", n)
			}
			t.Logf("killed the saga after %d of %d holds were captured", n, backers)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	saga = start(t, "crowdfund", env)
	servicetest.Eventually(t, "the campaign settled after the restart", func() error {
		got, _, err := esc.App.Campaigns.Load(ctx, c.ID)
		if err == nil && got.State != escdomain.CampaignSucceeded {
			err = fmt.Errorf("campaign is %s", got.State)
		}
		return err
	})
	n, perHold := captured()
	if n != backers || len(perHold) != backers {
		t.Fatalf("%d captures of %d holds, want %d of %d", n, len(perHold), backers, backers)
	}
	for h, k := range perHold {
		if k != 1 {
			t.Fatalf("hold %s captured %d times", h, k)
		}
	}
	all := accountstest.Balances(t, usd) // checks the zero sum
	for id, units := range want {
		acct := id
		if !strings.HasPrefix(id, "wallet:") {
			acct = domain.WalletID(id, "USD")
		}
		if all[acct] != units {
			t.Fatalf("%s at %d, want %d", acct, all[acct], units)
		}
	}
	if e := all[domain.EscrowID("campaign", c.ID, "USD")]; e != 0 {
		t.Fatalf("the campaign escrow kept %d", e)
	}
	saga.kill9(t)
}

func mustPayments(t *testing.T, splits []*eventsv1.Split, units int64) []songview.Payment {
	p, err := songview.Payments(splits, "USD", units)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
