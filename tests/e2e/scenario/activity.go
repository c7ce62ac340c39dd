package scenario

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	chainsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1"
	escrowv1 "github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	ledger "github.com/fanfare/fanfare/services/accounts/domain"
	chains "github.com/fanfare/fanfare/services/chains/domain"
	songs "github.com/fanfare/fanfare/services/songs/domain"
	"github.com/fanfare/fanfare/services/songs/songstest"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// waitMs is what payment calls ask the service to wait for the ledger.
const waitMs = 10_000

// deposits: every listener asks for a deposit through the bank rail and
// finance confirms it.
func (d *driver) deposits(ctx context.Context) error {
	fin := d.who(financeName)
	return parallel(ctx, callWorkers, len(d.plan.Listeners), func(ctx context.Context, i int) error {
		l := d.who(d.plan.Listeners[i])
		amount := d.plan.Deposits[l.Name]
		dep, err := call(ctx, d, "deposit of "+l.Name, l.accounts.RequestDeposit, &accountsv1.RequestDepositRequest{
			RequestId: d.rid("deposit-", l.Name), AccountId: ledger.WalletID(l.ID, usd), Amount: format(amount, usd), Rail: "bank"})
		if err != nil {
			return err
		}
		_, err = call(ctx, d, "confirm the deposit of "+l.Name, fin.accounts.ConfirmDeposit, &accountsv1.ConfirmDepositRequest{
			RequestId: d.rid("confirm-", l.Name), DepositId: dep.DepositId, RailReference: "bank-" + d.tag + "-" + l.Name})
		return err
	})
}

// settings: artists' true-fan amounts and payees, listeners' thumbs-up
// amounts and auto-tip rules — all before anything they govern.
func (d *driver) settings(ctx context.Context) error {
	p := d.plan
	for _, a := range slices.Sorted(maps.Keys(p.TrueFan)) {
		if _, err := call(ctx, d, a+" sets the true-fan amount", d.who(a).tipping.SetTrueFanAmount,
			&tippingv1.SetTrueFanAmountRequest{Monthly: format(p.TrueFan[a], usd)}); err != nil {
			return err
		}
	}
	for _, a := range slices.Sorted(maps.Keys(p.Payees)) {
		if _, err := call(ctx, d, a+" sets the payees", d.who(a).escrow.SetPayees,
			&escrowv1.SetPayeesRequest{Payees: d.splits(p.Payees[a])}); err != nil {
			return err
		}
	}
	for _, l := range slices.Sorted(maps.Keys(p.ThumbsUp)) {
		if _, err := call(ctx, d, l+" sets the thumbs-up amount", d.who(l).tipping.SetThumbsUpAmount,
			&tippingv1.SetThumbsUpAmountRequest{Amount: format(p.ThumbsUp[l], usd)}); err != nil {
			return err
		}
	}
	for _, l := range p.AutoTip {
		if _, err := call(ctx, d, l+" opts in to auto-tips", d.who(l).tipping.SetAutoTip, &tippingv1.SetAutoTipRequest{}); err != nil {
			return err
		}
	}
	return nil
}

// splits are a plan's shares as the APIs take them (identity ids, decimal
// percentages).
func (d *driver) splits(shares []share) []*songsv1.Split {
	out := make([]*songsv1.Split, len(shares))
	for i, s := range shares {
		out[i] = &songsv1.Split{PayeeId: d.who(s.Payee).ID, Percent: percent(s.PPM)}
	}
	return out
}

// percent formats parts per million as a percentage with up to 4 decimals.
func percent(v uint32) string {
	s := strings.TrimRight(fmt.Sprintf("%d.%04d", v/10_000, v%10_000), "0")
	return strings.TrimSuffix(s, ".")
}

