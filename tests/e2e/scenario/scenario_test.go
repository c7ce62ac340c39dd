package scenario

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

func TestAllocateLargestRemainder(t *testing.T) {
	for _, c := range []struct {
		total  int64
		shares []uint32
		want   []int64
	}{
		{100, []uint32{ppm}, []int64{100}},
		{50, []uint32{600_000, 400_000}, []int64{30, 20}},
		{11, []uint32{600_000, 400_000}, []int64{7, 4}},             // 6.6 / 4.4
		{11, []uint32{500_000, 300_000, 200_000}, []int64{6, 3, 2}}, // 5.5 / 3.3 / 2.2
		{100_000_000, []uint32{500_000, 300_000, 200_000}, []int64{50_000_000, 30_000_000, 20_000_000}},
		{1, []uint32{333_333, 333_333, 333_334}, []int64{0, 0, 1}},
		{199, []uint32{333_333, 333_333, 333_334}, []int64{66, 66, 67}},
	} {
		shares := make([]share, len(c.shares))
		for i, w := range c.shares {
			shares[i] = share{Payee: string(rune('a' + i)), PPM: w}
		}
		got, err := allocate(c.total, shares)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("allocate(%d, %v) = %v, %v; want %v", c.total, c.shares, got, err, c.want)
		}
	}
	// Equal remainders at the cut: the payees' ids would decide.
	for _, c := range []struct {
		total  int64
		shares []uint32
	}{
		{5, []uint32{700_000, 300_000}},           // 3.5 / 1.5
		{25, []uint32{500_000, 300_000, 200_000}}, // 12.5 / 7.5 / 5
		{1, []uint32{500_000, 500_000}},
	} {
		shares := make([]share, len(c.shares))
		for i, w := range c.shares {
			shares[i] = share{Payee: string(rune('a' + i)), PPM: w}
		}
		if got, err := allocate(c.total, shares); !errors.Is(err, errTie) {
			t.Errorf("allocate(%d, %v) = %v, %v; want errTie", c.total, c.shares, got, err)
		}
	}
}

