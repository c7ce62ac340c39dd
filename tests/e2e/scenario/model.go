package scenario

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The model is the driver's own account of the money: from the plan and
// the rules of DESIGN (and the policy in force), what every account must
// hold at the end, and what it was credited and debited by kind. It never
// asks the system; everything is integer minor units. It is written
// independently of the services' code so that it checks them.

// Account keys name accounts by people's names, never by identity ids:
//
//	listener-007/USD             a wallet
//	artist-03/discovery/FAN      an artist's discovery escrow
//	campaign-goal/USD            a crowdfund's escrow
//	system/promotions/USD        a system account of a book (change over the run)
func walletKey(name, asset string) string { return name + "/" + asset }
func discoveryKey(artist string) string   { return artist + "/discovery/" + fan }
func campaignKey(campaign string) string  { return campaign + "/" + usd }

// System accounts, per book.
var (
	promotionsKey = systemKey("promotions", usd)
	bankKey       = systemKey("external:bank", usd)
	mintKey       = systemKey("mint", fan)
	burnKey       = systemKey("burn", fan)
)

func systemKey(account, asset string) string { return "system/" + account + "/" + asset }

// keyAsset is the asset of an account key (its last segment).
func keyAsset(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// isSystemKey reports whether key names a system account.
func isSystemKey(key string) bool { return strings.HasPrefix(key, "system/") }

// scaleOf is an asset's number of decimals.
func scaleOf(asset string) uint8 {
	if asset == fan {
		return 8
	}
	return 2
}

// Posting kinds as the settlement export names them.
const (
	kindDeposit       = "deposit"
	kindWithdrawal    = "withdrawal"
	kindPromotion     = "promotion"
	kindRoyalty       = "royalty"
	kindTip           = "tip"
	kindPurchase      = "purchase"
	kindReferralFee   = "referral_fee"
	kindSubscription  = "subscription"
	kindPledgeCapture = "pledge_capture"
	kindEscrowRelease = "escrow_release"
)

// rewardRules are the token rewards per counted play (DESIGN §5) in FAN
// units, as the policy the scenario appended states them.
type rewardRules struct {
	Threshold                                uint64
	DiscoveryListener, DiscoveryNode, Escrow int64
	StandardArtist, StandardNode             int64
	// BurnFloor: the burn is zero while the supply is at most this.
	BurnFloor int64
}

// defaultRewards are DESIGN §5's numbers with the scenario's threshold.
func defaultRewards() rewardRules {
	return rewardRules{Threshold: tierThreshold, DiscoveryListener: unitsPerFAN, DiscoveryNode: unitsPerFAN, Escrow: unitsPerFAN,
		StandardArtist: unitsPerFAN, StandardNode: unitsPerFAN, BurnFloor: 1_000_000_000 * unitsPerFAN}
}

// model is the expected state.
type model struct {
	// Balance by account key.
	Balance map[string]int64
	// Credits and Debits by account key and posting kind (≥ 0).
	Credits, Debits map[string]map[string]int64
	Minted, Burned  int64
	// Counts of what moves money.
	Counts Counts
	// Release is the FAN the council releases from the planned escrow.
	Release int64
	// Wallets are the keys of people's wallets.
	Wallets map[string]bool
	// Plays are each song's rewarded plays by tier, [discovery, standard],
	// by song name: what its artist's dashboard shows.
	Plays map[string][2]uint64
}

// Counts say how much the scenario did.
type Counts struct {
	People, Songs, Deposits                      int
	Plays, DiscoveryPlays, StandardPlays         int
	Tips, ThumbsUps, AutoTips                    int
	Subscriptions, Purchases, Pledges, Campaigns int
	Releases, Withdrawals                        int
	USDMoved                                     int64 // cents credited to wallets and escrows, welcome credits excluded
	FANMinted                                    int64
}

func newModel() *model {
	return &model{Balance: map[string]int64{}, Credits: map[string]map[string]int64{}, Debits: map[string]map[string]int64{},
		Wallets: map[string]bool{}, Plays: map[string][2]uint64{}}
}

// post moves amount from debit to credit under kind. Zero moves nothing
// (the services post no zero amounts).
func (m *model) post(debit, credit string, amount int64, kind string) {
	if amount == 0 {
		return
	}
	m.Balance[debit] -= amount
	m.Balance[credit] += amount
	add := func(in map[string]map[string]int64, key string) {
		if in[key] == nil {
			in[key] = map[string]int64{}
		}
		in[key][kind] += amount
	}
	add(m.Debits, debit)
	add(m.Credits, credit)
}

// open makes an account known with a zero balance (opened wallets are
// read and compared even when nothing moves them).
func (m *model) open(key string) {
	if _, ok := m.Balance[key]; !ok {
		m.Balance[key] = 0
	}
}

// errTie is returned by allocate when equal remainders compete for the
// last units: the payee ids (which differ between runs) would then decide
// the cents, and two runs could not be compared by name.
var errTie = errors.New("equal remainders straddle the leftover units")

// allocate splits total over the shares by largest remainder (DESIGN §1
// rule 6): floor parts first, then one unit each to the largest
// remainders. A tie at the cut is refused (see errTie), so the result
// never depends on the payees' ids.
func allocate(total int64, shares []share) ([]int64, error) {
	if total < 0 || len(shares) == 0 {
		return nil, fmt.Errorf("allocate %d over %d shares", total, len(shares))
	}
	var sum uint64
	for _, s := range shares {
		sum += uint64(s.PPM)
	}
	if sum == 0 {
		return nil, errors.New("allocate over zero weights")
	}
	parts := make([]int64, len(shares))
	rems := make([]uint64, len(shares))
	var given int64
	for i, s := range shares {
		// total < 2^63 and PPM ≤ 1e6 < 2^20: the product may overflow
		// uint64 only for totals above 2^44 units, far beyond the plan.
		prod := uint64(total) * uint64(s.PPM)
		parts[i] = int64(prod / sum)
		rems[i] = prod % sum
		given += parts[i]
	}
	left := int(total - given)
	if left == 0 {
		return parts, nil
	}
	order := make([]int, len(shares))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rems[a] > rems[b]:
			return -1
		case rems[a] < rems[b]:
			return 1
		}
		return 0
	})
	if left < len(order) && rems[order[left-1]] == rems[order[left]] {
		return nil, fmt.Errorf("allocate %d over %v: %w", total, shares, errTie)
	}
	for _, i := range order[:left] {
		parts[i]++
	}
	return parts, nil
}

