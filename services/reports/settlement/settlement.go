// Package settlement builds the settlement report of DESIGN §8: for a
// period and a set of payees, per payee account and asset, the opening
// balance, the credits and debits by kind, and the closing balance. It is
// built from the ledger's committed postings and reconciled with the
// ledger's balances (the books as the audit replays them): a report that
// does not reconcile to the cent is an error, never a file.
package settlement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/reports/audit"
	reports "github.com/fanfare/fanfare/services/reports/domain"
)

// Kinds are the posting kinds a row splits its credits and debits by, in
// column order (PostingKind 1…12).
var Kinds = func() []eventsv1.PostingKind {
	var ks []eventsv1.PostingKind
	for k := eventsv1.PostingKind(1); ; k++ {
		if _, ok := eventsv1.PostingKind_name[int32(k)]; !ok {
			return ks
		}
		ks = append(ks, k)
	}
}()

// numKinds bounds the per-kind arrays; index = PostingKind number.
const numKinds = 16

func init() {
	if len(Kinds) >= numKinds {
		panic("settlement: more posting kinds than numKinds")
	}
}

// KindName is the column name of a kind: "royalty", "referral_fee".
var KindName = reports.KindName

// ErrInvalid marks bad options (a bad date, an empty payee).
var ErrInvalid = errors.New("settlement: invalid request")

// ErrUnreconciled is returned when the postings do not add up to the
// ledger's balances.
var ErrUnreconciled = errors.New("settlement: the report does not reconcile with the ledger")

// Options choose the period and the payees.
type Options struct {
	// From and To are days (UTC), both included.
	From, To time.Time
	// Payees are identities (a wallet's owner, an escrow's ref); empty
	// means every payee.
	Payees []string
}

// ParseDay parses a YYYY-MM-DD day (UTC).
func ParseDay(s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a day (YYYY-MM-DD)", ErrInvalid, s)
	}
	return d, nil
}

// Row is one payee account in one asset.
type Row struct {
	// Payee is the identity the account belongs to (an escrow's ref).
	Payee   string
	Account string
	Asset   string
	Scale   uint8
	Opening int64
	// Credits and Debits by PostingKind number (see Kinds), ≥ 0.
	Credits [numKinds]int64
	Debits  [numKinds]int64
	Closing int64
	// after is what moved after the period: closing + after is the
	// account's balance at the end of the log.
	after int64
}

// TotalCredits is the sum of the row's credits.
func (r *Row) TotalCredits() int64 { return sum(r.Credits[:]) }

// TotalDebits is the sum of the row's debits.
func (r *Row) TotalDebits() int64 { return sum(r.Debits[:]) }

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// Totals sum the rows of one asset.
type Totals struct {
	Asset   string
	Scale   uint8
	Payees  int
	Opening int64
	Credits [numKinds]int64
	Debits  [numKinds]int64
	Closing int64
}

// Report is a reconciled settlement report.
type Report struct {
	From, To time.Time
	// Rows sorted by payee, asset, account.
	Rows []*Row
	// Totals by asset, sorted.
	Totals []Totals
	// Events and Hash identify the log the report was built from (the
	// audit's hash chain head).
	Events uint64
	Hash   string
}

// Builder collects postings as the log is read.
type Builder struct {
	from, end time.Time
	to        time.Time
	payees    map[string]bool
	// rows by account id; nil for an account the report leaves out.
	rows map[string]*Row
}

