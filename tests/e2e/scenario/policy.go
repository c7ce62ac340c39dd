package scenario

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accountsadapters "github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// There is no policy API: rules are versioned data (DESIGN §1 rule 7),
// PolicyVersioned events in the event store's "policy" stream, which the
// forwarder publishes on the accounts topic to the royalty saga, the
// plays service and the escrow service. The scenario appends one version
// — the complete rule set in force with two changes — and that is the
// only thing it does to the event store.

// scenarioOpenSessions is the most open sessions a listener may have
// under the scenario's policy: a counted session stays open until it
// expires (5 minutes after its last heartbeat), the auto-tip listener
// plays eight times within that, and a StartSession whose answer a
// restart lost leaves a session behind.
const scenarioOpenSessions = 64

// policyEvent is the policy the scenario wants in force: latest with the
// discovery tier ending at play tierThreshold and scenarioOpenSessions,
// as version latest+1. Parts latest does not have get DESIGN's defaults.
func policyEvent(latest *eventsv1.PolicyVersioned, tag string) *eventsv1.PolicyVersioned {
	p := proto.Clone(latest.GetPolicy()).(*eventsv1.Policy)
	if p == nil {
		p = &eventsv1.Policy{}
	}
	if p.Rewards == nil {
		f := func(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: fan, Units: units} }
		d := defaultRewards()
		p.Rewards = &eventsv1.RewardRules{DiscoveryListenerReward: f(d.DiscoveryListener), DiscoveryNodeReward: f(d.DiscoveryNode),
			DiscoveryEscrowReward: f(d.Escrow), StandardArtistReward: f(d.StandardArtist), StandardNodeReward: f(d.StandardNode),
			BurnFloor: f(d.BurnFloor), BurnCeiling: f(2_000_000_000 * unitsPerFAN), BurnMax: f(1000 * unitsPerFAN), BurnExponent: 3}
	}
	p.Rewards.DiscoveryMaxPlayNumber = tierThreshold
	if p.Plays == nil {
		// DESIGN §5: count at 50%, heartbeats ≥ 1 s apart, 500 ms slack,
		// at most 10 s a heartbeat, sessions expire after 5 minutes.
		p.Plays = &eventsv1.PlayRules{CountCoveragePpm: 500_000, HeartbeatMinIntervalMs: 1000, HeartbeatSlackMs: 500,
			HeartbeatMaxCreditMs: 10_000, SessionTtlMs: 300_000}
	}
	p.Plays.MaxOpenSessions = max(p.Plays.MaxOpenSessions, scenarioOpenSessions)
	return &eventsv1.PolicyVersioned{Version: latest.GetVersion() + 1, Policy: p, SetBy: "e2e-scenario",
		Reason: fmt.Sprintf("e2e scenario %s: discovery tier up to play %d, %d open sessions", tag, tierThreshold, scenarioOpenSessions)}
}

// wanted reports whether a policy already holds the scenario's changes.
func wanted(p *eventsv1.Policy) bool {
	return p.GetRewards().GetDiscoveryMaxPlayNumber() == tierThreshold && p.GetPlays().GetMaxOpenSessions() >= scenarioOpenSessions
}

// appendPolicy puts the scenario's policy in force (unless the newest
// already is such) and returns it. An append whose answer was lost is
// recognised on the retry by the event id (the newest policy is then the
// scenario's).
func (d *driver) appendPolicy(ctx context.Context) (*eventsv1.PolicyVersioned, error) {
	client, err := eventstore.Connect(d.env.EventStoreURL)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	store := eventstore.NewStore(client)
	var inForce *eventsv1.PolicyVersioned
	err = d.retry(ctx, "append the scenario's policy", func(ctx context.Context) error {
		latest, last, err := accountsadapters.LatestPolicyEvent(ctx, store)
		if err != nil {
			return storeError(err)
		}
		if latest == nil {
			return errors.New("the event store has no policy yet (has the accounts service ever started?)")
		}
		if wanted(latest.Policy) {
			inForce = latest
			return nil
		}
		ev := policyEvent(latest, d.tag)
		id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("fanfare-e2e-scenario/"+d.tag+"/policy"))
		actx := eventstore.WithCause(ctx, eventstore.Cause{PolicyVersion: ev.Version})
		if _, err := store.Append(actx, accountsadapters.PolicyStream, esdb.Revision(uint64(last)), eventstore.Pending{ID: id, Message: ev}); err != nil {
			return storeError(err)
		}
		inForce = ev
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.logf("policy v%d in force: discovery tier up to play %d, at most %d open sessions per listener",
		inForce.Version, inForce.Policy.GetRewards().GetDiscoveryMaxPlayNumber(), inForce.Policy.GetPlays().GetMaxOpenSessions())
	return inForce, nil
}

// storeError marks the event store's failures that a restart explains
// (and a lost race with another writer of the policy) as worth a retry.
func storeError(err error) error {
	if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		return fmt.Errorf("unavailable: the policy stream moved, reading it again: %w", err)
	}
	return fmt.Errorf("unavailable: %w", err)
}

// rewardsOf reads the reward rules of a policy.
func rewardsOf(p *eventsv1.Policy) (rewardRules, error) {
	r := p.GetRewards()
	var out rewardRules
	out.Threshold = r.GetDiscoveryMaxPlayNumber()
	for _, f := range []struct {
		m  *eventsv1.Money
		to *int64
	}{
		{r.GetDiscoveryListenerReward(), &out.DiscoveryListener}, {r.GetDiscoveryNodeReward(), &out.DiscoveryNode},
		{r.GetDiscoveryEscrowReward(), &out.Escrow}, {r.GetStandardArtistReward(), &out.StandardArtist},
		{r.GetStandardNodeReward(), &out.StandardNode}, {r.GetBurnFloor(), &out.BurnFloor},
	} {
		if f.m.GetAsset() != fan {
			return out, fmt.Errorf("policy reward rules: an amount in %q, not FAN", f.m.GetAsset())
		}
		*f.to = f.m.GetUnits()
	}
	return out, nil
}

// welcomeOf is a policy's promotional credit in cents.
func welcomeOf(p *eventsv1.Policy) (int64, error) {
	w := p.GetPromotionalCredit()
	if w == nil {
		return 500, nil // DESIGN §2's default
	}
	if w.Asset != usd {
		return 0, fmt.Errorf("promotional credit in %s: the scenario models USD", w.Asset)
	}
	return w.Units, nil
}
