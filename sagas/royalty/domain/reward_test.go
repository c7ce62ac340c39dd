package domain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/royalty/domain"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"google.golang.org/protobuf/proto"
)

const (
	royalty = eventsv1.PostingKind_POSTING_KIND_ROYALTY
	burnK   = eventsv1.PostingKind_POSTING_KIND_BURN
)

func splits3() []*eventsv1.Split {
	return []*eventsv1.Split{{PayeeId: "ann", SharePpm: 333_333}, {PayeeId: "bob", SharePpm: 333_333}, {PayeeId: "cat", SharePpm: 333_334}}
}

func play(n uint64) domain.Play {
	return domain.Play{PlayID: "play-1", SongID: "song-1", ListenerID: "alice", NodeID: "node7", ArtistID: "artist1",
		SongPlayNumber: n, Splits: splits3()}
}

func posting(debit, credit string, amount int64, kind eventsv1.PostingKind) *eventsv1.Posting {
	return &eventsv1.Posting{Debit: debit, Credit: credit, Asset: "FAN", Amount: amount, Kind: kind}
}

func mustPlan(t *testing.T, p domain.Play, supply, available int64, r domain.Rules) domain.RewardPlan {
	t.Helper()
	plan, ref, err := domain.Plan(p, supply, available, r)
	if err != nil || ref != nil {
		t.Fatalf("Plan: refusal %+v, error %v", ref, err)
	}
	checkBalanced(t, plan)
	return plan
}