// registerSongs: every artist registers their songs.
func (d *driver) registerSongs(ctx context.Context) error {
	d.songIDs = make([]string, len(d.plan.Songs))
	return parallel(ctx, callWorkers, len(d.plan.Songs), func(ctx context.Context, j int) error {
		s := d.plan.Songs[j]
		artist := d.who(s.Artist)
		hash := sha256.Sum256([]byte("fanfare-e2e/" + d.tag + "/" + s.Name))
		desc := &songsv1.Description{Title: s.Name + " " + d.tag, Artists: []string{s.Artist}, Album: "E2E " + d.tag,
			Track: uint32(j + 1), Genre: "test", Year: 2026, DurationMs: songDurationMs, Format: "audio/mpeg",
			ContentHash: hex.EncodeToString(hash[:]), Fingerprint: songs.CompressFingerprint(1, songstest.Fingerprint(d.tag+"/"+s.Name)),
			Splits: d.splits(s.Splits), CopyrightHolder: s.Artist}
		if s.Price > 0 {
			desc.Price, desc.PriceAsset = format(s.Price, usd), usd
			pol := &songsv1.DistributorPolicy{Mode: s.Policy.Mode, Payer: s.Policy.Payer}
			for _, f := range s.Policy.Fixed {
				pol.Fixed = append(pol.Fixed, format(f, usd))
			}
			for _, v := range s.Policy.PPM {
				pol.Percent = append(pol.Percent, percent(v))
			}
			desc.DistributorPolicy = pol
		}
		res, err := call(ctx, d, "register "+s.Name, artist.songs.RegisterSong, &songsv1.RegisterSongRequest{
			RequestId: d.rid("song-", s.Name), Description: desc, DownloadLocation: "https://cdn.example/e2e/" + d.tag + "/" + s.Name})
		if err != nil {
			return err
		}
		if res.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
			return fmt.Errorf("register %s: outcome %v (matched %s, similarity %s), want a new song", s.Name, res.Outcome, res.MatchedSongId, res.Similarity)
		}
		d.songIDs[j] = res.SongId
		return nil
	})
}