// split posts amount from debit to the shares' accounts of asset.
func (m *model) split(debit string, amount int64, shares []share, asset, kind string) error {
	parts, err := allocate(amount, shares)
	if err != nil {
		return err
	}
	for i, s := range shares {
		m.post(debit, walletKey(s.Payee, asset), parts[i], kind)
	}
	return nil
}

// expect computes the end state of plan p: welcome is the promotional
// credit of a new identity (cents), r the reward rules in force.
func expect(p *plan, welcome int64, r rewardRules) (*model, error) {
	m := newModel()
	var errs []error
	check := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	people := p.people()
	m.Counts.People = len(people)
	m.Counts.Songs = len(p.Songs)
	for _, who := range people {
		for _, asset := range []string{usd, fan} {
			m.open(walletKey(who.Name, asset))
			m.Wallets[walletKey(who.Name, asset)] = true
		}
		m.post(promotionsKey, walletKey(who.Name, usd), welcome, kindPromotion)
	}
	for _, l := range p.Listeners {
		if d := p.Deposits[l]; d > 0 {
			m.post(bankKey, walletKey(l, usd), d, kindDeposit)
			m.Counts.Deposits++
		}
	}

	// Plays and their rewards, song by song in play order.
	listenerPlays := map[string]int{} // listener/song → counted plays
	autoTip := map[string]bool{}
	for _, l := range p.AutoTip {
		autoTip[l] = true
	}
	autoSpent := map[string]int64{}
	for _, s := range p.Songs {
		tiers := m.Plays[s.Name]
		for k, pl := range s.Plays {
			number := uint64(k + 1)
			m.Counts.Plays++
			supply := m.Minted - m.Burned
			if number <= r.Threshold {
				m.Counts.DiscoveryPlays++
				tiers[0]++
				m.post(mintKey, walletKey(pl.Listener, fan), r.DiscoveryListener, kindRoyalty)
				m.post(mintKey, walletKey(pl.Node, fan), r.DiscoveryNode, kindRoyalty)
				m.post(mintKey, discoveryKey(s.Artist), r.Escrow, kindRoyalty)
				m.Minted += r.DiscoveryListener + r.DiscoveryNode + r.Escrow
			} else {
				m.Counts.StandardPlays++
				tiers[1]++
				// The burn b(S) is zero up to the floor; the scenario
				// mints far less than that, and the run's supply is
				// checked to stay below it.
				if supply > r.BurnFloor {
					check(s.Name, fmt.Errorf("supply %d is above the burn floor: the model has no burns", supply))
				}
				check(s.Name+" standard reward", m.split(mintKey, r.StandardArtist, s.Splits, fan, kindRoyalty))
				m.post(mintKey, walletKey(pl.Node, fan), r.StandardNode, kindRoyalty)
				m.Minted += r.StandardArtist + r.StandardNode
			}
			lk := pl.Listener + "/" + s.Name
			listenerPlays[lk]++
			if autoTip[pl.Listener] && listenerPlays[lk] > autoTipAfterPlays && autoSpent[pl.Listener]+autoTipAmount <= autoTipBudget {
				autoSpent[pl.Listener] += autoTipAmount
				m.Counts.AutoTips++
				check(fmt.Sprintf("auto-tip %s play %d", s.Name, number),
					m.split(walletKey(pl.Listener, usd), autoTipAmount, s.Splits, usd, kindTip))
			}
		}
		m.Plays[s.Name] = tiers
	}
	m.Counts.FANMinted = m.Minted
	if m.Minted > r.BurnFloor {
		check("supply", fmt.Errorf("the run mints %d FAN units, above the burn floor", m.Minted))
	}

	for _, t := range p.Tips {
		s := p.Songs[t.Song]
		m.Counts.Tips++
		if t.ThumbsUp {
			m.Counts.ThumbsUps++
		}
		check(fmt.Sprintf("tip %s → %s", t.Listener, s.Name), m.split(walletKey(t.Listener, usd), t.Amount, s.Splits, usd, kindTip))
	}
	for _, sub := range p.Subscriptions {
		monthly := int64(subscriptionDefault)
		if a, ok := p.TrueFan[sub.Artist]; ok {
			monthly = a
		}
		m.Counts.Subscriptions++
		m.post(walletKey(sub.Listener, usd), walletKey(sub.Artist, usd), monthly, kindSubscription)
	}
	for _, b := range p.Purchases {
		m.Counts.Purchases++
		check(fmt.Sprintf("purchase %s by %s", p.Songs[b.Song].Name, b.Listener), m.purchase(b.Listener, p.Songs[b.Song]))
	}
	for _, c := range p.Campaigns {
		m.Counts.Campaigns++
		m.Counts.Pledges += len(c.Pledges)
		if !c.Succeeds() {
			continue // every hold is voided: nothing moves
		}
		esc := campaignKey(c.Name)
		m.open(esc)
		payees := p.Payees[c.Artist]
		if payees == nil {
			payees = []share{{c.Artist, ppm}}
		}
		for _, pl := range c.Pledges {
			m.post(walletKey(pl.Backer, usd), esc, pl.Amount, kindPledgeCapture)
			check(c.Name+" capture", m.split(esc, pl.Amount, payees, usd, kindPledgeCapture))
		}
	}

	// The council releases up to 5 FAN of the escrow by the artist's payees.
	m.Release = min(5*unitsPerFAN, m.Balance[discoveryKey(p.Release.Artist)])
	if m.Release <= 0 {
		check("release", fmt.Errorf("the discovery escrow of %s holds nothing to release", p.Release.Artist))
	} else {
		payees := p.Payees[p.Release.Artist]
		if payees == nil {
			payees = []share{{p.Release.Artist, ppm}}
		}
		m.Counts.Releases++
		check("release", m.split(discoveryKey(p.Release.Artist), m.Release, payees, fan, kindEscrowRelease))
	}
	m.Counts.Withdrawals++
	m.post(walletKey(p.Withdrawal.Who, usd), bankKey, p.Withdrawal.Amount, kindWithdrawal)

	for key, kinds := range m.Credits {
		if keyAsset(key) == usd && !isSystemKey(key) {
			for k, v := range kinds {
				if k != kindPromotion {
					m.Counts.USDMoved += v
				}
			}
		}
	}
	check("funds", m.safeInAnyOrder())
	return m, errors.Join(errs...)
}

