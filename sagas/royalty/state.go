package royalty

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	snapshotsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/snapshots/v1"
	"github.com/fanfare/fanfare/sagas/royalty/domain"
	"google.golang.org/protobuf/proto"
)

// Stream is the saga's own stream: its rules, supply, pending rewards and
// the ledger requests it made.
const Stream = "royalty"

// State is the saga's state, rebuilt from Stream.
type State struct {
	Rules         domain.Rules
	PolicyVersion uint64
	// Supply is the FAN supply counting pending rewards as if they commit
	// (the saga is the only minter and burner); a rejection takes its
	// effect back out.
	Supply  int64
	Pending map[string]*eventsv1.RewardRequested // by play id
	// LastPlay is the highest play number handled (requested or refused)
	// by song. A song's plays are numbered by one shard stream and reach
	// the saga in that order through one partition, so a play numbered at
	// or below it was handled before: one number per song, not one mark per
	// play, is all deduplication needs.
	LastPlay map[string]uint64
	Burn     int64 // last published burn rate
}

func newState(rules domain.Rules) func() *State {
	return func() *State {
		return &State{Rules: rules, Pending: map[string]*eventsv1.RewardRequested{}, LastPlay: map[string]uint64{}}
	}
}

// Handled reports whether the play numbered n of a song was handled.
func (s *State) Handled(songID string, n uint64) bool { return n <= s.LastPlay[songID] }

func (s *State) handled(songID string, n uint64) { s.LastPlay[songID] = max(s.LastPlay[songID], n) }

// snapshot is the state as one message, for the writer's snapshots.
func snapshot(s *State) (proto.Message, error) {
	out := &snapshotsv1.RoyaltySaga{SupplyUnits: s.Supply, BurnUnits: s.Burn, LastPlay: maps.Clone(s.LastPlay),
		Rules: &eventsv1.RewardRulesApplied{PolicyVersion: s.PolicyVersion, Rules: s.Rules.Proto(), FanSupplyCap: fan(s.Rules.SupplyCap)}}
	for _, id := range slices.Sorted(maps.Keys(s.Pending)) {
		out.Pending = append(out.Pending, s.Pending[id])
	}
	return out, nil
}

func restore(s *State, m proto.Message) error {
	snap, ok := m.(*snapshotsv1.RoyaltySaga)
	if !ok {
		return fmt.Errorf("royalty saga: a snapshot of %T", m)
	}
	if err := s.apply(snap.Rules); err != nil {
		return err
	}
	s.Supply, s.Burn = snap.SupplyUnits, snap.BurnUnits
	for _, p := range snap.Pending {
		s.Pending[p.PlayId] = p
	}
	maps.Copy(s.LastPlay, snap.LastPlay)
	return nil
}

func applyState(s *State, e eventstore.Event) error { return s.apply(e.Message) }

func (s *State) apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.RewardRulesApplied:
		r, err := domain.RulesFromPolicy(&eventsv1.Policy{Rewards: e.Rules, FanSupplyCap: e.FanSupplyCap})
		if err != nil {
			return err
		}
		s.Rules, s.PolicyVersion = r, e.PolicyVersion
	case *eventsv1.RewardRequested:
		s.Pending[e.PlayId] = e
		s.handled(e.SongId, e.SongPlayNumber)
		s.Supply += e.Minted.GetUnits() - e.Burned.GetUnits()
	case *eventsv1.LedgerTransactionRequested:
	case *eventsv1.RewardSettled:
		delete(s.Pending, e.PlayId)
	case *eventsv1.RewardRefused:
		s.handled(e.SongId, e.SongPlayNumber)
		if p, ok := s.Pending[e.PlayId]; ok {
			s.Supply -= p.Minted.GetUnits() - p.Burned.GetUnits()
			delete(s.Pending, e.PlayId)
		}
	case *eventsv1.BurnRateChanged:
		s.Burn = e.Burn.GetUnits()
	default:
		return fmt.Errorf("royalty saga: unexpected event %T", m)
	}
	return nil
}

// record applies events to the state, as a replay would, and returns them.
func (s *State) record(evs ...proto.Message) ([]proto.Message, error) {
	for _, e := range evs {
		if err := s.apply(e); err != nil {
			return nil, err
		}
	}
	// The plays service gates standard-tier sessions on the current burn.
	if b := domain.Burn(s.Supply, s.Rules); b != s.Burn {
		e := &eventsv1.BurnRateChanged{Burn: fan(b), Supply: fan(s.Supply), PolicyVersion: s.PolicyVersion}
		if err := s.apply(e); err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, nil
}

func fan(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: domain.FAN, Units: units} }