// distributorKey is a distributor's Ed25519 key, derived from the run and
// its name.
func (d *driver) distributorKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("fanfare-e2e/" + d.tag + "/key/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// distributorKeys: every distributor registers the key it signs hops with.
func (d *driver) distributorKeys(ctx context.Context) error {
	return parallel(ctx, callWorkers, len(d.plan.Distributors), func(ctx context.Context, i int) error {
		p := d.who(d.plan.Distributors[i])
		pub := d.distributorKey(p.Name).Public().(ed25519.PublicKey)
		_, err := call(ctx, d, p.Name+" registers its key", p.chains.RegisterDistributorKey, &chainsv1.RegisterDistributorKeyRequest{PublicKey: pub})
		return err
	})
}

// referralTokens: the chain's first distributor has the service issue a
// root token for each priced song; the others extend it offline, as
// `fanfare referral extend` does (each hop sealed to the service's box key
// and signed by the distributor).
func (d *driver) referralTokens(ctx context.Context) error {
	first := d.who(d.plan.Distributors[0])
	keys, err := call(ctx, d, "the chains service's keys", first.chains.GetServiceKeys, &chainsv1.GetServiceKeysRequest{})
	if err != nil {
		return err
	}
	box, err := sealbox.PublicKey(keys.BoxKey)
	if err != nil {
		return fmt.Errorf("the chains service's box key: %w", err)
	}
	var priced []int
	for j, s := range d.plan.Songs {
		if len(s.Chain) > 0 {
			priced = append(priced, j)
		}
	}
	tokens := make([]string, len(priced))
	err = parallel(ctx, callWorkers, len(priced), func(ctx context.Context, i int) error {
		j := priced[i]
		s := d.plan.Songs[j]
		root := d.who(s.Chain[0])
		res, err := call(ctx, d, root.Name+" gets a referral for "+s.Name, root.chains.IssueReferral,
			&chainsv1.IssueReferralRequest{RequestId: d.rid("referral-", s.Name), SongId: d.songIDs[j]})
		if err != nil {
			return err
		}
		tok, err := chains.ParseTokenText(res.Token)
		if err != nil {
			return fmt.Errorf("the referral token of %s: %w", s.Name, err)
		}
		for _, name := range s.Chain[1:] {
			if tok, err = chains.Extend(tok, d.songIDs[j], d.who(name).ID, d.distributorKey(name), chains.PublicKeys{Box: box}); err != nil {
				return fmt.Errorf("%s extends the token of %s: %w", name, s.Name, err)
			}
		}
		tokens[i] = chains.EncodeToken(tok)
		return nil
	})
	if err != nil {
		return err
	}
	for i, j := range priced {
		d.tokens[j] = tokens[i]
	}
	return nil
}

// probe plays the first song, whose 4th and 5th plays are standard-tier,
// and waits for their rewards before any other play: the royalty saga
// must have taken the policy (it reads it from another topic than the
// plays), or the model's tiers are wrong for every later play.
func (d *driver) probe(ctx context.Context) error {
	if err := d.playSong(ctx, 0); err != nil {
		return err
	}
	s := d.plan.Songs[0]
	aud := d.who(auditorName)
	r := d.rewards
	plays := int64(len(s.Plays))
	discovery := min(plays, int64(r.Threshold))
	wantEscrow := discovery * r.Escrow
	parts, err := allocate(r.StandardArtist, s.Splits)
	if err != nil {
		return err
	}
	var wantArtist int64 // nothing else has paid the artist FAN yet
	for i, sh := range s.Splits {
		if sh.Payee == s.Artist {
			wantArtist += (plays - discovery) * parts[i]
		}
	}
	escrow := ledger.EscrowID("discovery", d.who(s.Artist).ID, fan)
	wallet := ledger.WalletID(d.who(s.Artist).ID, fan)
	return d.eventually(ctx, "the rewards of "+s.Name+"'s plays", func(ctx context.Context) (bool, string, error) {
		e, err := d.balance(ctx, aud, escrow, fan)
		if err != nil {
			return false, "", err
		}
		a, err := d.balance(ctx, aud, wallet, fan)
		if err != nil {
			return false, "", err
		}
		saw := fmt.Sprintf("escrow %s FAN, artist %s FAN", format(e.Total, fan), format(a.Total, fan))
		if e.Total > wantEscrow {
			return false, saw, fmt.Errorf("%s: more than %d plays were rewarded in the discovery tier (escrow %s FAN): the royalty saga did not apply the policy's tier threshold %d in time",
				s.Name, discovery, format(e.Total, fan), r.Threshold)
		}
		return e.Total == wantEscrow && a.Total == wantArtist, saw, nil
	})
}

// allPlays plays every other song, longest play lists first, each song's
// plays in order, playWorkers songs at once.
func (d *driver) allPlays(ctx context.Context) error {
	var order []int
	for j := 1; j < len(d.plan.Songs); j++ {
		order = append(order, j)
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(d.plan.Songs[b].Plays) - len(d.plan.Songs[a].Plays) })
	t := time.Now()
	err := parallel(ctx, playWorkers, len(order), func(ctx context.Context, i int) error { return d.playSong(ctx, order[i]) })
	if err == nil {
		d.logf("%d plays counted in %s", d.plays.Load(), time.Since(t).Round(time.Millisecond))
	}
	return err
}

// tips: every planned tip and thumbs-up, each waited for until the ledger
// paid it.
func (d *driver) tips(ctx context.Context) error {
	return parallel(ctx, callWorkers, len(d.plan.Tips), func(ctx context.Context, i int) error {
		t := d.plan.Tips[i]
		l := d.who(t.Listener)
		s := d.plan.Songs[t.Song]
		what := fmt.Sprintf("%s tips %s %s", l.Name, s.Name, format(t.Amount, usd))
		var tip *tippingv1.Tip
		if t.ThumbsUp {
			what = fmt.Sprintf("%s gives %s a thumbs-up", l.Name, s.Name)
			res, err := call(ctx, d, what, l.tipping.ThumbsUp, &tippingv1.ThumbsUpRequest{RequestId: d.rid("tip-", i), SongId: d.songIDs[t.Song], WaitMs: waitMs}, lagging())
			if err != nil {
				return err
			}
			tip = res.Tip
		} else {
			res, err := call(ctx, d, what, l.tipping.Tip, &tippingv1.TipRequest{RequestId: d.rid("tip-", i), SongId: d.songIDs[t.Song],
				Amount: format(t.Amount, usd), WaitMs: waitMs}, lagging())
			if err != nil {
				return err
			}
			tip = res.Tip
		}
		if t.ThumbsUp && tip.Amount != format(t.Amount, usd) {
			return fmt.Errorf("%s: the thumbs-up tipped %s, the plan %s", what, tip.Amount, format(t.Amount, usd))
		}
		return d.eventually(ctx, what, func(ctx context.Context) (bool, string, error) {
			if tip.Status == tippingv1.Status_STATUS_PENDING {
				res, err := call(ctx, d, what+": ask again", l.tipping.GetTip, &tippingv1.GetTipRequest{TipId: tip.TipId, WaitMs: waitMs}, lagging())
				if err != nil {
					return false, "", err
				}
				tip = res.Tip
			}
			switch tip.Status {
			case tippingv1.Status_STATUS_COMPLETED:
				return true, "", nil
			case tippingv1.Status_STATUS_FAILED:
				return false, "", fmt.Errorf("%s failed: %s %s", what, tip.FailureReason, tip.Detail)
			}
			return false, tip.Status.String(), nil
		})
	})
}