// New starts a report.
func New(opts Options) (*Builder, error) {
	if opts.From.IsZero() || opts.To.IsZero() {
		return nil, fmt.Errorf("%w: the period needs a first and a last day", ErrInvalid)
	}
	if opts.To.Before(opts.From) {
		return nil, fmt.Errorf("%w: the period ends (%s) before it starts (%s)", ErrInvalid, opts.To.Format(time.DateOnly), opts.From.Format(time.DateOnly))
	}
	b := &Builder{from: day(opts.From), to: day(opts.To), end: day(opts.To).AddDate(0, 0, 1), rows: map[string]*Row{}}
	if len(opts.Payees) > 0 {
		b.payees = map[string]bool{}
		for _, p := range opts.Payees {
			if strings.TrimSpace(p) == "" {
				return nil, fmt.Errorf("%w: an empty payee", ErrInvalid)
			}
			b.payees[p] = true
		}
	}
	return b, nil
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Batch takes one ledger batch, written at at. Batches must come in log
// order, each once (audit.Options.Batch gives them so).
func (b *Builder) Batch(at time.Time, batch *eventsv1.BookBatchAppended) error {
	var err error
	ledgerview.Moved(batch, func(p *eventsv1.Posting, k eventsv1.PostingKind, c *eventsv1.LedgerTransactionCommitted) {
		if err != nil {
			return
		}
		if k <= 0 || int(k) >= numKinds {
			err = fmt.Errorf("transaction %s moves money of kind %d, which the report has no column for", c.TransactionId, k)
			return
		}
		b.move(p.Debit, batch.Asset, at, k, -p.Amount)
		b.move(p.Credit, batch.Asset, at, k, p.Amount)
	})
	return err
}

func (b *Builder) move(account, asset string, at time.Time, k eventsv1.PostingKind, amount int64) {
	r, seen := b.rows[account]
	if !seen {
		r = b.row(account, asset)
		b.rows[account] = r
	}
	if r == nil {
		return
	}
	switch {
	case at.Before(b.from):
		r.Opening += amount
	case at.Before(b.end):
		if amount > 0 {
			r.Credits[k] += amount
		} else {
			r.Debits[k] -= amount
		}
	default:
		r.after += amount
	}
}

// row is the row of a payee account, or nil for system accounts and
// payees the report leaves out.
func (b *Builder) row(account, asset string) *Row {
	payee, ok := b.payee(account)
	if !ok {
		return nil
	}
	return &Row{Payee: payee, Account: account, Asset: asset}
}

// payee is the identity a user account belongs to, if the report covers it.
func (b *Builder) payee(account string) (string, bool) {
	id, err := domain.ParseAccountID(account)
	if err != nil || !id.User() || (b.payees != nil && !b.payees[id.Owner]) {
		return "", false
	}
	return id.Owner, true
}

// Finish closes every row and reconciles the report with the ledger's
// books (audit.Result.Books): every account's closing balance plus what
// moved after the period must be its balance in the book, and every payee
// account the book holds must be in the report. A difference is
// ErrUnreconciled, listing the first ones.
func (b *Builder) Finish(books []audit.BookTotals, events uint64, hash string) (*Report, error) {
	rep := &Report{From: b.from, To: b.to, Events: events, Hash: hash}
	var diffs []string
	diff := func(format string, args ...any) {
		diffs = append(diffs, fmt.Sprintf(format, args...))
	}
	ledger := map[string]int64{}
	scale := map[string]uint8{}
	for _, bk := range books {
		scale[bk.Asset] = bk.Scale
		for _, a := range bk.Accounts {
			if _, ok := b.payee(a.ID); ok {
				ledger[a.ID] = a.Total
				if _, ok := b.rows[a.ID]; !ok && a.Total != 0 {
					diff("%s holds %d in the ledger, and no posting moved it", a.ID, a.Total)
				}
			}
		}
	}
	totals := map[string]*Totals{}
	for acc, r := range b.rows {
		if r == nil {
			continue
		}
		r.Closing = r.Opening + r.TotalCredits() - r.TotalDebits()
		sc, ok := scale[r.Asset]
		if !ok {
			diff("%s: the ledger has no %s book", acc, r.Asset)
			continue
		}
		r.Scale = sc
		if bal, ok := ledger[acc]; !ok {
			diff("%s: the ledger has no such account", acc)
		} else if r.Closing+r.after != bal {
			diff("%s: closing %d and %d moved since add up to %d, the ledger holds %d", acc, r.Closing, r.after, r.Closing+r.after, bal)
		}
		if r.Opening == 0 && r.Closing == 0 && r.TotalCredits() == 0 && r.TotalDebits() == 0 {
			continue // nothing in the period
		}
		rep.Rows = append(rep.Rows, r)
		t := totals[r.Asset]
		if t == nil {
			t = &Totals{Asset: r.Asset, Scale: sc}
			totals[r.Asset] = t
		}
		t.Payees++
		t.Opening += r.Opening
		t.Closing += r.Closing
		for k := range r.Credits {
			t.Credits[k] += r.Credits[k]
			t.Debits[k] += r.Debits[k]
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		shown := diffs[:min(len(diffs), 20)]
		return nil, fmt.Errorf("%w: %d difference(s):\n  %s", ErrUnreconciled, len(diffs), strings.Join(shown, "\n  "))
	}
	slices.SortFunc(rep.Rows, func(x, y *Row) int {
		if c := strings.Compare(x.Payee, y.Payee); c != 0 {
			return c
		}
		if c := strings.Compare(x.Asset, y.Asset); c != 0 {
			return c
		}
		return strings.Compare(x.Account, y.Account)
	})
	for _, t := range totals {
		rep.Totals = append(rep.Totals, *t)
	}
	slices.SortFunc(rep.Totals, func(x, y Totals) int { return strings.Compare(x.Asset, y.Asset) })
	return rep, nil
}

// ErrLogUnsound is returned when the log breaks an audit invariant: a
// report built from it would settle money the ledger never moved soundly.
var ErrLogUnsound = errors.New("settlement: the event log breaks an invariant")

// Export builds the report from the event store at url in one read of
// the log (the audit replay, which rebuilds the books the report is
// reconciled with). progress is audit.Options.Progress. Errors: ErrInvalid,
// audit.ErrRead, ErrLogUnsound, ErrUnreconciled.
func Export(ctx context.Context, url string, opts Options, progress func(events, position, head uint64)) (*Report, error) {
	b, err := New(opts)
	if err != nil {
		return nil, err
	}
	res, err := audit.Replay(ctx, url, audit.Options{ProgressEvery: 100_000, Progress: progress, Batch: b.Batch})
	if err != nil {
		return nil, err
	}
	if !res.Clean() {
		return nil, fmt.Errorf("%w: %d violation(s), first: %s (`fanfare audit replay` lists them all)", ErrLogUnsound, len(res.Violations), res.Violations[0])
	}
	return b.Finish(res.Books, res.Events, res.Hash)
}
