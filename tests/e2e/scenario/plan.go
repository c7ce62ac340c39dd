package scenario

import (
	"fmt"
	"time"
)

// The plan is everything the scenario will do, decided before it does
// any of it: who exists, which songs with which splits and prices, which
// plays in which order, every tip, purchase, subscription, pledge, the
// release and the withdrawal. It is a pure function of the Size, so two
// runs of the same size do the same things, and the model derives the
// expected money from it alone.

// Roles the scenario grants (internal/platform/identity's role names).
const (
	roleArtist    = "artist"
	roleModerator = "moderator"
	roleFinance   = "finance"
	roleAuditor   = "auditor"
	roleNode      = "node_operator"
)

// Fixed people of every run.
const (
	financeName = "finance"
	auditorName = "auditor"
)

// Assets and their scales (DESIGN §2).
const (
	usd = "USD"
	fan = "FAN"
)

// unitsPerFAN is one FAN in minor units (scale 8).
const unitsPerFAN = 100_000_000

// ppm is a whole split in parts per million.
const ppm = 1_000_000

// songDurationMs is every song's duration: a play counts at 50% coverage,
// which the first heartbeat sent a little over a second after the session
// started reaches (it may credit wall time + 500 ms slack).
const songDurationMs = 3000

// share is one payee's part of a split.
type share struct {
	Payee string // a person's name
	PPM   uint32
}

// distributorPolicy is a priced song's distributor policy (DESIGN §6):
// per-hop fees nearest the purchaser first, fixed amounts or parts per
// million of the price, paid by the holder (out of the price) or the
// purchaser (on top).
type distributorPolicy struct {
	Mode  string // "fixed" or "percent"
	Payer string // "holder" or "purchaser"
	Fixed []int64
	PPM   []uint32
}

type playPlan struct {
	Listener, Node string
}

type songPlan struct {
	Name   string
	Artist string
	Splits []share
	// Price in USD cents; 0: not for sale.
	Price  int64
	Policy distributorPolicy
	// Chain names the distributors of the song's referral token, root
	// (issued by the service) first; each later one extended it.
	Chain []string
	// Plays in the order they are played: play k (0-based) is the song's
	// play number k+1.
	Plays []playPlan
}

type tipPlan struct {
	Listener string
	Song     int
	// Amount in cents; for a thumbs-up, the listener's thumbs-up amount.
	Amount   int64
	ThumbsUp bool
}

type purchasePlan struct {
	Listener string
	Song     int
}

type subscriptionPlan struct {
	Listener, Artist string
}

type pledgePlan struct {
	Backer string
	Amount int64
}

type campaignPlan struct {
	Name   string
	Artist string
	Goal   int64
	// CloseOnGoal campaigns succeed as the last pledge reaches the goal;
	// the others fail at a deadline Deadline after they open, their
	// pledges below the goal.
	CloseOnGoal bool
	Deadline    time.Duration
	Pledges     []pledgePlan
}

// Succeeds reports whether the campaign's pledges reach its goal.
func (c campaignPlan) Succeeds() bool {
	var sum int64
	for _, p := range c.Pledges {
		sum += p.Amount
	}
	return sum >= c.Goal
}

type releasePlan struct {
	Artist             string
	Proposer, Approver string
	// Amount in FAN units.
	Amount int64
}

type withdrawalPlan struct {
	Who    string
	Amount int64
}

type plan struct {
	Size         Size
	Listeners    []string
	Artists      []string
	Nodes        []string
	Distributors []string
	Moderators   []string
	Songs        []songPlan
	// Deposits in cents by listener, confirmed by finance.
	Deposits map[string]int64
	// TrueFan amounts (cents) artists set before anyone subscribes.
	TrueFan map[string]int64
	// Payees artists name for their escrow releases and crowdfunds.
	Payees map[string][]share
	// ThumbsUp amounts (cents) listeners set before tipping.
	ThumbsUp map[string]int64
	// AutoTip: listeners who opt in to auto-tips (default budget).
	AutoTip       []string
	Tips          []tipPlan
	Purchases     []purchasePlan
	Subscriptions []subscriptionPlan
	Campaigns     []campaignPlan
	Release       releasePlan
	Withdrawal    withdrawalPlan
	// Threshold is the discovery tier's last play number in the policy
	// the scenario appends.
	Threshold uint64
}

