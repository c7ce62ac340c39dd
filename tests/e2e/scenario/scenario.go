// Package scenario is Fanfare's end-to-end scenario driver: it plays a
// small music network through the public doors only — the gateway
// (Connect/gRPC with Kratos sessions), Kratos' public and admin APIs, and
// the event store for the one thing that has no API, the tier policy —
// keeps its own model of the money, and reports what the system ended
// with next to what the model expects.
//
// The scenario, for a Size of L listeners, A artists and S songs (the e2e
// test uses 100, 20, 200):
//
//   - a policy version ends the discovery tier at play 3, so songs played
//     more than three times get standard-tier rewards;
//   - everyone registers with Kratos (roles granted through the admin
//     API: finance, auditor, two moderators, three serving nodes, six
//     distributors, the artists) and gets the welcome credit on first use;
//   - every listener deposits 10–25 USD, confirmed by finance;
//   - the artists register S songs (3 s long; splits alone, 60/40 or
//     50/30/20; every tenth for sale with a 3-hop referral chain, fees a
//     percentage out of the price or fixed on top);
//   - plays through heartbeats spaced in wall time: every song once, S/20
//     songs five times (two standard-tier plays each), one song seven
//     times by a listener with an auto-tip rule (two auto-tips);
//   - a tip of every listener (a few at amounts that need the largest
//     remainder), thumbs-ups, a subscription period of a tenth of the
//     listeners, two purchases of every priced song through its chain;
//   - a crowdfund that reaches its goal (closes on it, captured to the
//     artist's payees) and one that fails at a deadline seconds away;
//   - the moderator council releases part of an artist's discovery
//     escrow to the artist's payees; an artist withdraws, finance settles.
//
// Every call retries what a restarting part explains with the same
// request (request ids are the driver's, derived from the run's tag and
// the plan), and every asynchronous outcome is waited for by polling, so
// the same scenario runs while processes are killed and restarted. Run
// returns the Outcome: balances, FAN supply and the settlement export by
// stable names (never identity ids), next to the model's; Outcome.Check
// compares them and checks the invariants, Outcome.Compare compares two
// runs.
package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Env is where the system under test answers.
type Env struct {
	// GatewayURL is the public port (every API; gRPC, sessions in
	// X-Session-Token).
	GatewayURL string
	// KratosPublicURL registers identities (native flows).
	KratosPublicURL string
	// KratosAdminURL grants roles.
	KratosAdminURL string
	// EventStoreURL (esdb://…) is used only to append the tier policy.
	EventStoreURL string
	// Log, if set, gets the driver's progress and every retry.
	Log func(format string, args ...any)
}

// Size is how big the scenario is.
type Size struct{ Listeners, Artists, Songs int }

// Concurrency bounds: sessions played at once, other calls at once, and
// registrations at once (Kratos on SQLite takes one write at a time).
const (
	playWorkers     = 24
	callWorkers     = 16
	registerWorkers = 4
)

// driver is one run.
type driver struct {
	env     Env
	plan    *plan
	model   *model
	rewards rewardRules
	tag     string
	http    *http.Client

	people  map[string]*person // by name
	names   map[string]string  // identity id → name
	songIDs []string           // by song index
	tokens  map[int]string     // referral token by song index
	// campaigns by name: id; escrows are named after them.
	campaigns map[string]string
	// baseline of the system accounts (their changes are compared).
	baseline map[string]int64

	retries atomic.Int64
	plays   atomic.Int64
	mu      sync.Mutex
	notes   []string
	probs   []string
}

func (d *driver) logf(format string, args ...any) {
	if d.env.Log != nil {
		d.env.Log("scenario %s: "+format, append([]any{d.tag}, args...)...)
	}
}

// note records something worth knowing that is not a failure.
func (d *driver) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.logf("%s", msg)
	d.mu.Lock()
	d.notes = append(d.notes, msg)
	d.mu.Unlock()
}

// problem records something Check fails on, without stopping the run.
func (d *driver) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.logf("PROBLEM: %s", msg)
	d.mu.Lock()
	d.probs = append(d.probs, msg)
	d.mu.Unlock()
}

// rid is the request id of one money-moving or creating call: the run's
// tag and what the call is for, so a retry repeats it exactly.
func (d *driver) rid(parts ...any) string {
	return "e2e-" + d.tag + "-" + fmt.Sprint(parts...)
}

