package domain

import (
	"fmt"

	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
)

// RewardTier is the tier of a counted play.
type RewardTier uint8

const (
	// Discovery: song play number ≤ Rules.DiscoveryMaxPlayNumber.
	Discovery RewardTier = iota + 1
	// Standard: every later play.
	Standard
)

func (t RewardTier) String() string {
	switch t {
	case Discovery:
		return "discovery"
	case Standard:
		return "standard"
	}
	return "unspecified"
}

// Tier returns the tier of the song's playNumber-th play: discovery while
// playNumber ≤ r.DiscoveryMaxPlayNumber (10,000 is discovery, 10,001
// standard).
func Tier(playNumber uint64, r Rules) RewardTier {
	if playNumber <= r.DiscoveryMaxPlayNumber {
		return Discovery
	}
	return Standard
}

// Play is a counted play with what the saga knows of its song.
type Play struct {
	// PlayID is the play id, and the id of the reward transaction.
	PlayID     string
	SongID     string
	ListenerID string
	NodeID     string
	// ArtistID owns the song's discovery escrow (discovery tier).
	ArtistID string
	// SongPlayNumber is the song's play number, 1-based.
	SongPlayNumber uint64
	// Splits are the song's royalty splits in force (standard tier); shares
	// sum to exactly 1,000,000 ppm.
	Splits []*eventsv1.Split
}

// RewardPlan is the reward transaction of one play.
type RewardPlan struct {
	PlayID string
	Tier   RewardTier
	// Postings in their deterministic order; every amount is > 0.
	Postings []*eventsv1.Posting
	// Minted and Burned total the mint and burn postings.
	Minted, Burned int64
	// SupplyAfter is the supply after the transaction: supply + minted −
	// burned.
	SupplyAfter int64
}

// Request returns the ledger request for the plan: transaction id = play id,
// asset FAN, kind ROYALTY (each posting carries its own kind too).
func (p RewardPlan) Request(requestedBy string) *eventsv1.LedgerTransactionRequested {
	return &eventsv1.LedgerTransactionRequested{
		TransactionId: p.PlayID,
		Postings:      p.Postings,
		RequestedBy:   requestedBy,
		Memo:          fmt.Sprintf("%s reward for play %s", p.Tier, p.PlayID),
		Kind:          eventsv1.PostingKind_POSTING_KIND_ROYALTY,
		Asset:         FAN,
	}
}

// Refusal says why a play gets no reward transaction at all.
type Refusal struct {
	Reason eventsv1.RewardRefused_Reason
	// Burn is the burn the listener owed (0 in the discovery tier).
	Burn   int64
	Detail string
}

// Event returns the RewardRefused event for play p.
func (r *Refusal) Event(p Play) *eventsv1.RewardRefused {
	return &eventsv1.RewardRefused{PlayId: p.PlayID, SongId: p.SongID, ListenerId: p.ListenerID,
		SongPlayNumber: p.SongPlayNumber, Reason: r.Reason, Burn: &eventsv1.Money{Asset: FAN, Units: r.Burn}, Detail: r.Detail}
}