// Tier threshold the scenario puts in force: the 4th and later plays of a
// song are standard-tier.
const tierThreshold = 3

func listenerName(i int) string { return fmt.Sprintf("listener-%03d", i) }
func artistName(i int) string   { return fmt.Sprintf("artist-%02d", i) }
func songName(j int) string     { return fmt.Sprintf("song-%03d", j) }

// people lists every person of the plan with the roles granted to them.
func (p *plan) people() []personPlan {
	var out []personPlan
	add := func(name string, roles ...string) { out = append(out, personPlan{Name: name, Roles: roles}) }
	add(financeName, roleFinance)
	add(auditorName, roleAuditor)
	for _, m := range p.Moderators {
		add(m, roleModerator)
	}
	for _, n := range p.Nodes {
		add(n, roleNode)
	}
	for _, d := range p.Distributors {
		add(d)
	}
	for _, a := range p.Artists {
		add(a, roleArtist)
	}
	for _, l := range p.Listeners {
		add(l)
	}
	return out
}

type personPlan struct {
	Name  string
	Roles []string
}

// newPlan decides the scenario for a size. Sizes below 10 listeners, 3
// artists or 10 songs are refused: the plan needs that many distinct
// parts.
func newPlan(size Size) (*plan, error) {
	if size.Listeners < 10 || size.Artists < 3 || size.Songs < 10 {
		return nil, fmt.Errorf("scenario: size %+v is too small (at least 10 listeners, 3 artists, 10 songs)", size)
	}
	L, A, S := size.Listeners, size.Artists, size.Songs
	p := &plan{Size: size, Deposits: map[string]int64{}, TrueFan: map[string]int64{}, Payees: map[string][]share{},
		ThumbsUp: map[string]int64{}, Threshold: tierThreshold}
	for i := range L {
		p.Listeners = append(p.Listeners, listenerName(i))
		// 10.00, 15.00, 20.00 or 25.00
		p.Deposits[listenerName(i)] = 1000 + int64(i%4)*500
	}
	for i := range A {
		p.Artists = append(p.Artists, artistName(i))
	}
	p.Nodes = []string{"node-1", "node-2", "node-3"}
	p.Distributors = []string{"distributor-1", "distributor-2", "distributor-3", "distributor-4", "distributor-5", "distributor-6"}
	p.Moderators = []string{"moderator-1", "moderator-2"}
	a0, a1, a2 := p.Artists[0], p.Artists[1], p.Artists[2]

	// Songs: song j is artist j%A's. Splits by j%3: the artist alone;
	// 60/40 with the next artist; 50/30/20 with the next two.
	tierSongs := max(1, S/20)
	for j := range S {
		art := j % A
		s := songPlan{Name: songName(j), Artist: artistName(art)}
		switch j % 3 {
		case 0:
			s.Splits = []share{{artistName(art), ppm}}
		case 1:
			s.Splits = []share{{artistName(art), 600_000}, {artistName((art + 1) % A), 400_000}}
		case 2:
			s.Splits = []share{{artistName(art), 500_000}, {artistName((art + 1) % A), 300_000}, {artistName((art + 2) % A), 200_000}}
		}
		// Every tenth song is for sale through a 3-hop referral chain:
		// 2.00 with 10/5/5% fees out of the price, or 1.50 with fixed
		// 0.10/0.05/0.03 fees on top.
		if j%10 == 5 {
			if (j/10)%2 == 0 {
				s.Price = 200
				s.Policy = distributorPolicy{Mode: "percent", Payer: "holder", PPM: []uint32{100_000, 50_000, 50_000}}
			} else {
				s.Price = 150
				s.Policy = distributorPolicy{Mode: "fixed", Payer: "purchaser", Fixed: []int64{10, 5, 3}}
			}
			k := j / 10
			D := len(p.Distributors)
			s.Chain = []string{p.Distributors[k%D], p.Distributors[(k+1)%D], p.Distributors[(k+2)%D]}
		}
		p.Songs = append(p.Songs, s)
	}
	// The auto-tip song: the last one whose split divides 0.05 exactly.
	autoSong := -1
	for j := S - 1; j >= tierSongs; j-- {
		if j%3 != 2 {
			autoSong = j
			break
		}
	}
	autoListener := listenerName(L - 1)
	p.AutoTip = []string{autoListener}

	// Plays: every song once, by listener j%L; the first tierSongs songs
	// four more times (plays 4 and 5 are standard-tier); the auto-tip
	// song seven times by its listener (the 6th and 7th tip).
	node := func(j, k int) string { return p.Nodes[(j+k)%len(p.Nodes)] }
	for j := range p.Songs {
		s := &p.Songs[j]
		switch {
		case j == autoSong:
			for k := range 7 {
				s.Plays = append(s.Plays, playPlan{Listener: autoListener, Node: node(j, k)})
			}
		case j < tierSongs:
			for k := range 5 {
				s.Plays = append(s.Plays, playPlan{Listener: listenerName((j + k) % L), Node: node(j, k)})
			}
		default:
			s.Plays = []playPlan{{Listener: listenerName(j % L), Node: node(j, 0)}}
		}
	}

	// Tips: every listener tips one song 0.10–0.50 (or 0.11, whose split
	// needs the largest remainder); every tenth gives a thumbs-up, the
	// first at an amount of 0.30 it set.
	for i, l := range p.Listeners {
		amount := 10 + int64(i%5)*10
		if i%10 == 5 {
			amount = 11
		}
		p.Tips = append(p.Tips, tipPlan{Listener: l, Song: (i*7 + 3) % S, Amount: amount})
		if i%10 == 0 {
			p.Tips = append(p.Tips, tipPlan{Listener: l, Song: (i*3 + 1) % S, ThumbsUp: true})
		}
	}
	p.ThumbsUp[p.Listeners[0]] = 30
	for i := range p.Tips {
		if t := &p.Tips[i]; t.ThumbsUp {
			t.Amount = thumbsUpDefault
			if a, ok := p.ThumbsUp[t.Listener]; ok {
				t.Amount = a
			}
		}
	}

	// Subscriptions: the first tenth of the listeners each subscribe to an
	// artist; artist-01 asks 2.50 a month, the others the default.
	p.TrueFan[a1] = 250
	for i := range max(1, L/10) {
		p.Subscriptions = append(p.Subscriptions, subscriptionPlan{Listener: p.Listeners[i], Artist: p.Artists[i%A]})
	}

	// Purchases: each priced song twice, by listeners from the fifth on.
	var priced []int
	for j, s := range p.Songs {
		if s.Price > 0 {
			priced = append(priced, j)
		}
	}
	for k := range min(2*len(priced), L) {
		p.Purchases = append(p.Purchases, purchasePlan{Listener: p.Listeners[(L/5+k)%L], Song: priced[k%len(priced)]})
	}

	// Artist-00's escrow releases and crowdfunds pay 60% to them, 40% to
	// artist-01.
	p.Payees[a0] = []share{{a0, 600_000}, {a1, 400_000}}
	backer := func(k int) string { return p.Listeners[(L*6/10+k)%L] }
	p.Campaigns = []campaignPlan{
		{Name: "campaign-goal", Artist: a0, Goal: 1000, CloseOnGoal: true, Deadline: 2 * time.Hour,
			Pledges: []pledgePlan{{backer(0), 250}, {backer(1), 250}, {backer(2), 250}, {backer(3), 250}}},
		{Name: "campaign-deadline", Artist: a2, Goal: 10_000, Deadline: 8 * time.Second,
			Pledges: []pledgePlan{{backer(4), 300}, {backer(5), 100}, {backer(6), 200}}},
	}
	p.Withdrawal = withdrawalPlan{Who: a1, Amount: 300}
	p.Release = releasePlan{Artist: a0, Proposer: p.Moderators[0], Approver: p.Moderators[1]}
	return p, nil
}

// thumbsUpDefault is the thumbs-up tip of a listener who set none (DESIGN
// §6, USD 0.50).
const thumbsUpDefault = 50

// Auto-tip rules (DESIGN §6): after the 5th counted play of a song, 0.05
// per further counted play, within a monthly budget of 5.00.
const (
	autoTipAfterPlays = 5
	autoTipAmount     = 5
	autoTipBudget     = 500
)

// subscriptionDefault is an artist's monthly amount until they set one.
const subscriptionDefault = 100