// purchase pays one purchase of s by listener (DESIGN §6): the payees by
// the splits, the chain's distributors (nearest the purchaser first) by
// the policy, the fees out of the price (holder) or on top (purchaser).
func (m *model) purchase(listener string, s songPlan) error {
	if s.Price <= 0 || len(s.Chain) == 0 {
		return fmt.Errorf("%s is not for sale through a chain", s.Name)
	}
	nearest := slices.Clone(s.Chain)
	slices.Reverse(nearest)
	fees := make([]int64, len(nearest))
	for i := range nearest {
		switch s.Policy.Mode {
		case "fixed":
			if i < len(s.Policy.Fixed) {
				fees[i] = s.Policy.Fixed[i]
			}
		case "percent":
			if i < len(s.Policy.PPM) {
				f := s.Price * int64(s.Policy.PPM[i])
				if f%ppm != 0 {
					return fmt.Errorf("fee of hop %d is %d/%d cents: the model takes exact percentages only", i+1, f, ppm)
				}
				fees[i] = f / ppm
			}
		default:
			return fmt.Errorf("policy mode %q", s.Policy.Mode)
		}
	}
	var feeTotal int64
	for _, f := range fees {
		feeTotal += f
	}
	payeeTotal := s.Price
	if s.Policy.Payer == "holder" {
		payeeTotal -= feeTotal
	}
	from := walletKey(listener, usd)
	if err := m.split(from, payeeTotal, s.Splits, usd, kindPurchase); err != nil {
		return err
	}
	for i, d := range nearest {
		m.post(from, walletKey(d, usd), fees[i], kindReferralFee)
	}
	return nil
}

// safeInAnyOrder checks that no wallet spends more than it was given by
// deposits and welcome credits: then no payment can be refused for want
// of funds whatever order the services decide them in.
func (m *model) safeInAnyOrder() error {
	var errs []error
	for key, debits := range m.Debits {
		if !m.Wallets[key] {
			continue
		}
		var spent int64
		for _, v := range debits {
			spent += v
		}
		c := m.Credits[key]
		if given := c[kindDeposit] + c[kindPromotion]; spent > given {
			errs = append(errs, fmt.Errorf("%s spends %d but is given %d up front", key, spent, given))
		}
	}
	return errors.Join(errs...)
}