func wantPostings(t *testing.T, got []*eventsv1.Posting, want ...*eventsv1.Posting) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("postings %v, want %v", got, want)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("posting %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// checkBalanced checks what the ledger will: every posting is FAN, > 0,
// between two valid distinct accounts, mint only debited, burn only
// credited; the per-account nets sum to zero, mint's net is −Minted,
// burn's is +Burned.
func checkBalanced(t *testing.T, plan domain.RewardPlan) {
	t.Helper()
	net := map[string]int64{}
	for _, p := range plan.Postings {
		if p.Asset != "FAN" || p.Amount <= 0 || p.Debit == p.Credit || p.Credit == accounts.Mint || p.Debit == accounts.Burn {
			t.Fatalf("bad posting %v", p)
		}
		for _, id := range []string{p.Debit, p.Credit} {
			if _, err := accounts.ParseAccountID(id); err != nil {
				t.Fatalf("posting %v: %v", p, err)
			}
		}
		if (p.Debit == accounts.Mint) != (p.Kind == royalty) || (p.Credit == accounts.Burn) != (p.Kind == burnK) {
			t.Fatalf("posting %v has the wrong kind", p)
		}
		net[p.Debit] -= p.Amount
		net[p.Credit] += p.Amount
	}
	var sum int64
	for _, v := range net {
		sum += v
	}
	if sum != 0 || net[accounts.Mint] != -plan.Minted || net[accounts.Burn] != plan.Burned {
		t.Fatalf("nets %v, minted %d, burned %d", net, plan.Minted, plan.Burned)
	}
}

func TestTierBoundary(t *testing.T) {
	r := domain.DefaultRules()
	for n, want := range map[uint64]domain.RewardTier{1: domain.Discovery, 10_000: domain.Discovery, 10_001: domain.Standard, 1 << 40: domain.Standard} {
		if got := domain.Tier(n, r); got != want {
			t.Errorf("Tier(%d) = %v, want %v", n, got, want)
		}
	}
	r.DiscoveryMaxPlayNumber = 0
	if domain.Tier(1, r) != domain.Standard {
		t.Error("no discovery tier, yet play 1 is discovery")
	}
	if domain.Discovery.String() != "discovery" || domain.Standard.String() != "standard" {
		t.Error("tier names")
	}
}

func TestDiscoveryPlan(t *testing.T) {
	r := domain.DefaultRules()
	supply := int64(1_900_000_000 * fan) // no burn in the discovery tier, whatever the supply
	plan := mustPlan(t, play(10_000), supply, 0, r)
	wantPostings(t, plan.Postings,
		posting("mint", "wallet:alice:FAN", fan, royalty),
		posting("mint", "wallet:node7:FAN", fan, royalty),
		posting("mint", "escrow:discovery:artist1:FAN", fan, royalty))
	if plan.Tier != domain.Discovery || plan.Minted != 3*fan || plan.Burned != 0 || plan.SupplyAfter != supply+3*fan {
		t.Fatalf("plan %+v", plan)
	}
	req := plan.Request("royalty")
	want := &eventsv1.LedgerTransactionRequested{TransactionId: "play-1", Postings: plan.Postings, RequestedBy: "royalty",
		Memo: "discovery reward for play play-1", Kind: royalty, Asset: "FAN"}
	if !proto.Equal(req, want) {
		t.Fatalf("request %v, want %v", req, want)
	}
}

func TestStandardPlan(t *testing.T) {
	r := domain.DefaultRules()
	supply := int64(1_500_000_000 * fan)
	plan := mustPlan(t, play(10_001), supply, 125*fan, r)
	wantPostings(t, plan.Postings,
		posting("mint", "wallet:ann:FAN", 33_333_300, royalty),
		posting("mint", "wallet:bob:FAN", 33_333_300, royalty),
		posting("mint", "wallet:cat:FAN", 33_333_400, royalty),
		posting("mint", "wallet:node7:FAN", fan, royalty),
		posting("wallet:alice:FAN", "burn", 125*fan, burnK))
	if plan.Tier != domain.Standard || plan.Minted != 2*fan || plan.Burned != 125*fan || plan.SupplyAfter != supply+2*fan-125*fan {
		t.Fatalf("plan %+v", plan)
	}
	// Below the floor there is no burn posting at all.
	plan = mustPlan(t, play(10_001), 1_000_000_000*fan, 0, r)
	if len(plan.Postings) != 4 || plan.Burned != 0 || plan.SupplyAfter != 1_000_000_000*fan+2*fan {
		t.Fatalf("plan below the floor %+v", plan)
	}
}

// The 1 FAN artist reward split 33.3333/33.3333/33.3334% sums to exactly
// 1 FAN; with rewards that do not divide evenly the leftover units go by
// largest remainder, exactly as money.Allocate gives them.
func TestSplitSumsExactly(t *testing.T) {
	for _, reward := range []int64{fan, 1, 2, 100, 7_777_777, fan + 1} {
		r := domain.DefaultRules()
		r.StandardArtistReward = reward
		plan := mustPlan(t, play(20_000), 0, 0, r)
		want, err := money.Allocate(reward, []money.Share{{Payee: "ann", Weight: 333_333}, {Payee: "bob", Weight: 333_333}, {Payee: "cat", Weight: 333_334}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		var sum int64
		for _, p := range plan.Postings[:len(plan.Postings)-1] { // the last is the node's
			got[p.Credit] = p.Amount
			sum += p.Amount
		}
		if sum != reward || got["wallet:ann:FAN"] != want[0] || got["wallet:bob:FAN"] != want[1] || got["wallet:cat:FAN"] != want[2] {
			t.Fatalf("reward %d split as %v (sum %d), Allocate says %v", reward, got, sum, want)
		}
	}
	// A payee listed twice gets one posting with both parts; zero shares
	// none.
	p := play(20_000)
	p.Splits = []*eventsv1.Split{{PayeeId: "ann", SharePpm: 250_000}, {PayeeId: "zed", SharePpm: 0}, {PayeeId: "bob", SharePpm: 500_000}, {PayeeId: "ann", SharePpm: 250_000}}
	plan := mustPlan(t, p, 0, 0, domain.DefaultRules())
	wantPostings(t, plan.Postings,
		posting("mint", "wallet:ann:FAN", fan/2, royalty),
		posting("mint", "wallet:bob:FAN", fan/2, royalty),
		posting("mint", "wallet:node7:FAN", fan, royalty))
}

func TestSupplyCapRefusal(t *testing.T) {
	r := domain.DefaultRules()
	// Discovery mints 3 FAN: at cap − 3 FAN it fits exactly, at cap − 2 FAN
	// it does not.
	plan := mustPlan(t, play(1), r.SupplyCap-3*fan, 0, r)
	if plan.SupplyAfter != r.SupplyCap {
		t.Fatalf("supply after %d, want the cap", plan.SupplyAfter)
	}
	for _, supply := range []int64{r.SupplyCap - 3*fan + 1, r.SupplyCap - 2*fan, r.SupplyCap, r.SupplyCap + 5} {
		plan, ref, err := domain.Plan(play(1), supply, 0, r)
		if err != nil || ref == nil || ref.Reason != eventsv1.RewardRefused_REASON_SUPPLY_CAP || ref.Burn != 0 || len(plan.Postings) != 0 {
			t.Fatalf("supply %d: plan %+v refusal %+v error %v", supply, plan, ref, err)
		}
		ev := ref.Event(play(1))
		want := &eventsv1.RewardRefused{PlayId: "play-1", SongId: "song-1", ListenerId: "alice", SongPlayNumber: 1,
			Reason: eventsv1.RewardRefused_REASON_SUPPLY_CAP, Burn: &eventsv1.Money{Asset: "FAN", Units: 0}, Detail: ref.Detail}
		if !proto.Equal(ev, want) || ref.Detail == "" {
			t.Fatalf("event %v, want %v", ev, want)
		}
	}
	// A standard play that burns more than it mints lowers the supply: the
	// ledger never refuses it for the cap, even at the cap.
	plan = mustPlan(t, play(10_001), r.SupplyCap, 1000*fan, r)
	if plan.SupplyAfter != r.SupplyCap+2*fan-1000*fan {
		t.Fatalf("supply after %d", plan.SupplyAfter)
	}
	// A standard play whose burn is smaller than its mints is capped.
	small := r
	small.BurnCeiling = r.SupplyCap * 2 // burn near the cap: 0.5 FAN × (1/3)³ ≈ 0.0185 FAN
	small.BurnMax = fan / 2
	if _, ref, _ := domain.Plan(play(10_001), r.SupplyCap-fan, fan, small); ref == nil || ref.Reason != eventsv1.RewardRefused_REASON_SUPPLY_CAP || ref.Burn == 0 {
		t.Fatalf("refusal %+v", ref)
	}
}

func TestBurnUnaffordable(t *testing.T) {
	r := domain.DefaultRules()
	supply := int64(1_500_000_000 * fan)
	for _, avail := range []int64{0, 125*fan - 1, -fan} {
		plan, ref, err := domain.Plan(play(10_001), supply, avail, r)
		if err != nil || ref == nil || ref.Reason != eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE || ref.Burn != 125*fan || len(plan.Postings) != 0 {
			t.Fatalf("available %d: plan %+v refusal %+v error %v", avail, plan, ref, err)
		}
		if ev := ref.Event(play(10_001)); ev.Burn.Units != 125*fan || ev.Reason != eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE {
			t.Fatalf("event %v", ev)
		}
	}
	mustPlan(t, play(10_001), supply, 125*fan, r)
	// A listener who is also a payee may pay part of the burn with the
	// reward itself, as the ledger checks balances after the transaction.
	p := play(10_001)
	p.Splits = []*eventsv1.Split{{PayeeId: "alice", SharePpm: 1_000_000}}
	mustPlan(t, p, supply, 124*fan, r)
	if _, ref, _ := domain.Plan(p, supply, 124*fan-1, r); ref == nil || ref.Reason != eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE {
		t.Fatalf("refusal %+v", ref)
	}
	// Both refusals apply: the ledger checks funds first.
	small := r
	small.BurnMax = fan / 2
	if _, ref, _ := domain.Plan(play(10_001), r.SupplyCap, 0, small); ref == nil || ref.Reason != eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE {
		t.Fatalf("refusal %+v", ref)
	}
}

func TestPlanRefusesBadInput(t *testing.T) {
	r := domain.DefaultRules()
	for name, mut := range map[string]func(*domain.Play){
		"no play id":        func(p *domain.Play) { p.PlayID = "" },
		"play number 0":     func(p *domain.Play) { p.SongPlayNumber = 0 },
		"bad listener":      func(p *domain.Play) { p.ListenerID = "a:b" },
		"no node":           func(p *domain.Play) { p.NodeID = "" },
		"no artist":         func(p *domain.Play) { p.ArtistID = "" },
		"no splits":         func(p *domain.Play) { p.SongPlayNumber, p.Splits = 10_001, nil },
		"splits below 100%": func(p *domain.Play) { p.SongPlayNumber, p.Splits = 10_001, p.Splits[:2] },
		"bad payee":         func(p *domain.Play) { p.SongPlayNumber, p.Splits[0].PayeeId = 10_001, "a b" },
	} {
		p := play(1)
		p.Splits = splits3()
		mut(&p)
		plan, ref, err := domain.Plan(p, 0, 0, r)
		var k apperr.Kinded
		if !errors.Is(err, domain.ErrInvalidPlay) || !errors.As(err, &k) || k.KindName() != apperr.InvalidInput || ref != nil || len(plan.Postings) != 0 {
			t.Errorf("%s: plan %+v refusal %+v error %v", name, plan, ref, err)
		}
	}
	if _, _, err := domain.Plan(play(1), -1, 0, r); !errors.Is(err, domain.ErrInvalidPlay) {
		t.Errorf("negative supply: %v", err)
	}
	if _, _, err := domain.Plan(play(1), 0, 0, domain.Rules{}); !errors.Is(err, domain.ErrInvalidRules) {
		t.Errorf("zero rules: %v", err)
	}
}

func TestRules(t *testing.T) {
	d := domain.DefaultRules()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	pol := &eventsv1.Policy{Rewards: d.Proto(), FanSupplyCap: &eventsv1.Money{Asset: "FAN", Units: d.SupplyCap}}
	if got, err := domain.RulesFromPolicy(pol); err != nil || got != d {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if d.Proto().BurnFloor.Units != 1_000_000_000*fan || d.Proto().BurnExponent != 3 || d.Proto().DiscoveryMaxPlayNumber != 10_000 {
		t.Fatalf("proto %v", d.Proto())
	}
	bad := proto.Clone(pol).(*eventsv1.Policy)
	bad.Rewards.BurnMax.Asset = "USD"
	if _, err := domain.RulesFromPolicy(bad); !errors.Is(err, domain.ErrInvalidRules) {
		t.Errorf("USD burn max: %v", err)
	}
	if _, err := domain.RulesFromPolicy(&eventsv1.Policy{}); !errors.Is(err, domain.ErrInvalidRules) {
		t.Errorf("empty policy: %v", err)
	}
	for name, mut := range map[string]func(*domain.Rules){
		"no cap":          func(r *domain.Rules) { r.SupplyCap = 0 },
		"negative reward": func(r *domain.Rules) { r.DiscoveryNodeReward = -1 },
		"no discovery mint": func(r *domain.Rules) {
			r.DiscoveryListenerReward, r.DiscoveryNodeReward, r.DiscoveryEscrowReward = 0, 0, 0
		},
		"no standard mint": func(r *domain.Rules) { r.StandardArtistReward, r.StandardNodeReward = 0, 0 },
		"mint above cap":   func(r *domain.Rules) { r.StandardNodeReward = r.SupplyCap },
		"floor = ceiling":  func(r *domain.Rules) { r.BurnFloor = r.BurnCeiling },
		"negative floor":   func(r *domain.Rules) { r.BurnFloor = -1 },
		"negative max":     func(r *domain.Rules) { r.BurnMax = -1 },
		"exponent 0":       func(r *domain.Rules) { r.BurnExponent = 0 },
		"exponent 33":      func(r *domain.Rules) { r.BurnExponent = 33 },
	} {
		r := d
		mut(&r)
		if err := r.Validate(); !errors.Is(err, domain.ErrInvalidRules) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

// The plan agrees with the real ledger: a planned transaction commits in an
// accounts.Book at the same supply and listener balance, and a refused one
// is rejected for the matching reason.
func TestPlanAgreesWithLedger(t *testing.T) {
	r := domain.DefaultRules()
	rng := rand.New(rand.NewPCG(5, 6))
	seen := map[string]int{}
	supplies := []int64{0, r.BurnFloor, 1_500_000_000 * fan, r.SupplyCap - 3*fan, r.SupplyCap - 2*fan, r.SupplyCap - fan, r.SupplyCap}
	for i := range 60 {
		supply := supplies[i%len(supplies)]
		if i >= 2*len(supplies) {
			supply = rng.Int64N(r.SupplyCap + 1)
		}
		p := play([]uint64{1, 10_000, 10_001, 50_000}[rng.IntN(4)])
		if rng.IntN(3) == 0 {
			p.Splits = []*eventsv1.Split{{PayeeId: "alice", SharePpm: 400_000}, {PayeeId: "bob", SharePpm: 600_000}}
		}
		burn := domain.Burn(supply, r)
		avail := min(supply, max(0, burn+rng.Int64N(3*fan)-3*fan/2))

		book, err := accounts.NewBook("FAN", accounts.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"alice", "node7", "ann", "bob", "cat", "whale"} {
			if _, err := book.Open(accounts.WalletID(id, "FAN")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := book.Open(accounts.EscrowID("discovery", "artist1", "FAN")); err != nil {
			t.Fatal(err)
		}
		var seed []accounts.Posting
		if avail > 0 {
			seed = append(seed, accounts.Posting{Debit: accounts.Mint, Credit: "wallet:alice:FAN", Amount: avail})
		}
		if supply-avail > 0 {
			seed = append(seed, accounts.Posting{Debit: accounts.Mint, Credit: "wallet:whale:FAN", Amount: supply - avail})
		}
		if len(seed) > 0 {
			if o := book.Apply(accounts.Request{ID: "seed", Asset: "FAN", Kind: accounts.KindRoyalty, Postings: seed}); !o.Committed() {
				t.Fatalf("seed: %v", o.Err)
			}
		}
		bal, _ := book.Balance("wallet:alice:FAN")
		plan, ref, err := domain.Plan(p, book.Supply().Circulating, bal.Available, r)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("play %d at supply %d, listener %d", p.SongPlayNumber, supply, avail)
		if ref != nil {
			// Ask the ledger what it says to the unrefused transaction.
			r2 := r
			r2.SupplyCap = 1 << 62
			unrefused, ref2, err := domain.Plan(p, supply, 1<<62, r2)
			if err != nil || ref2 != nil {
				t.Fatalf("%s: %v %v", name, ref2, err)
			}
			o := book.Apply(toLedger(unrefused))
			want := map[eventsv1.RewardRefused_Reason]accounts.Reason{
				eventsv1.RewardRefused_REASON_SUPPLY_CAP:        accounts.ReasonSupplyCap,
				eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE: accounts.ReasonInsufficientFunds,
			}[ref.Reason]
			if o.Committed() || o.Reason != want {
				t.Fatalf("%s: plan refused %v, ledger says %v %v", name, ref.Reason, o.Status, o.Err)
			}
			seen[ref.Reason.String()]++
			continue
		}
		o := book.Apply(toLedger(plan))
		if !o.Committed() {
			t.Fatalf("%s: ledger rejected the plan: %v", name, o.Err)
		}
		if got := book.Supply().Circulating; got != plan.SupplyAfter {
			t.Fatalf("%s: ledger supply %d, plan says %d", name, got, plan.SupplyAfter)
		}
		seen[plan.Tier.String()]++
	}
	if len(seen) != 4 {
		t.Fatalf("outcomes %v: want discovery and standard commits and both refusals", seen)
	}
}

func toLedger(p domain.RewardPlan) accounts.Request {
	req := accounts.Request{ID: p.PlayID, Asset: "FAN", Kind: accounts.KindRoyalty}
	for _, ps := range p.Postings {
		req.Postings = append(req.Postings, accounts.Posting{Debit: ps.Debit, Credit: ps.Credit, Amount: ps.Amount, Kind: accounts.PostingKind(ps.Kind)})
	}
	return req
}
