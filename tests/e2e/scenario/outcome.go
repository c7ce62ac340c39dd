package scenario

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Outcome is what a run ended with, by stable names: people's wallets are
// "listener-007/USD", "artist-03/FAN", "node-1/FAN", "distributor-2/USD";
// an artist's discovery escrow "artist-00/discovery/FAN"; a crowdfund's
// escrow "campaign-goal/USD"; the system accounts "system/promotions/USD",
// "system/external:bank/USD", "system/mint/FAN" and "system/burn/FAN" —
// those as their change over the run, since other runs may share the
// ledger. Amounts are integer minor units (USD cents, FAN 10⁻⁸).
type Outcome struct {
	// Run is the run's tag (in every email and request id of the run).
	Run     string
	Size    Size
	Took    time.Duration
	Retries int64
	// Counts say how much the scenario did (the plan's figures).
	Counts Counts
	// Plays is how many sessions the run played to their count.
	Plays int

	// Expected is the model's balance of every account.
	Expected map[string]int64
	// ExpectedCredits and ExpectedDebits are the model's movements of each
	// account by posting kind ("tip", "royalty", "purchase", …).
	ExpectedCredits, ExpectedDebits map[string]map[string]int64
	// ExpectedMinted is the FAN the model's plays mint (nothing is burned).
	ExpectedMinted int64
	// ExpectedPlays are the model's rewarded plays of each song by tier,
	// [discovery, standard]; Dashboards what the artists' dashboards show.
	ExpectedPlays, Dashboards map[string][2]uint64

	// Actual is what the ledger holds, read through the gateway.
	Actual map[string]Balance
	// Settled reports whether Actual came to equal Expected in time.
	Settled bool
	// Statements are the run's accounts' statements, summed.
	Statements map[string]Statement
	// SupplyBefore and Supply are the FAN supply (minted − burned, from
	// the mint and burn accounts) before the run and at its end.
	SupplyBefore, Supply int64

	// Audits are the last audit replays (two, when they were clean).
	Audits []Audit
	// Settlement is the settlement export's row of each of the run's
	// accounts with anything in the period (the whole run).
	Settlement      map[string]SettlementRow
	SettlementHash  string
	SettlementError string

	// Notes are things worth knowing (a retried session, a pledge refused
	// after the deadline); Problems fail Check.
	Notes, Problems []string
}

// Balance is one account's balance.
type Balance struct {
	Total, Held, Available int64
	// Missing: the ledger has no such account.
	Missing bool
}

// Statement sums an account's statement (ListStatement, every page).
type Statement struct {
	Entries int
	// Sum of the entries' signed amounts; Newest is the running balance
	// after the newest entry.
	Sum, Newest int64
}

// Audit is one RunAudit answer.
type Audit struct {
	Events                  uint64
	Hash                    string
	Clean                   bool
	Violations, Differences []string
	// Supply by asset, as the replay rebuilt it.
	Supply map[string]int64
}

// SettlementRow is an account's row of the settlement export.
type SettlementRow struct {
	Closing         int64
	Credits, Debits map[string]int64
}

