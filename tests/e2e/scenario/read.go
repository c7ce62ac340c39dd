package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	ledger "github.com/fanfare/fanfare/services/accounts/domain"
)

// accountRef is an account of the model as the ledger names it, and who
// reads it: a wallet its owner, escrows and system accounts the auditor.
type accountRef struct {
	Key, ID, Asset string
	Reader         *person
	System         bool
}

// refOf resolves an account key.
func (d *driver) refOf(key string) (accountRef, error) {
	asset := keyAsset(key)
	aud := d.who(auditorName)
	parts := strings.Split(key, "/")
	switch {
	case isSystemKey(key):
		return accountRef{Key: key, ID: parts[1], Asset: asset, Reader: aud, System: true}, nil
	case len(parts) == 3 && parts[1] == "discovery":
		return accountRef{Key: key, ID: ledger.EscrowID("discovery", d.who(parts[0]).ID, asset), Asset: asset, Reader: aud}, nil
	case len(parts) == 2 && d.people[parts[0]] != nil:
		p := d.who(parts[0])
		return accountRef{Key: key, ID: ledger.WalletID(p.ID, asset), Asset: asset, Reader: p}, nil
	case len(parts) == 2:
		d.mu.Lock()
		id, ok := d.campaigns[parts[0]]
		d.mu.Unlock()
		if ok {
			return accountRef{Key: key, ID: ledger.EscrowID("campaign", id, asset), Asset: asset, Reader: aud}, nil
		}
	}
	return accountRef{}, fmt.Errorf("scenario: no account for %q", key)
}

// keyOf names a ledger account id, or "" when it is none of the run's.
func (d *driver) keyOf(id string) string {
	parts := strings.Split(id, ":")
	switch {
	case len(parts) == 3 && parts[0] == "wallet" && d.names[parts[1]] != "":
		return walletKey(d.names[parts[1]], parts[2])
	case len(parts) == 4 && parts[0] == "escrow" && parts[1] == "discovery" && d.names[parts[2]] != "":
		return discoveryKey(d.names[parts[2]])
	case len(parts) == 4 && parts[0] == "escrow" && parts[1] == "campaign":
		d.mu.Lock()
		defer d.mu.Unlock()
		for name, cid := range d.campaigns {
			if cid == parts[2] {
				return name + "/" + parts[3]
			}
		}
	}
	return ""
}

// balance reads one account; an account the ledger does not have (never
// opened) reads as missing, zero.
func (d *driver) balance(ctx context.Context, reader *person, id, asset string) (Balance, error) {
	req := &accountsv1.GetBalanceRequest{AccountId: id}
	if !strings.Contains(id, ":") || strings.HasPrefix(id, "external:") {
		req.Asset = asset
	}
	res, err := call(ctx, d, "balance of "+id, reader.accounts.GetBalance, req)
	if connect.CodeOf(err) == connect.CodeNotFound {
		return Balance{Missing: true}, nil
	}
	if err != nil {
		return Balance{}, err
	}
	var b Balance
	if b.Total, err = parse(res.Total, asset); err == nil {
		if b.Held, err = parse(res.Held, asset); err == nil {
			b.Available, err = parse(res.Available, asset)
		}
	}
	if err != nil {
		return Balance{}, fmt.Errorf("balance of %s: %w", id, err)
	}
	return b, nil
}

// systemKeys are the system accounts the scenario moves money through.
var systemKeys = []string{promotionsKey, bankKey, mintKey, burnKey}

// readBaseline reads the system accounts before the run moved anything
// but the welcome credits of the people registered so far (which it adds
// back), so their changes over the run can be compared.
func (d *driver) readBaseline(ctx context.Context, welcome int64) error {
	for _, key := range systemKeys {
		ref, err := d.refOf(key)
		if err != nil {
			return err
		}
		b, err := d.balance(ctx, ref.Reader, ref.ID, ref.Asset)
		if err != nil {
			return err
		}
		d.baseline[key] = b.Total
	}
	d.baseline[promotionsKey] += welcome * int64(len(d.people))
	return nil
}