// subscriptions: each planned subscription's first period is charged at
// once; it is waited for until paid.
func (d *driver) subscriptions(ctx context.Context) error {
	return parallel(ctx, callWorkers, len(d.plan.Subscriptions), func(ctx context.Context, i int) error {
		sp := d.plan.Subscriptions[i]
		l, a := d.who(sp.Listener), d.who(sp.Artist)
		what := l.Name + " subscribes to " + a.Name
		res, err := call(ctx, d, what, l.tipping.Subscribe, &tippingv1.SubscribeRequest{RequestId: d.rid("subscription-", i), ArtistId: a.ID, WaitMs: waitMs})
		if err != nil {
			return err
		}
		sub := res.Subscription
		return d.eventually(ctx, what, func(ctx context.Context) (bool, string, error) {
			if sub.PaidUntil == nil && sub.State == "active" {
				res, err := call(ctx, d, what+": ask again", l.tipping.GetSubscription, &tippingv1.GetSubscriptionRequest{SubscriptionId: sub.SubscriptionId})
				if err != nil {
					return false, "", err
				}
				sub = res.Subscription
			}
			switch {
			case sub.State == "active" && sub.PaidUntil != nil && sub.Period == 1:
				return true, "", nil
			case sub.State != "active":
				return false, "", fmt.Errorf("%s: subscription %s is %s (%s)", what, sub.SubscriptionId, sub.State, sub.FailureReason)
			}
			return false, "first period not paid yet", nil
		})
	})
}

// purchases: each planned purchase through the song's referral token,
// waited for until the referral saga paid it.
func (d *driver) purchases(ctx context.Context) error {
	return parallel(ctx, callWorkers, len(d.plan.Purchases), func(ctx context.Context, i int) error {
		b := d.plan.Purchases[i]
		l := d.who(b.Listener)
		s := d.plan.Songs[b.Song]
		what := l.Name + " buys " + s.Name
		res, err := call(ctx, d, what, l.tipping.Purchase, &tippingv1.PurchaseRequest{RequestId: d.rid("purchase-", i), SongId: d.songIDs[b.Song],
			ReferralToken: d.tokens[b.Song], ExpectedPrice: format(s.Price, usd), WaitMs: waitMs}, lagging())
		if err != nil {
			return err
		}
		pur := res.Purchase
		return d.eventually(ctx, what, func(ctx context.Context) (bool, string, error) {
			if pur.Status == tippingv1.Status_STATUS_PENDING {
				res, err := call(ctx, d, what+": ask again", l.tipping.GetPurchase, &tippingv1.GetPurchaseRequest{PurchaseId: pur.PurchaseId, WaitMs: waitMs}, lagging())
				if err != nil {
					return false, "", err
				}
				pur = res.Purchase
			}
			switch pur.Status {
			case tippingv1.Status_STATUS_COMPLETED:
				return true, "", nil
			case tippingv1.Status_STATUS_FAILED:
				return false, "", fmt.Errorf("%s failed: %s %s", what, pur.FailureReason, pur.Detail)
			}
			return false, pur.Status.String(), nil
		})
	})
}