// outcome starts the Outcome with the model's side.
func (d *driver) outcome() *Outcome {
	m := d.model
	return &Outcome{Run: d.tag, Size: d.plan.Size, Counts: m.Counts, Expected: maps.Clone(m.Balance),
		ExpectedCredits: m.Credits, ExpectedDebits: m.Debits, ExpectedMinted: m.Minted - m.Burned, ExpectedPlays: m.Plays,
		SupplyBefore: -d.baseline[mintKey] - d.baseline[burnKey]}
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Check compares every balance with the model to the cent, and checks what
// can be checked from outside: per asset the balances and the supply add
// up, no wallet is negative or left with a hold, the audit replays are
// clean and agree on the hash, and the settlement export reconciles with
// the ledger and the model.
func (o *Outcome) Check() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, p := range o.Problems {
		fail("%s", p)
	}
	if o.Actual == nil {
		fail("no balances were read")
		return errors.Join(errs...)
	}

	// Every balance, to the cent.
	for _, k := range keyUnion(o.Expected, o.Actual) {
		a, ok := o.Actual[k]
		switch {
		case !ok:
			fail("%s: not read", k)
		case a.Total != o.Expected[k]:
			fail("%s: the ledger holds %s, the model expects %s", k, format(a.Total, keyAsset(k)), format(o.Expected[k], keyAsset(k)))
		}
		if isSystemKey(k) {
			continue
		}
		if a.Total < 0 || a.Available < 0 {
			fail("%s: negative (total %s, available %s)", k, format(a.Total, keyAsset(k)), format(a.Available, keyAsset(k)))
		}
		if a.Held != 0 {
			fail("%s: %s still held at the end", k, format(a.Held, keyAsset(k)))
		}
	}

	// Every statement adds up to its account's balance.
	if o.Statements == nil {
		fail("no statements were read")
	}
	for _, k := range slices.Sorted(maps.Keys(o.Statements)) {
		st, total := o.Statements[k], o.Actual[k].Total
		if st.Sum != total || (st.Entries > 0 && st.Newest != total) {
			fail("%s: the statement's %d entries sum to %s, its newest balance is %s, the account holds %s", k, st.Entries,
				format(st.Sum, keyAsset(k)), format(st.Newest, keyAsset(k)), format(total, keyAsset(k)))
		}
	}

	// Per asset: the run's accounts and the system accounts' changes sum
	// to zero; the FAN outside mint and burn is the supply minted.
	sums := map[string]int64{}
	var fanHeld int64
	for k, a := range o.Actual {
		sums[keyAsset(k)] += a.Total
		if keyAsset(k) == fan && !isSystemKey(k) {
			fanHeld += a.Total
		}
	}
	for asset, s := range sums {
		if s != 0 {
			fail("%s: the run's accounts and the system accounts' changes sum to %s, not zero", asset, format(s, asset))
		}
	}
	minted := o.Supply - o.SupplyBefore
	if m := -o.Actual[mintKey].Total - o.Actual[burnKey].Total; m != minted {
		fail("FAN: mint and burn moved %s, the supply moved %s", format(m, fan), format(minted, fan))
	}
	if fanHeld != minted || minted != o.ExpectedMinted {
		fail("FAN: the run's accounts hold %s, the supply grew by %s, the model minted %s", format(fanHeld, fan), format(minted, fan), format(o.ExpectedMinted, fan))
	}

	// Audits: clean, and the same log hash twice.
	switch {
	case len(o.Audits) < 2:
		fail("audit: %d replays, want two clean ones", len(o.Audits))
	default:
		a, b := o.Audits[len(o.Audits)-2], o.Audits[len(o.Audits)-1]
		for i, x := range []Audit{a, b} {
			if !x.Clean || len(x.Violations) > 0 || len(x.Differences) > 0 {
				fail("audit %d: clean=%v, violations %q, differences %q", i+1, x.Clean, x.Violations, x.Differences)
			}
			if !hashRE.MatchString(x.Hash) {
				fail("audit %d: hash %q is not 64 hex digits", i+1, x.Hash)
			}
			if s, ok := x.Supply[fan]; !ok || s != o.Supply {
				fail("audit %d: FAN supply %s, the mint and burn accounts say %s", i+1, format(s, fan), format(o.Supply, fan))
			}
		}
		if a.Hash != b.Hash {
			fail("audit: two replays disagree: %s (%d events) and %s (%d events)", a.Hash, a.Events, b.Hash, b.Events)
		}
	}

	// The settlement export: every account's closing balance is its
	// balance in the ledger, every account holding anything has a row, and
	// its credits and debits by kind are the model's.
	if o.SettlementError != "" {
		fail("settlement export: %s", o.SettlementError)
	}
	if o.Settlement == nil {
		fail("settlement export: no report")
	} else {
		for _, k := range slices.Sorted(maps.Keys(o.Actual)) {
			if isSystemKey(k) {
				continue
			}
			row, ok := o.Settlement[k]
			switch {
			case !ok && o.Actual[k].Total != 0:
				fail("settlement: %s holds %s and has no row", k, format(o.Actual[k].Total, keyAsset(k)))
			case ok && row.Closing != o.Actual[k].Total:
				fail("settlement: %s closes at %s, the ledger holds %s", k, format(row.Closing, keyAsset(k)), format(o.Actual[k].Total, keyAsset(k)))
			}
			if ok || len(o.ExpectedCredits[k])+len(o.ExpectedDebits[k]) > 0 {
				if d := diffKinds(k, "credits", row.Credits, o.ExpectedCredits[k]); d != "" {
					fail("settlement: %s", d)
				}
				if d := diffKinds(k, "debits", row.Debits, o.ExpectedDebits[k]); d != "" {
					fail("settlement: %s", d)
				}
			}
		}
		for k := range o.Settlement {
			if _, ok := o.Actual[k]; !ok {
				fail("settlement: a row of %s, which the run did not read", k)
			}
		}
	}
	return errors.Join(errs...)
}