// readAll reads every account of the model (system accounts as their
// change since the baseline) and the FAN supply (minted − burned).
func (d *driver) readAll(ctx context.Context) (map[string]Balance, int64, error) {
	keys := slices.Sorted(maps.Keys(d.model.Balance))
	out := make(map[string]Balance, len(keys))
	var mu sync.Mutex
	err := parallel(ctx, 2*callWorkers, len(keys), func(ctx context.Context, i int) error {
		ref, err := d.refOf(keys[i])
		if err != nil {
			return err
		}
		b, err := d.balance(ctx, ref.Reader, ref.ID, ref.Asset)
		if err != nil {
			return err
		}
		mu.Lock()
		out[keys[i]] = b
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	supply := -out[mintKey].Total - out[burnKey].Total
	for _, key := range systemKeys {
		b := out[key]
		b.Total -= d.baseline[key]
		b.Available -= d.baseline[key]
		out[key] = b
	}
	return out, supply, nil
}

// settle waits until every account holds what the model says (the sagas
// and consumers run behind the calls) and records what the ledger holds.
// Accounts that never agree are left for Check to report.
func (d *driver) settle(ctx context.Context, out *Outcome) error {
	var last []string
	err := d.eventually(ctx, "the ledger to hold what the model expects", func(ctx context.Context) (bool, string, error) {
		actual, supply, err := d.readAll(ctx)
		if err != nil {
			return false, "", err
		}
		out.Actual, out.Supply = actual, supply
		last = last[:0]
		for _, key := range slices.Sorted(maps.Keys(out.Expected)) {
			if a := actual[key]; a.Total != out.Expected[key] || a.Held != 0 {
				last = append(last, fmt.Sprintf("%s holds %s (held %s), expected %s", key, format(a.Total, keyAsset(key)),
					format(a.Held, keyAsset(key)), format(out.Expected[key], keyAsset(key))))
			}
		}
		return len(last) == 0, fmt.Sprintf("%d accounts differ, e.g. %s", len(last), strings.Join(last[:min(len(last), 5)], "; ")), nil
	})
	if err == nil {
		out.Settled = true
		return nil
	}
	if ctx.Err() != nil || out.Actual == nil {
		return err
	}
	d.problem("%v", err)
	return nil
}

// dashboards waits until every artist's dashboard (the reports service's
// projection, which reads the rewards and the ledger from two topics) shows
// each song's plays by tier as the model counts them, and records what they
// show; songs that never agree are left for Check to report.
func (d *driver) dashboards(ctx context.Context, out *Outcome) error {
	names := map[string]string{} // song id → name
	for j, s := range d.plan.Songs {
		names[d.songIDs[j]] = s.Name
	}
	err := d.eventually(ctx, "the dashboards to show the model's plays", func(ctx context.Context) (bool, string, error) {
		shown := map[string][2]uint64{}
		for _, a := range d.plan.Artists {
			p := d.who(a)
			res, err := call(ctx, d, "dashboard of "+a, p.reports.GetArtistDashboard, &reportsv1.GetArtistDashboardRequest{ArtistId: p.ID})
			if err != nil {
				return false, "", err
			}
			for _, s := range res.GetDashboard().GetSongs() {
				name, ok := names[s.SongId]
				if !ok {
					name = "unknown song " + s.SongId
				}
				shown[name] = [2]uint64{s.DiscoveryPlays, s.StandardPlays}
			}
		}
		out.Dashboards = shown
		var last []string
		for _, k := range keyUnion(out.ExpectedPlays, shown) {
			if got, want := shown[k], out.ExpectedPlays[k]; got != want {
				last = append(last, fmt.Sprintf("%s shows %d discovery + %d standard plays, expected %d + %d", k, got[0], got[1], want[0], want[1]))
			}
		}
		return len(last) == 0, fmt.Sprintf("%d songs differ, e.g. %s", len(last), strings.Join(last[:min(len(last), 5)], "; ")), nil
	})
	if err == nil || ctx.Err() != nil || out.Dashboards == nil {
		return err
	}
	d.problem("%v", err)
	return nil
}

// statements reads every account's statement of the run (all pages) and
// records how many entries it has, their sum and the newest running
// balance; Check wants both to be the balance. The statement is the
// ledger's own projection, so a read that disagrees is retried a while.
func (d *driver) statements(ctx context.Context, out *Outcome) error {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(out.Actual)) {
		if !isSystemKey(k) {
			keys = append(keys, k)
		}
	}
	var mu sync.Mutex
	out.Statements = map[string]Statement{}
	return parallel(ctx, 2*callWorkers, len(keys), func(ctx context.Context, i int) error {
		key := keys[i]
		ref, err := d.refOf(key)
		if err != nil {
			return err
		}
		var st Statement
		err = d.eventuallyWithin(ctx, "the statement of "+key, time.Minute, func(ctx context.Context) (bool, string, error) {
			st = Statement{}
			req := &accountsv1.ListStatementRequest{AccountId: ref.ID, PageSize: 500}
			for first := true; first || req.PageToken != ""; first = false {
				res, err := call(ctx, d, "statement of "+ref.ID, ref.Reader.accounts.ListStatement, req)
				if connect.CodeOf(err) == connect.CodeNotFound {
					return true, "", nil // never opened: nothing to list
				}
				if err != nil {
					return false, "", err
				}
				for j, e := range res.Entries {
					v, err := parse(e.Amount, ref.Asset)
					if err != nil {
						return false, "", fmt.Errorf("statement of %s: %w", key, err)
					}
					if first && j == 0 {
						if st.Newest, err = parse(e.Balance, ref.Asset); err != nil {
							return false, "", fmt.Errorf("statement of %s: %w", key, err)
						}
					}
					st.Entries++
					st.Sum += v
				}
				req = &accountsv1.ListStatementRequest{AccountId: ref.ID, PageSize: 500, PageToken: res.NextPageToken}
			}
			total := out.Actual[key].Total
			return st.Sum == total && st.Newest == total, fmt.Sprintf("%d entries summing to %s, newest balance %s, the balance %s",
				st.Entries, format(st.Sum, ref.Asset), format(st.Newest, ref.Asset), format(total, ref.Asset)), nil
		})
		if err != nil && ctx.Err() != nil {
			return err
		}
		mu.Lock()
		out.Statements[key] = st
		mu.Unlock()
		return nil
	})
}

// audits runs the audit replay as the auditor until it is clean (the
// reports projection follows the ledger through Kafka, so differences
// right after the run are its lag) and two replays in a row agree on the
// hash chain's head. What it saw last is recorded either way.
func (d *driver) audits(ctx context.Context, out *Outcome) error {
	aud := d.who(auditorName)
	run := func(ctx context.Context) (Audit, error) {
		res, err := call(ctx, d, "audit replay", aud.reports.RunAudit, &reportsv1.RunAuditRequest{})
		if err != nil {
			return Audit{}, err
		}
		a := Audit{Events: res.Events, Hash: res.Hash, Clean: res.Clean, Violations: res.Violations, Differences: res.Differences,
			Supply: map[string]int64{}}
		for _, b := range res.Books {
			if v, err := parse(b.GetSupply().GetValue(), b.Asset); err == nil {
				a.Supply[b.Asset] = v
			}
		}
		return a, nil
	}
	clean := func(a Audit) bool { return a.Clean && len(a.Violations) == 0 && len(a.Differences) == 0 }
	err := d.eventuallyWithin(ctx, "two clean audits with the same hash", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		first, err := run(ctx)
		if err != nil {
			return false, "", err
		}
		out.Audits = []Audit{first}
		if !clean(first) {
			return false, fmt.Sprintf("%d violations, %d differences (first: %v %v)", len(first.Violations), len(first.Differences),
				first.Violations[:min(1, len(first.Violations))], first.Differences[:min(1, len(first.Differences))]), nil
		}
		second, err := run(ctx)
		if err != nil {
			return false, "", err
		}
		out.Audits = append(out.Audits, second)
		return clean(second) && second.Hash == first.Hash, fmt.Sprintf("hashes %s (%d events) and %s (%d events)",
			first.Hash, first.Events, second.Hash, second.Events), nil
	})
	if err != nil && ctx.Err() == nil && len(out.Audits) > 0 {
		d.problem("%v", err)
		return nil
	}
	return err
}