// crowdfunds runs the planned campaigns side by side.
func (d *driver) crowdfunds(ctx context.Context) error {
	tasks := map[string]func(context.Context) error{}
	for _, c := range d.plan.Campaigns {
		tasks[c.Name] = func(ctx context.Context) error { return d.campaign(ctx, c) }
	}
	return group(ctx, tasks)
}

// campaign opens a crowdfund, pledges to it one backer after the other,
// and waits until it settled: succeeded when the pledges reach the goal
// (it closes on the goal), failed at the deadline otherwise.
func (d *driver) campaign(ctx context.Context, c campaignPlan) error {
	artist := d.who(c.Artist)
	var id string
	// A campaign's deadline is fixed when it is first asked for; if the
	// retries of that request outlive it, the request is refused as
	// having a deadline in the past, and a campaign with a new deadline is
	// opened instead (the first, if it was opened, takes no pledges).
	for attempt := 1; id == ""; attempt++ {
		req := &escrowv1.OpenCampaignRequest{RequestId: d.rid("campaign-", c.Name, "-", attempt), Goal: format(c.Goal, usd),
			Deadline: timestamppb.New(time.Now().Add(c.Deadline)), Unlocks: "the " + c.Name + " session recordings", CloseOnGoal: c.CloseOnGoal}
		res, err := call(ctx, d, artist.Name+" opens "+c.Name, artist.escrow.OpenCampaign, req)
		switch {
		case err == nil:
			id = res.Campaign.CampaignId
		case connect.CodeOf(err) == connect.CodeInvalidArgument && strings.Contains(err.Error(), "not in the future") && attempt < 5:
			d.note("%s: its deadline passed while opening it; opening it again", c.Name)
		default:
			return err
		}
	}
	d.mu.Lock()
	d.campaigns[c.Name] = id
	d.mu.Unlock()
	for k, pl := range c.Pledges {
		b := d.who(pl.Backer)
		what := fmt.Sprintf("%s pledges %s to %s", b.Name, format(pl.Amount, usd), c.Name)
		res, err := call(ctx, d, what, b.escrow.Pledge, &escrowv1.PledgeRequest{RequestId: d.rid("pledge-", c.Name, "-", k), CampaignId: id,
			Amount: format(pl.Amount, usd), WaitMs: waitMs}, lagging())
		if err != nil {
			if !c.Succeeds() && (connect.CodeOf(err) == connect.CodePermissionDenied || connect.CodeOf(err) == connect.CodeFailedPrecondition) {
				// The failing campaign's deadline may pass before every
				// pledge got there: nothing moves either way.
				d.note("%s: refused (%v)", what, err)
				continue
			}
			return err
		}
		pledge := res.Pledge
		if err := d.eventually(ctx, what, func(ctx context.Context) (bool, string, error) {
			if pledge.Status == "pending" {
				res, err := call(ctx, d, what+": ask again", b.escrow.GetCampaign, &escrowv1.GetCampaignRequest{CampaignId: id}, lagging())
				if err != nil {
					return false, "", err
				}
				for _, p := range res.Campaign.MyPledges {
					if p.PledgeId == pledge.PledgeId {
						pledge = p
					}
				}
			}
			switch pledge.Status {
			case "pending":
				return false, "pending", nil
			case "placed", "captured":
				return true, "", nil
			case "voided":
				if !c.Succeeds() {
					return true, "", nil
				}
			}
			return false, "", fmt.Errorf("%s: pledge %s is %s (%s)", what, pledge.PledgeId, pledge.Status, pledge.Failure)
		}); err != nil {
			return err
		}
	}
	want := "failed"
	if c.Succeeds() {
		want = "succeeded"
	}
	return d.eventually(ctx, c.Name+" "+want, func(ctx context.Context) (bool, string, error) {
		res, err := call(ctx, d, "read "+c.Name, artist.escrow.GetCampaign, &escrowv1.GetCampaignRequest{CampaignId: id}, lagging())
		if err != nil {
			return false, "", err
		}
		st := res.Campaign.Status
		if st == "succeeded" || st == "failed" {
			if st != want {
				return false, "", fmt.Errorf("%s %s, the plan says it %s (pledged %s of %s)", c.Name, st, want, res.Campaign.Pledged, res.Campaign.Goal)
			}
			return true, "", nil
		}
		return false, fmt.Sprintf("%s, pledged %s", st, res.Campaign.Pledged), nil
	})
}