func TestAmounts(t *testing.T) {
	for _, c := range []struct {
		units int64
		asset string
		text  string
	}{
		{500, usd, "5.00"}, {5, usd, "0.05"}, {-250, usd, "-2.50"}, {0, usd, "0.00"},
		{unitsPerFAN, fan, "1.00000000"}, {12_345, fan, "0.00012345"}, {-3 * unitsPerFAN, fan, "-3.00000000"},
	} {
		if got := format(c.units, c.asset); got != c.text {
			t.Errorf("format(%d, %s) = %q, want %q", c.units, c.asset, got, c.text)
		}
		if got, err := parse(c.text, c.asset); err != nil || got != c.units {
			t.Errorf("parse(%q, %s) = %d, %v; want %d", c.text, c.asset, got, err, c.units)
		}
	}
	for in, want := range map[string]int64{"5": 500, "5.1": 510, "+0.01": 1, "-0": 0} {
		if got, err := parse(in, usd); err != nil || got != want {
			t.Errorf("parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".5", "1.234", "1e3", "abc", "1.2.3", "--1", "99999999999999999999"} {
		if got, err := parse(bad, usd); err == nil {
			t.Errorf("parse(%q) = %d, want an error", bad, got)
		}
	}
	for v, want := range map[uint32]string{ppm: "100", 600_000: "60", 25_000: "2.5", 333_334: "33.3334", 1: "0.0001"} {
		if got := percent(v); got != want {
			t.Errorf("percent(%d) = %q, want %q", v, got, want)
		}
	}
}

// The model of the e2e size: every book balances, FAN held is FAN minted,
// nobody can run short whatever the order, and the figures are the plan's.
func TestModelOfTheE2ESize(t *testing.T) {
	p, err := newPlan(Size{100, 20, 200})
	if err != nil {
		t.Fatal(err)
	}
	m, err := expect(p, 500, defaultRewards())
	if err != nil {
		t.Fatal(err)
	}
	checkBooks(t, m)
	c := m.Counts
	// 200 songs once, 10 songs 4 more times, the auto-tip song 6 more.
	if c.People != 133 || c.Plays != 246 || c.StandardPlays != 2*10+4 || c.DiscoveryPlays != 246-24 || c.AutoTips != 2 ||
		c.Tips != 110 || c.ThumbsUps != 10 || c.Purchases != 40 || c.Subscriptions != 10 || c.Pledges != 7 || c.Deposits != 100 {
		t.Fatalf("counts %+v", c)
	}
	// The dashboards' plays: every song, by tier, adding up to the counts;
	// song-000 (its tier proof) 3 discovery + 2 standard.
	var tiers [2]uint64
	for _, n := range m.Plays {
		tiers[0] += n[0]
		tiers[1] += n[1]
	}
	if len(m.Plays) != 200 || tiers != [2]uint64{uint64(c.DiscoveryPlays), uint64(c.StandardPlays)} || m.Plays["song-000"] != [2]uint64{3, 2} {
		t.Fatalf("plays by song: %d songs, %v by tier, song-000 %v", len(m.Plays), tiers, m.Plays["song-000"])
	}
	const fanUnit = unitsPerFAN
	if m.Minted != int64(3*c.DiscoveryPlays+2*c.StandardPlays)*fanUnit || m.Burned != 0 {
		t.Fatalf("minted %d burned %d", m.Minted, m.Burned)
	}
	// Artist-00's escrow: song 0's three discovery plays and one play of
	// each of its nine other songs; the council releases 5 FAN, 60/40.
	if m.Release != 5*fanUnit || m.Balance[discoveryKey("artist-00")] != 7*fanUnit {
		t.Fatalf("release %d, escrow left %d", m.Release, m.Balance[discoveryKey("artist-00")])
	}
	if got := m.Credits[walletKey("artist-01", fan)][kindEscrowRelease]; got != 2*fanUnit {
		t.Fatalf("artist-01 released %d", got)
	}
	// The successful campaign paid artist-00 and artist-01 60/40 of 10.00;
	// the failed one moved nothing.
	if m.Credits[walletKey("artist-00", usd)][kindPledgeCapture] != 600 || m.Credits[walletKey("artist-01", usd)][kindPledgeCapture] != 400 ||
		m.Balance[campaignKey("campaign-goal")] != 0 {
		t.Fatalf("captures: %v %v", m.Credits[walletKey("artist-00", usd)], m.Credits[walletKey("artist-01", usd)])
	}
	if _, ok := m.Balance[campaignKey("campaign-deadline")]; ok {
		t.Fatal("the failed campaign's escrow is in the model")
	}
	// Listener-099 plays its song 7 times (3 discovery FAN, two
	// auto-tips) and song-099 once, and tips 0.50.
	if m.Balance[walletKey("listener-099", fan)] != 3*fanUnit+fanUnit || m.Debits[walletKey("listener-099", usd)][kindTip] != 2*autoTipAmount+50 {
		t.Fatalf("listener-099: FAN %d, tips %v", m.Balance[walletKey("listener-099", fan)], m.Debits[walletKey("listener-099", usd)])
	}
	// Purchases: song-005 (2.00, 10/5/5% out of the price, artist-05
	// 60%, artist-06 40%) bought twice; song-015 (1.50 + 0.10/0.05/0.03).
	d := func(name string) int64 { return m.Credits[walletKey(name, usd)][kindReferralFee] }
	if d("distributor-1")+d("distributor-2")+d("distributor-3")+d("distributor-4")+d("distributor-5")+d("distributor-6") != 10*2*(20+10+10)+10*2*(10+5+3) {
		t.Fatal("referral fees do not add up")
	}
	// listener-020 buys song-005: 2.00 (fees out of the price).
	if got := m.Debits[walletKey("listener-020", usd)][kindPurchase] + m.Debits[walletKey("listener-020", usd)][kindReferralFee]; got != 200 {
		t.Fatalf("listener-020 paid %d for song-005", got)
	}
	// listener-021 buys song-015: 1.50 + 0.18 on top.
	if got := m.Debits[walletKey("listener-021", usd)][kindPurchase] + m.Debits[walletKey("listener-021", usd)][kindReferralFee]; got != 168 {
		t.Fatalf("listener-021 paid %d for song-015", got)
	}
	t.Logf("counts %+v; FAN minted %s; USD moved %s", c, format(m.Minted, fan), format(c.USDMoved, usd))
}

// Every size from the smallest up plans without ties and balances.
func TestModelOfOtherSizes(t *testing.T) {
	for _, s := range []Size{{10, 3, 10}, {10, 3, 30}, {17, 5, 41}, {30, 4, 100}, {250, 40, 500}, {1000, 100, 2000}} {
		p, err := newPlan(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		m, err := expect(p, 500, defaultRewards())
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		checkBooks(t, m)
	}
	if _, err := newPlan(Size{9, 3, 10}); err == nil {
		t.Fatal("a size below the minimum was planned")
	}
}

func checkBooks(t *testing.T, m *model) {
	t.Helper()
	sums := map[string]int64{}
	var fanOutside int64
	for k, v := range m.Balance {
		sums[keyAsset(k)] += v
		if !isSystemKey(k) && v < 0 {
			t.Errorf("%s ends negative: %d", k, v)
		}
		if keyAsset(k) == fan && !isSystemKey(k) {
			fanOutside += v
		}
	}
	if sums[usd] != 0 || sums[fan] != 0 {
		t.Errorf("books sum to %v", sums)
	}
	if fanOutside != m.Minted-m.Burned || -m.Balance[mintKey] != m.Minted {
		t.Errorf("FAN outside mint and burn %d, minted %d", fanOutside, m.Minted)
	}
	for k, credits := range m.Credits {
		var c, d int64
		for _, v := range credits {
			c += v
		}
		for _, v := range m.Debits[k] {
			d += v
		}
		if c-d != m.Balance[k] {
			t.Errorf("%s: credits %d − debits %d ≠ balance %d", k, c, d, m.Balance[k])
		}
	}
}

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err     error
		lagging bool
		want    bool
	}{
		{connect.NewError(connect.CodeUnavailable, errors.New("accounts is not reachable")), false, true},
		{connect.NewError(connect.CodeDeadlineExceeded, errors.New("x")), false, true},
		{connect.NewError(connect.CodeAborted, errors.New("x")), false, true},
		// A part that is starting answers unavailable; a 404 is a wrong route.
		{connect.NewError(connect.CodeUnimplemented, errors.New("HTTP status 404 Not Found")), false, false},
		{connect.NewError(connect.CodeResourceExhausted, errors.New("rate limit exceeded")), false, true},
		{connect.NewError(connect.CodeUnknown, errors.New("read tcp: connection reset by peer")), false, true},
		{connect.NewError(connect.CodeInternal, errors.New("unexpected EOF")), false, true},
		{connect.NewError(connect.CodeInternal, errors.New("nil pointer dereference")), false, false},
		// Services answer their store's outages as unavailable: an Internal
		// from them is a bug to see, not to retry.
		{connect.NewError(connect.CodeInternal, errors.New("eventstore: writer stopped")), false, false},
		{connect.NewError(connect.CodeInternal, errors.New("read plays-5: rpc error: code = Canceled desc = context canceled")), false, false},
		{connect.NewError(connect.CodeNotFound, errors.New("song not known")), false, false},
		{connect.NewError(connect.CodeNotFound, errors.New("song not known")), true, true},
		{connect.NewError(connect.CodeFailedPrecondition, errors.New("insufficient funds")), false, false},
		{connect.NewError(connect.CodeAlreadyExists, errors.New("request id used")), false, false},
		{errors.New("kratos: registration: dial tcp 127.0.0.1:4433: connect: connection refused"), false, true},
		{errors.New("kratos: registration refused (400 Bad Request): An account with the same identifier exists already"), false, false},
		// Seen in a run: a Kratos admin call outlasting the attempt's timeout.
		{fmt.Errorf("kratos admin API http://127.0.0.1:28054: patch identity 78174dea: %w",
			&url.Error{Op: "Patch", URL: "http://127.0.0.1:28054/admin/identities/78174dea", Err: context.DeadlineExceeded}), false, true},
		{fmt.Errorf("kratos admin API: get identity: %w", context.Canceled), false, false},
	} {
		if got := transient(c.err, callOptions{lagging: c.lagging}); got != c.want {
			t.Errorf("transient(%v, lagging %v) = %v, want %v", c.err, c.lagging, got, c.want)
		}
	}
}

// An outcome that matches its model passes Check and compares equal with
// itself; a cent off anywhere fails both, by name.
func TestCheckAndCompare(t *testing.T) {
	p, err := newPlan(Size{10, 3, 10})
	if err != nil {
		t.Fatal(err)
	}
	m, err := expect(p, 500, defaultRewards())
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	o := &Outcome{Run: "calm", Size: p.Size, Expected: maps.Clone(m.Balance), ExpectedCredits: m.Credits, ExpectedDebits: m.Debits,
		ExpectedMinted: m.Minted, Actual: map[string]Balance{}, Settled: true, SupplyBefore: 7, Supply: 7 + m.Minted,
		Settlement: map[string]SettlementRow{}, Statements: map[string]Statement{}, Took: time.Second}
	for k, v := range m.Balance {
		o.Actual[k] = Balance{Total: v, Available: v}
		if !isSystemKey(k) {
			o.Statements[k] = Statement{Entries: len(m.Credits[k]) + len(m.Debits[k]), Sum: v, Newest: v}
			if v != 0 || len(m.Credits[k]) > 0 {
				o.Settlement[k] = SettlementRow{Closing: v, Credits: m.Credits[k], Debits: m.Debits[k]}
			}
		}
	}
	audit := Audit{Events: 100, Hash: hash, Clean: true, Supply: map[string]int64{fan: o.Supply}}
	o.Audits = []Audit{audit, audit}
	if err := o.Check(); err != nil {
		t.Fatalf("a matching outcome: %v", err)
	}
	if err := o.Compare(o); err != nil {
		t.Fatalf("compared with itself: %v", err)
	}

	other := *o
	other.Run = "chaos"
	other.Actual = maps.Clone(o.Actual)
	b := other.Actual["listener-003/USD"]
	b.Total--
	other.Actual["listener-003/USD"] = b
	if err := other.Check(); err == nil || !strings.Contains(err.Error(), "listener-003/USD: the ledger holds") {
		t.Fatalf("a cent off: Check = %v", err)
	}
	if err := o.Compare(&other); err == nil || !strings.Contains(err.Error(), "listener-003/USD") {
		t.Fatalf("a cent off: Compare = %v", err)
	}
	other.Actual = o.Actual
	other.Audits = []Audit{audit, {Events: 101, Hash: strings.Repeat("cd", 32), Clean: true, Supply: audit.Supply}}
	if err := other.Check(); err == nil || !strings.Contains(err.Error(), "two replays disagree") {
		t.Fatalf("different hashes: %v", err)
	}
	other.Audits = o.Audits
	other.Statements = maps.Clone(o.Statements)
	other.Statements["node-1/FAN"] = Statement{Entries: 3, Sum: 1, Newest: o.Actual["node-1/FAN"].Total}
	if err := other.Check(); err == nil || !strings.Contains(err.Error(), "node-1/FAN: the statement's 3 entries sum to 0.00000001") {
		t.Fatalf("a statement off: %v", err)
	}
	other.Statements = o.Statements
	other.Settlement = maps.Clone(o.Settlement)
	delete(other.Settlement, "artist-00/USD")
	if err := other.Check(); err == nil || !strings.Contains(err.Error(), "artist-00/USD holds") {
		t.Fatalf("a missing settlement row: %v", err)
	}
	if err := o.Compare(&other); err == nil || !strings.Contains(err.Error(), "artist-00/USD has a row in one run only") {
		t.Fatalf("a missing settlement row: Compare = %v", err)
	}
}