// export streams the settlement report (JSON) as finance for every payee
// of the run, over a period that holds the whole run, and records each
// row by account name.
func (d *driver) export(ctx context.Context, out *Outcome) error {
	fin := d.who(financeName)
	payees := slices.Sorted(maps.Keys(d.names))
	d.mu.Lock()
	for _, id := range d.campaigns {
		payees = append(payees, id)
	}
	d.mu.Unlock()
	to := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	req := &reportsv1.ExportSettlementRequest{From: "2000-01-01", To: to, Payees: payees, Format: "json"}
	var file bytes.Buffer
	err := d.retry(ctx, "settlement export", func(ctx context.Context) error {
		file.Reset()
		stream, err := fin.reports.ExportSettlement(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		defer stream.Close()
		for stream.Receive() {
			file.Write(stream.Msg().Chunk)
		}
		return stream.Err()
	})
	if err != nil {
		if ctx.Err() != nil || transient(err, callOptions{}) {
			return err
		}
		out.SettlementError = err.Error()
		d.problem("settlement export: %v", err)
		return nil
	}
	var doc struct {
		Hash string `json:"log_hash"`
		Rows []struct {
			Account string            `json:"account"`
			Asset   string            `json:"asset"`
			Opening string            `json:"opening"`
			Credits map[string]string `json:"credits"`
			Debits  map[string]string `json:"debits"`
			Closing string            `json:"closing"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(file.Bytes(), &doc); err != nil {
		return fmt.Errorf("settlement export: not the JSON report (%d bytes): %w", file.Len(), err)
	}
	out.SettlementHash = doc.Hash
	out.Settlement = map[string]SettlementRow{}
	for _, r := range doc.Rows {
		key := d.keyOf(r.Account)
		if key == "" {
			out.SettlementError = fmt.Sprintf("the export has a row of %s, which is none of the run's accounts", r.Account)
			continue
		}
		row := SettlementRow{Credits: map[string]int64{}, Debits: map[string]int64{}}
		var err error
		if row.Closing, err = parse(r.Closing, r.Asset); err != nil {
			return fmt.Errorf("settlement export: %s: %w", r.Account, err)
		}
		for kind, v := range r.Credits {
			if row.Credits[kind], err = parse(v, r.Asset); err != nil {
				return fmt.Errorf("settlement export: %s: %w", r.Account, err)
			}
		}
		for kind, v := range r.Debits {
			if row.Debits[kind], err = parse(v, r.Asset); err != nil {
				return fmt.Errorf("settlement export: %s: %w", r.Account, err)
			}
		}
		out.Settlement[key] = row
	}
	return nil
}