// Run plays the scenario against env and returns what the system ended
// with next to what the model expects. An error means the scenario could
// not be played (a call failed for good, an outcome never came); money
// that differs from the model is not an error of Run: Outcome.Check
// reports it.
func Run(ctx context.Context, env Env, size Size) (*Outcome, error) {
	p, err := newPlan(size)
	if err != nil {
		return nil, err
	}
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, err
	}
	d := &driver{env: env, plan: p, tag: hex.EncodeToString(tag[:]), http: newHTTPClient(),
		people: map[string]*person{}, names: map[string]string{}, tokens: map[int]string{}, campaigns: map[string]string{},
		baseline: map[string]int64{}}
	defer d.http.CloseIdleConnections()
	started := time.Now()
	out, err := d.run(ctx)
	if out != nil {
		out.Took = time.Since(started)
		out.Retries = d.retries.Load()
		d.logf("done in %s with %d retries", out.Took.Round(time.Millisecond), out.Retries)
	}
	return out, err
}

func (d *driver) run(ctx context.Context) (*Outcome, error) {
	p := d.plan
	step := func(name string) func() {
		t := time.Now()
		d.logf("%s…", name)
		return func() { d.logf("%s: %s", name, time.Since(t).Round(time.Millisecond)) }
	}

	// Finance and the auditor first: the auditor reads the system
	// accounts before anyone else of the run exists (their welcome
	// credits are accounted for).
	done := step("staff and baseline")
	people := p.people()
	for _, pp := range people[:2] {
		who, err := d.register(ctx, pp)
		if err != nil {
			return nil, err
		}
		d.add(who)
	}
	policy, err := d.appendPolicy(ctx)
	if err != nil {
		return nil, err
	}
	if d.rewards, err = rewardsOf(policy.Policy); err != nil {
		return nil, err
	}
	welcome, err := welcomeOf(policy.Policy)
	if err != nil {
		return nil, err
	}
	if d.model, err = expect(p, welcome, d.rewards); err != nil {
		return nil, fmt.Errorf("scenario: the plan cannot be modelled: %w", err)
	}
	if err := d.readBaseline(ctx, welcome); err != nil {
		return nil, err
	}
	if before := -d.baseline[mintKey] - d.baseline[burnKey]; before+d.model.Minted > d.rewards.BurnFloor {
		return nil, fmt.Errorf("scenario: the FAN supply (%s) would pass the burn floor (%s): the model has no burns", format(before, fan), format(d.rewards.BurnFloor, fan))
	}
	done()

	done = step(fmt.Sprintf("registering %d people", len(people)-2))
	var mu sync.Mutex
	if err := parallel(ctx, registerWorkers, len(people)-2, func(ctx context.Context, i int) error {
		who, err := d.register(ctx, people[i+2])
		if err == nil {
			mu.Lock()
			d.add(who)
			mu.Unlock()
		}
		return err
	}); err != nil {
		return nil, err
	}
	done()

	done = step("deposits, settings, songs and distributor keys")
	if err := group(ctx, map[string]func(context.Context) error{
		"deposits": d.deposits,
		"settings": d.settings,
		"songs":    d.registerSongs,
		"keys":     d.distributorKeys,
	}); err != nil {
		return nil, err
	}
	done()

	done = step("referral tokens and the tier probe")
	if err := group(ctx, map[string]func(context.Context) error{
		"tokens": d.referralTokens,
		"probe":  d.probe,
	}); err != nil {
		return nil, err
	}
	done()

	done = step("plays, tips, subscriptions, purchases, crowdfunds and a withdrawal")
	if err := group(ctx, map[string]func(context.Context) error{
		"plays":         d.allPlays,
		"tips":          d.tips,
		"subscriptions": d.subscriptions,
		"purchases":     d.purchases,
		"crowdfunds":    d.crowdfunds,
		"withdrawal":    d.withdrawal,
	}); err != nil {
		return nil, err
	}
	done()

	done = step("council release")
	if err := d.release(ctx); err != nil {
		return nil, err
	}
	done()

	out := d.outcome()
	done = step("waiting for the ledger to settle")
	if err := d.settle(ctx, out); err != nil {
		return out, err
	}
	if err := d.statements(ctx, out); err != nil {
		return out, err
	}
	if err := d.dashboards(ctx, out); err != nil {
		return out, err
	}
	done()

	done = step("audits and the settlement export")
	if err := d.audits(ctx, out); err != nil {
		return out, err
	}
	if err := d.export(ctx, out); err != nil {
		return out, err
	}
	done()
	d.mu.Lock()
	out.Notes, out.Problems = slices.Clone(d.notes), slices.Clone(d.probs)
	d.mu.Unlock()
	out.Plays = int(d.plays.Load())
	if out.Plays != out.Counts.Plays {
		out.Problems = append(out.Problems, fmt.Sprintf("%d plays counted, the plan has %d", out.Plays, out.Counts.Plays))
	}
	return out, nil
}

// add makes a registered person known.
func (d *driver) add(p *person) {
	d.people[p.Name] = p
	d.names[p.ID] = p.Name
}