// withdrawal: the planned withdrawal is held, then settled by finance.
func (d *driver) withdrawal(ctx context.Context) error {
	w := d.plan.Withdrawal
	who, fin := d.who(w.Who), d.who(financeName)
	res, err := call(ctx, d, who.Name+" withdraws", who.accounts.RequestWithdrawal, &accountsv1.RequestWithdrawalRequest{
		RequestId: d.rid("withdrawal"), AccountId: ledger.WalletID(who.ID, usd), Amount: format(w.Amount, usd), Rail: "bank", Destination: "DE89370400440532013000"})
	if err != nil {
		return err
	}
	_, err = call(ctx, d, "finance settles the withdrawal of "+who.Name, fin.accounts.SettleWithdrawal, &accountsv1.SettleWithdrawalRequest{
		RequestId: d.rid("withdrawal-settle"), WithdrawalId: res.WithdrawalId, RailReference: "bank-out-" + d.tag})
	return err
}

// release: once the escrow service sees the artist's discovery escrow
// holding what the plays minted into it, one moderator proposes releasing
// the model's amount and another approves; it is waited for until the
// ledger settled it.
func (d *driver) release(ctx context.Context) error {
	rp := d.plan.Release
	artist, proposer, approver := d.who(rp.Artist), d.who(rp.Proposer), d.who(rp.Approver)
	amount := d.model.Release
	before := d.model.Balance[discoveryKey(rp.Artist)] + amount
	if err := d.eventually(ctx, "the escrow service to see "+rp.Artist+"'s escrow", func(ctx context.Context) (bool, string, error) {
		res, err := call(ctx, d, "read the escrow of "+rp.Artist, proposer.escrow.GetEscrow, &escrowv1.GetEscrowRequest{ArtistId: artist.ID})
		if err != nil {
			return false, "", err
		}
		have, err := parse(res.Escrow.Balance, fan)
		if err != nil {
			return false, "", fmt.Errorf("escrow balance: %w", err)
		}
		return have == before, res.Escrow.Balance + " FAN", nil
	}); err != nil {
		return err
	}
	// The escrow service checks the amount against the balance it read
	// from the ledger; restarted, it reads it back from the start, and
	// refuses (failed_precondition) until it has.
	prop, err := call(ctx, d, proposer.Name+" proposes a release", proposer.escrow.ProposeRelease, &escrowv1.ProposeReleaseRequest{
		RequestId: d.rid("release"), ArtistId: artist.ID, Amount: format(amount, fan), Reason: "e2e scenario " + d.tag},
		alsoRetry(connect.CodeFailedPrecondition))
	if err != nil {
		return err
	}
	id := prop.Proposal.ProposalId
	_, err = call(ctx, d, approver.Name+" approves the release", approver.escrow.ApproveRelease, &escrowv1.ApproveReleaseRequest{ArtistId: artist.ID, ProposalId: id},
		alsoRetry(connect.CodeFailedPrecondition))
	if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists {
		return err
	}
	// AlreadyExists: an approval whose answer a restart lost (checked
	// below: the proposal must reach its quorum and settle).
	return d.eventually(ctx, "the release to settle", func(ctx context.Context) (bool, string, error) {
		res, err := call(ctx, d, "read the escrow of "+rp.Artist, proposer.escrow.GetEscrow, &escrowv1.GetEscrowRequest{ArtistId: artist.ID})
		if err != nil {
			return false, "", err
		}
		for _, p := range res.Escrow.Proposals {
			if p.ProposalId != id {
				continue
			}
			switch p.State {
			case "settled":
				return true, "", nil
			case "failed":
				return false, "", fmt.Errorf("the release failed: %s", p.Failure)
			case "open":
				if !slices.Contains(p.Approvals, approver.ID) {
					return false, "", errors.New("the release is open without the second approval")
				}
			}
			return false, p.State, nil
		}
		return false, "", fmt.Errorf("the escrow of %s has no proposal %s", rp.Artist, id)
	})
}
