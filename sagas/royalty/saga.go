// Package royalty is the royalty saga (DESIGN §5): for every PlayCounted it
// asks the ledger for one all-or-nothing reward transaction (id = play id)
// by the tier rules and the cubic burn curve, or records why it refuses,
// and records the ledger's answer. It is the only minter and burner of FAN,
// so it keeps the supply itself, in its own stream.
package royalty

import (
	"context"
	"fmt"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/royalty/domain"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
)

// RequestedBy names the saga on its ledger requests.
const RequestedBy = "royalty"

// Saga handles the events the royalty saga reacts to.
type Saga struct {
	W *eventstore.Writer[*State]
	// SongWait bounds how long a play waits for its song to become known
	// (the registrar's events are read from the start at every start).
	SongWait time.Duration

	Songs    *songview.Catalog
	balances *ledgerview.Balances
}

func newSaga(w *eventstore.Writer[*State]) *Saga {
	return &Saga{W: w, SongWait: 30 * time.Second, Songs: songview.NewCatalog(), balances: ledgerview.NewBalances(domain.FAN)}
}

// OnPlayCounted plans a play's reward: one ledger request, or a refusal.
// A play delivered again appends nothing.
func (s *Saga) OnPlayCounted(ctx context.Context, _ events.Envelope, e *eventsv1.PlayCounted) error {
	sg, err := s.Songs.Wait(ctx, e.SongId, s.SongWait)
	if err != nil {
		return fmt.Errorf("royalty: %w", err)
	}
	play := domain.Play{PlayID: e.PlayId, SongID: e.SongId, ListenerID: e.ListenerId, NodeID: e.NodeId, ArtistID: sg.ArtistId,
		SongPlayNumber: e.SongPlayNumber, Splits: sg.Splits}
	available := s.balances.Get(accounts.WalletID(e.ListenerId, domain.FAN))
	return s.W.Do(ctx, func(st *State) ([]proto.Message, error) {
		if st.Handled(e.SongId, e.SongPlayNumber) {
			return nil, nil
		}
		plan, refusal, err := domain.Plan(play, st.Supply, available, st.Rules)
		if err != nil {
			return nil, err
		}
		if refusal != nil {
			return st.record(refusal.Event(play))
		}
		req := plan.Request(RequestedBy)
		if plan.Tier == domain.Discovery {
			req.OpenEscrows = []string{accounts.EscrowID("discovery", sg.ArtistId, domain.FAN)}
		}
		return st.record(&eventsv1.RewardRequested{PlayId: e.PlayId, SongId: e.SongId, ListenerId: e.ListenerId, NodeId: e.NodeId,
			SongPlayNumber: e.SongPlayNumber, Tier: plan.Tier.String(), Minted: fan(plan.Minted), Burned: fan(plan.Burned),
			SupplyBefore: fan(st.Supply), PolicyVersion: st.PolicyVersion}, req)
	})
}

var rejectionReason = map[eventsv1.LedgerTransactionRejected_Reason]eventsv1.RewardRefused_Reason{
	eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS: eventsv1.RewardRefused_REASON_BURN_UNAFFORDABLE,
	eventsv1.LedgerTransactionRejected_REASON_SUPPLY_CAP:         eventsv1.RewardRefused_REASON_SUPPLY_CAP,
}

// OnLedgerEvent follows the accounts topic: the FAN book's committed
// postings keep the balance read model, its decisions on the saga's
// requests settle or refuse them, and a new policy with reward rules
// applies to later plays.
func (s *Saga) OnLedgerEvent(ctx context.Context, m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.PolicyVersioned:
		return s.onPolicy(ctx, e)
	case *eventsv1.BookBatchAppended:
		if e.Asset != domain.FAN {
			return nil
		}
		s.balances.Apply(e)
		var decided []*eventsv1.BookBatchAppended_Decision
		for _, en := range e.Entries {
			if d := en.GetDecision(); d != nil && d.Request.GetRequestedBy() == RequestedBy {
				decided = append(decided, d)
			}
		}
		if len(decided) == 0 {
			return nil
		}
		return s.W.Do(ctx, func(st *State) ([]proto.Message, error) {
			var evs []proto.Message
			for _, d := range decided {
				p, ok := st.Pending[d.Request.TransactionId]
				if !ok {
					continue // settled before (a redelivered batch)
				}
				var ev proto.Message
				if d.GetCommitted() != nil {
					ev = &eventsv1.RewardSettled{PlayId: p.PlayId, SongId: p.SongId, ListenerId: p.ListenerId, SongPlayNumber: p.SongPlayNumber,
						Minted: p.Minted, Burned: p.Burned, SupplyAfter: fan(st.Supply)}
				} else {
					r := d.GetRejected()
					reason, known := rejectionReason[r.GetReason()]
					if !known {
						reason = eventsv1.RewardRefused_REASON_LEDGER_REJECTED
					}
					ev = &eventsv1.RewardRefused{PlayId: p.PlayId, SongId: p.SongId, ListenerId: p.ListenerId, SongPlayNumber: p.SongPlayNumber,
						Reason: reason, Burn: p.Burned, Detail: "ledger: " + r.GetReason().String() + " " + r.GetDetail()}
				}
				// Applied one by one: a settlement reports the supply as of its own decision.
				recorded, err := st.record(ev)
				if err != nil {
					return nil, err
				}
				evs = append(evs, recorded...)
			}
			return evs, nil
		})
	}
	return nil
}

func (s *Saga) onPolicy(ctx context.Context, e *eventsv1.PolicyVersioned) error {
	if e.GetPolicy().GetRewards() == nil {
		return nil // a policy without reward rules leaves the saga's as they are
	}
	rules, err := domain.RulesFromPolicy(e.Policy)
	if err != nil {
		return fmt.Errorf("royalty: policy v%d: %w", e.Version, err)
	}
	return s.W.Do(ctx, func(st *State) ([]proto.Message, error) {
		if e.Version <= st.PolicyVersion {
			return nil, nil
		}
		return st.record(&eventsv1.RewardRulesApplied{PolicyVersion: e.Version, Rules: rules.Proto(), FanSupplyCap: fan(rules.SupplyCap)})
	})
}