// diffKinds says how an export's amounts by kind differ from the model's.
func diffKinds(key, side string, got, want map[string]int64) string {
	var diffs []string
	for _, k := range keyUnion(got, want) {
		if got[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s %s, the model %s", k, format(got[k], keyAsset(key)), format(want[k], keyAsset(key))))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s by kind: %s", key, side, strings.Join(diffs, "; "))
}

// keyUnion is the sorted keys of two maps.
func keyUnion[A, B any](a map[string]A, b map[string]B) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Compare says whether two runs ended the same, to the cent: every
// balance, the FAN minted over the run, and every settlement row, by name.
// A chaos run must end exactly as a calm run of the same size does.
func (o *Outcome) Compare(other *Outcome) error {
	if other == nil {
		return errors.New("compare: no other outcome")
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Size != other.Size {
		fail("sizes differ: %+v and %+v", o.Size, other.Size)
	}
	for _, k := range keyUnion(o.Actual, other.Actual) {
		a, aok := o.Actual[k]
		b, bok := other.Actual[k]
		switch {
		case !aok || !bok:
			fail("%s: read in one run only", k)
		case a.Total != b.Total:
			fail("%s: %s in run %s, %s in run %s", k, format(a.Total, keyAsset(k)), o.Run, format(b.Total, keyAsset(k)), other.Run)
		case a.Held != b.Held:
			fail("%s: held %s in run %s, %s in run %s", k, format(a.Held, keyAsset(k)), o.Run, format(b.Held, keyAsset(k)), other.Run)
		}
	}
	if x, y := o.Supply-o.SupplyBefore, other.Supply-other.SupplyBefore; x != y {
		fail("FAN minted over the run: %s in run %s, %s in run %s", format(x, fan), o.Run, format(y, fan), other.Run)
	}
	for _, k := range keyUnion(o.Settlement, other.Settlement) {
		a, aok := o.Settlement[k]
		b, bok := other.Settlement[k]
		switch {
		case aok != bok:
			fail("settlement: %s has a row in one run only", k)
		case a.Closing != b.Closing:
			fail("settlement: %s closes at %s in run %s, %s in run %s", k, format(a.Closing, keyAsset(k)), o.Run, format(b.Closing, keyAsset(k)), other.Run)
		default:
			if d := diffKinds(k, "credits", a.Credits, b.Credits); d != "" {
				fail("settlement (run %s against run %s): %s", o.Run, other.Run, d)
			}
			if d := diffKinds(k, "debits", a.Debits, b.Debits); d != "" {
				fail("settlement (run %s against run %s): %s", o.Run, other.Run, d)
			}
		}
	}
	return errors.Join(errs...)
}

// Summary is a few lines on what the run did and how it ended.
func (o *Outcome) Summary() string {
	c := o.Counts
	var b strings.Builder
	fmt.Fprintf(&b, "run %s (%d listeners, %d artists, %d songs) in %s, %d retries\n", o.Run, o.Size.Listeners, o.Size.Artists, o.Size.Songs,
		o.Took.Round(time.Millisecond), o.Retries)
	fmt.Fprintf(&b, "  %d people, %d deposits, %d songs; %d plays (%d discovery, %d standard), FAN minted %s\n",
		c.People, c.Deposits, c.Songs, c.Plays, c.DiscoveryPlays, c.StandardPlays, format(o.ExpectedMinted, fan))
	fmt.Fprintf(&b, "  %d tips (%d thumbs-ups), %d auto-tips, %d subscriptions, %d purchases, %d campaigns with %d pledges, %d release, %d withdrawal; USD moved %s\n",
		c.Tips, c.ThumbsUps, c.AutoTips, c.Subscriptions, c.Purchases, c.Campaigns, c.Pledges, c.Releases, c.Withdrawals, format(c.USDMoved, usd))
	fmt.Fprintf(&b, "  settled %v; %d accounts; settlement rows %d; audits %d", o.Settled, len(o.Actual), len(o.Settlement), len(o.Audits))
	if n := len(o.Audits); n > 0 {
		fmt.Fprintf(&b, " (last: %d events, hash %s)", o.Audits[n-1].Events, o.Audits[n-1].Hash)
	}
	fmt.Fprintf(&b, "; %d notes, %d problems", len(o.Notes), len(o.Problems))
	return b.String()
}
