package adapters

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
)

// PolicyStream holds every PolicyVersioned, in version order.
const PolicyStream = "policy"

// PolicyToEvent is the event form of the ledger's part of a policy.
func PolicyToEvent(p domain.Policy, setBy, reason string) *eventsv1.PolicyVersioned {
	ev := &eventsv1.Policy{
		PromotionalCredit: &eventsv1.Money{Asset: p.WelcomeCredit.Asset().Code, Units: p.WelcomeCredit.Units()},
		Ledger:            &eventsv1.LedgerRules{MaxPostings: uint32(p.MaxPostings), MaxHoldOps: uint32(p.MaxHoldOps)},
	}
	for _, a := range p.Assets.List() {
		ev.Assets = append(ev.Assets, &eventsv1.AssetSpec{Code: a.Code, Scale: uint32(a.Scale)})
	}
	if c, ok := p.SupplyCaps["FAN"]; ok {
		ev.FanSupplyCap = &eventsv1.Money{Asset: "FAN", Units: c}
	}
	return &eventsv1.PolicyVersioned{Version: p.Version, Policy: ev, SetBy: setBy, Reason: reason}
}

// PolicyFromEvent reads the ledger's part of a policy.
func PolicyFromEvent(ev *eventsv1.PolicyVersioned) (domain.Policy, error) {
	p := ev.GetPolicy()
	var specs []money.Asset
	for _, a := range p.GetAssets() {
		specs = append(specs, money.Asset{Code: a.Code, Scale: uint8(a.Scale)})
	}
	assets, err := money.NewAssets(specs...)
	if err != nil {
		return domain.Policy{}, fmt.Errorf("policy v%d: %w", ev.Version, err)
	}
	out := domain.Policy{Version: ev.Version, Assets: assets, SupplyCaps: map[string]int64{},
		MaxPostings: int(p.GetLedger().GetMaxPostings()), MaxHoldOps: int(p.GetLedger().GetMaxHoldOps())}
	if c := p.GetFanSupplyCap(); c != nil {
		out.SupplyCaps[c.Asset] = c.Units
	}
	if w := p.GetPromotionalCredit(); w != nil {
		a, err := assets.Lookup(w.Asset)
		if err != nil {
			return domain.Policy{}, fmt.Errorf("policy v%d: welcome credit: %w", ev.Version, err)
		}
		out.WelcomeCredit = money.New(a, w.Units)
	}
	return out, out.Validate()
}

var policyNS = uuid.MustParse("5b0e1b52-6c7e-4a55-b1a0-6f4f3f1c9e11")

// LatestPolicyEvent returns the newest policy event in the store (nil when
// none) and the policy stream's last revision (-1 when it has none), the
// revision to expect when appending the next version.
func LatestPolicyEvent(ctx context.Context, store *eventstore.Store) (latest *eventsv1.PolicyVersioned, last int64, err error) {
	last, err = store.ReadStream(ctx, PolicyStream, 0, func(e eventstore.Event) error {
		if p, ok := e.Message.(*eventsv1.PolicyVersioned); ok {
			latest = p
		}
		return nil
	})
	return latest, last, err
}

// CurrentPolicy returns the newest policy in the store. The first time, it
// records def as version 1 (with a deterministic id, so instances starting
// together write it once).
func CurrentPolicy(ctx context.Context, store *eventstore.Store, def domain.Policy) (domain.Policy, error) {
	latest, last, err := LatestPolicyEvent(ctx, store)
	if err != nil {
		return domain.Policy{}, err
	}
	if last < 0 {
		def.Version = 1
		ev := PolicyToEvent(def, "system", "built-in defaults")
		ctx = eventstore.WithCause(ctx, eventstore.Cause{PolicyVersion: 1})
		if _, err := store.Append(ctx, PolicyStream, esdb.NoStream{}, eventstore.Pending{ID: uuid.NewSHA1(policyNS, []byte("v1")), Message: ev}); err != nil {
			return domain.Policy{}, fmt.Errorf("record the default policy: %w", err)
		}
		latest = ev
	}
	return PolicyFromEvent(latest)
}