// Plan builds the reward transaction of play p at supplyUnits (FAN supply
// before the play) for a listener with listenerFANAvailable FAN available
// (balance − holds), or says why the ledger would refuse it.
//
// Discovery postings: mint → wallet:<listener>:FAN, mint → wallet:<node>:FAN,
// mint → escrow:discovery:<artist>:FAN. Standard: mint → wallet:<payee>:FAN
// for each payee in split order (the artist reward allocated by
// money.Allocate over the share ppm; a payee listed twice gets one posting;
// a zero part none), mint → wallet:<node>:FAN, then wallet:<listener>:FAN →
// burn when [Burn] > 0. Zero rewards get no posting.
//
// Refusals, in the ledger's order: REASON_BURN_UNAFFORDABLE when
// listenerFANAvailable plus what the transaction credits the listener's
// wallet is below the burn; REASON_SUPPLY_CAP when minted > burned and
// supply + minted − burned > r.SupplyCap. A refusal comes with a zero plan.
//
// Errors (invalid_input): [ErrInvalidRules]; [ErrInvalidPlay] for an id
// the ledger's account scheme refuses, an empty or long play id, play
// number 0, a negative supply, or standard-tier splits that are empty or do
// not sum to 1,000,000 ppm.
func Plan(p Play, supplyUnits, listenerFANAvailable int64, r Rules) (RewardPlan, *Refusal, error) {
	if err := r.Validate(); err != nil {
		return RewardPlan{}, nil, err
	}
	if p.PlayID == "" || len(p.PlayID) > accounts.MaxIDLen {
		return RewardPlan{}, nil, invalidPlay("play id must be 1..%d bytes, got %d", accounts.MaxIDLen, len(p.PlayID))
	}
	if p.SongPlayNumber == 0 {
		return RewardPlan{}, nil, invalidPlay("play %s: song play numbers are 1-based", p.PlayID)
	}
	if supplyUnits < 0 {
		return RewardPlan{}, nil, invalidPlay("play %s: supply %d is negative", p.PlayID, supplyUnits)
	}
	listener, err := account(p.PlayID, "listener", accounts.WalletID(p.ListenerID, FAN))
	if err != nil {
		return RewardPlan{}, nil, err
	}
	node, err := account(p.PlayID, "node", accounts.WalletID(p.NodeID, FAN))
	if err != nil {
		return RewardPlan{}, nil, err
	}
	plan := RewardPlan{PlayID: p.PlayID, Tier: Tier(p.SongPlayNumber, r)}
	mint := func(to string, units int64) {
		if units > 0 {
			plan.Postings = append(plan.Postings, &eventsv1.Posting{Debit: accounts.Mint, Credit: to, Asset: FAN,
				Amount: units, Kind: eventsv1.PostingKind_POSTING_KIND_ROYALTY})
			plan.Minted += units // Validate bounds each tier's total by the cap
		}
	}
	var burn int64
	if plan.Tier == Discovery {
		escrow, err := account(p.PlayID, "artist escrow", accounts.EscrowID("discovery", p.ArtistID, FAN))
		if err != nil {
			return RewardPlan{}, nil, err
		}
		mint(listener, r.DiscoveryListenerReward)
		mint(node, r.DiscoveryNodeReward)
		mint(escrow, r.DiscoveryEscrowReward)
	} else {
		// The artist side by the song's splits (the one split over payees).
		pays, err := songview.Payments(p.Splits, FAN, r.StandardArtistReward)
		if err != nil {
			return RewardPlan{}, nil, invalidPlay("play %s: song %s: %v", p.PlayID, p.SongID, err)
		}
		for _, pay := range pays {
			mint(pay.Account, pay.Units)
		}
		mint(node, r.StandardNodeReward)
		if burn = Burn(supplyUnits, r); burn > 0 {
			plan.Postings = append(plan.Postings, &eventsv1.Posting{Debit: listener, Credit: accounts.Burn, Asset: FAN,
				Amount: burn, Kind: eventsv1.PostingKind_POSTING_KIND_BURN})
			plan.Burned = burn
		}
	}
	if burn > 0 {
		var credited int64 // to the listener's own wallet, e.g. as a payee
		for _, ps := range plan.Postings {
			if ps.Credit == listener {
				credited += ps.Amount
			}
		}
		if have, ok := money.AddUnits(listenerFANAvailable, credited); ok && have < burn {
			return RewardPlan{}, &Refusal{Reason: eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE, Burn: burn,
				Detail: fmt.Sprintf("listener %s has %s FAN available (+%s from this reward), the burn is %s FAN",
					p.ListenerID, fan(listenerFANAvailable), fan(credited), fan(burn))}, nil
		}
	}
	// minted and burned are ≥ 0, so their difference cannot overflow; as in
	// the ledger, only a transaction that raises the supply meets the cap.
	after, ok := money.AddUnits(supplyUnits, plan.Minted-plan.Burned)
	if plan.Minted > plan.Burned && (!ok || after > r.SupplyCap) {
		return RewardPlan{}, &Refusal{Reason: eventsv1.RewardRefused_REASON_SUPPLY_CAP, Burn: burn,
			Detail: fmt.Sprintf("supply %s + minted %s − burned %s FAN exceeds the cap %s FAN",
				fan(supplyUnits), fan(plan.Minted), fan(plan.Burned), fan(r.SupplyCap))}, nil
	}
	plan.SupplyAfter = after
	return plan, nil, nil
}

// account checks an account id against the ledger's scheme.
func account(playID, role, id string) (string, error) {
	if _, err := accounts.ParseAccountID(id); err != nil {
		return "", invalidPlay("play %s: %s account: %v", playID, role, err)
	}
	return id, nil
}

func fan(units int64) string { return money.FormatUnits(units, 8) }
