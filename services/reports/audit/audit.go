// Package audit replays the whole event log (DESIGN §8): it reads $all from
// position 0, rebuilds every ledger book by deciding each logged request
// again under the policy in force when it was logged, checks the money
// invariants, and chains a SHA-256 hash over the events so two replays of
// the same log can be compared by one line.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// Violation is one broken invariant, located in the log.
type Violation struct {
	// Rule names the invariant: "balanced", "replay", "non_negative",
	// "supply_cap", "rewarded_once", "holds", "all_or_nothing",
	// "unreadable".
	Rule string
	// Where is the stream and revision of the event (empty for end-of-log
	// checks).
	Where  string
	Detail string
}

func (v Violation) String() string {
	if v.Where == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Rule + " at " + v.Where + ": " + v.Detail
}

// BookTotals is what a replayed book holds at the end of the log.
type BookTotals struct {
	Asset string
	// Scale is the asset's number of decimals (2 for USD: units are cents).
	Scale    uint8
	Accounts []domain.AccountBalance
	Supply   domain.Supply
	// Transactions is how many committed transactions the book holds.
	Transactions int
	// Sum of all balances (0 in a sound book).
	Sum int64
	// Stream and Revision are the book's stream and its last batch
	// replayed: how far a read model must have come to be compared.
	Stream   string
	Revision uint64
}

// Result is what a replay found.
type Result struct {
	// Events is how many Fanfare events were replayed.
	Events uint64
	// Hash is the head of the hash chain over those events (hex).
	Hash string
	// Books by asset, sorted.
	Books      []BookTotals
	Violations []Violation
}

// Clean reports whether no invariant was violated.
func (r *Result) Clean() bool { return len(r.Violations) == 0 }

// Options tune a replay.
type Options struct {
	// Progress, if set, is called every ProgressEvery events and at the end
	// with the events replayed so far, the position reached in $all and
	// the position of its last event when the replay began.
	Progress      func(events, position, head uint64)
	ProgressEvery uint64
	// Batch, if set, sees every ledger batch in log order with the time it
	// was written, after the audit replayed it: how reports built from the
	// ledger (the settlement export) read the log in the same pass.
	Batch func(at time.Time, b *eventsv1.BookBatchAppended) error
}

// ErrRead wraps a failure to read the log (as opposed to a finding).
var ErrRead = errors.New("audit: could not read the event log")

// Replay reads the whole log of the event store at url (an esdb://
// connection string) and returns what it found. An error means the log
// could not be read to its end (wrapping ErrRead); violations are in the
// result.
func Replay(ctx context.Context, url string, opts Options) (*Result, error) {
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = 100_000
	}
	var head uint64
	if opts.Progress != nil {
		var err error
		if head, err = eventstore.HeadPosition(ctx, url); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRead, err)
		}
	}
	r := newReplayer()
	r.onBatch = opts.Batch
	var pos uint64
	err := eventstore.ScanAll(ctx, url, func(batch []eventstore.RawEvent) error {
		for i := range batch {
			pos = batch[i].Position
			if !strings.HasPrefix(batch[i].Type, eventstore.EventTypePrefix) {
				continue // the store's own events, snapshots
			}
			if err := r.event(&batch[i]); err != nil {
				return err
			}
			if opts.Progress != nil && r.res.Events%opts.ProgressEvery == 0 {
				opts.Progress(r.res.Events, pos, head)
			}
		}
		return nil
	})
	if errors.Is(err, errBatch) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w after %d events: %v", ErrRead, r.res.Events, err)
	}
	if opts.Progress != nil {
		opts.Progress(r.res.Events, max(pos, head), head)
	}
	return r.finish(), nil
}

type book struct {
	b      *domain.Book
	broken bool // a decision replayed differently: later checks of it mean nothing
	txs    int
	stream string
	rev    uint64
}

type replayer struct {
	res       Result
	hash      [sha256.Size]byte
	hasher    hash.Hash
	buf       []byte
	books     map[string]*book
	rewards   map[string]string // play id → where its reward was committed
	campaigns map[string]*campaignAudit
	onBatch   func(time.Time, *eventsv1.BookBatchAppended) error
}

func newReplayer() *replayer {
	return &replayer{books: map[string]*book{}, rewards: map[string]string{}, campaigns: map[string]*campaignAudit{}, hasher: sha256.New()}
}

func (r *replayer) violate(rule, where, format string, args ...any) {
	r.res.Violations = append(r.res.Violations, Violation{Rule: rule, Where: where, Detail: fmt.Sprintf(format, args...)})
}

// chain folds one stored event into the hash: its stream, revision, id,
// type, data and metadata, each length-prefixed so no two logs collide by
// shifting bytes between fields. Link i of the chain is
// SHA-256(link i-1 ‖ fields of event i).
func (r *replayer) chain(ev *eventstore.RawEvent) {
	h := r.hasher
	h.Reset()
	h.Write(r.hash[:])
	buf := r.buf[:0]
	field := func(b []byte) {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(b)))
		buf = append(buf, b...)
	}
	var rev [8]byte
	binary.BigEndian.PutUint64(rev[:], ev.Revision)
	field([]byte(ev.Stream))
	field(rev[:])
	var id [36]byte
	field(appendUUID(id[:0], ev.ID))
	field([]byte(ev.Type))
	field(ev.Data)
	field(ev.Metadata)
	h.Write(buf)
	r.buf = buf
	h.Sum(r.hash[:0])
}

// appendUUID appends the canonical text form, as uuid.UUID.String gives,
// without allocating.
func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[:], id[:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:], id[10:])
	return append(b, s[:]...)
}

func (r *replayer) event(ev *eventstore.RawEvent) error {
	r.res.Events++
	r.chain(ev)
	// Only the data: the envelope in the metadata is hashed, not needed.
	// Events the audit does not interpret are only checked to decode.
	typ, data, err := events.Upcast(ev.Type, ev.Data)
	if err == nil && !interpreted[typ] {
		err = events.Check(typ, data)
	}
	if err != nil || !interpreted[typ] {
		if err != nil {
			r.violate("unreadable", where(ev), "%v", err)
		}
		return nil
	}
	msg, err := events.Decode(typ, data)
	if err != nil {
		r.violate("unreadable", where(ev), "%v", err)
		return nil
	}
	if typ != bookBatchType {
		r.campaign(where(ev), msg)
		return nil
	}
	b := msg.(*eventsv1.BookBatchAppended)
	r.batch(where(ev), b)
	if bk := r.books[b.Asset]; bk != nil {
		bk.stream, bk.rev = ev.Stream, ev.Revision
	}
	if r.onBatch == nil {
		return nil
	}
	env, err := events.UnmarshalEnvelope(ev.Metadata)
	if err != nil {
		r.violate("unreadable", where(ev), "envelope: %v", err)
		return nil
	}
	if err := r.onBatch(env.OccurredAt, b); err != nil {
		return fmt.Errorf("%w at %s: %w", errBatch, where(ev), err)
	}
	return nil
}

// errBatch marks an error of Options.Batch (not a read error).
var errBatch = errors.New("audit: batch handler")

var bookBatchType = must(events.TypeName(&eventsv1.BookBatchAppended{}))

// interpreted are the event types the audit decodes: the ledger's batches
// and the crowdfund events its all-or-nothing check follows.
var interpreted = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []proto.Message{&eventsv1.BookBatchAppended{}, &eventsv1.PledgePlaced{}, &eventsv1.PledgeCancelled{},
		&eventsv1.CampaignSucceeded{}, &eventsv1.CampaignFailed{}} {
		m[must(events.TypeName(e))] = true
	}
	return m
}()

// campaignAudit is what the log says of one crowdfund.
type campaignAudit struct {
	asset   string
	holds   map[string]string // pledge id → hold id, cancelled pledges removed
	outcome string            // "succeeded" or "failed" once settled
	where   string
}

func (r *replayer) campaignOf(id string) *campaignAudit {
	c := r.campaigns[id]
	if c == nil {
		c = &campaignAudit{holds: map[string]string{}}
		r.campaigns[id] = c
	}
	return c
}

func (r *replayer) campaign(where string, msg proto.Message) {
	switch e := msg.(type) {
	case *eventsv1.PledgePlaced:
		c := r.campaignOf(e.CampaignId)
		c.holds[e.PledgeId] = e.HoldId
		c.asset = e.GetAmount().GetAsset()
	case *eventsv1.PledgeCancelled:
		delete(r.campaignOf(e.CampaignId).holds, e.PledgeId)
	case *eventsv1.CampaignSucceeded:
		c := r.campaignOf(e.CampaignId)
		c.outcome, c.where = "succeeded", where
	case *eventsv1.CampaignFailed:
		c := r.campaignOf(e.CampaignId)
		c.outcome, c.where = "failed", where
	}
}

// checkCampaigns: a campaign that succeeded has every active pledge's hold
// captured; one that failed has none captured and none left open.
func (r *replayer) checkCampaigns() {
	ids := make([]string, 0, len(r.campaigns))
	for id := range r.campaigns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := r.campaigns[id]
		if c.outcome == "" || len(c.holds) == 0 {
			continue
		}
		bk := r.books[c.asset]
		if bk == nil || bk.b == nil || bk.broken {
			r.violate("all_or_nothing", c.where, "campaign %s %s, and its %s book cannot be checked", id, c.outcome, c.asset)
			continue
		}
		pledges := make([]string, 0, len(c.holds))
		for p := range c.holds {
			pledges = append(pledges, p)
		}
		slices.Sort(pledges)
		var captured []string
		for _, p := range pledges {
			h, err := bk.b.Hold(c.holds[p])
			switch {
			case err == nil && h.Status == domain.HoldCaptured:
				captured = append(captured, p)
			case err == nil && h.Status == domain.HoldVoided && c.outcome == "failed":
				// released, as a failed campaign's pledges must be
			default:
				state := "never placed"
				if err == nil {
					state = h.Status.String()
				}
				r.violate("all_or_nothing", c.where, "campaign %s %s, and pledge %s (hold %s) is %s", id, c.outcome, p, c.holds[p], state)
			}
		}
		if c.outcome == "failed" && len(captured) > 0 {
			r.violate("all_or_nothing", c.where, "campaign %s failed, and %d pledge(s) were captured: %v", id, len(captured), captured)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func where(ev *eventstore.RawEvent) string { return fmt.Sprintf("%s@%d", ev.Stream, ev.Revision) }

// batch replays one batch of a book: each entry's shape is checked, then
// the book decides it again and must come to the logged outcome.
func (r *replayer) batch(where string, b *eventsv1.BookBatchAppended) {
	bk := r.books[b.Asset]
	if bk == nil {
		p := domain.DefaultPolicy()
		if len(b.Entries) > 0 && b.Entries[0].GetPolicy() != nil {
			pe := b.Entries[0].GetPolicy()
			var err error
			if p, err = adapters.PolicyFromEvent(pe); err != nil {
				r.violate("replay", where, "book %s starts under an unreadable policy: %v", b.Asset, err)
				r.books[b.Asset] = &book{broken: true}
				return
			}
		}
		nb, err := domain.NewBook(b.Asset, p)
		if err != nil {
			r.violate("replay", where, "book %s: %v", b.Asset, err)
			r.books[b.Asset] = &book{broken: true}
			return
		}
		bk = &book{b: nb}
		r.books[b.Asset] = bk
	}
	committed := 0
	for i, e := range b.Entries {
		d := e.GetDecision()
		if d == nil || d.GetCommitted() == nil {
			continue
		}
		committed++
		r.checkCommitted(fmt.Sprintf("%s entry %d", where, i), b.Asset, d)
	}
	if bk.broken {
		return
	}
	if err := adapters.Replay(bk.b, b); err != nil {
		r.violate("replay", where, "%v", err)
		bk.broken = true
		return
	}
	bk.txs += committed
}

// checkCommitted checks the shape of a committed transaction: every
// posting of the book's asset, positive, between two accounts (that what
// it moved is what deciding it again moves is adapters.Replay's check). A
// royalty reward (requested by the royalty saga, id = play id) commits once
// per play.
func (r *replayer) checkCommitted(where, asset string, d *eventsv1.BookBatchAppended_Decision) {
	req := d.GetRequest()
	for j, p := range req.GetPostings() {
		switch {
		case p.Amount <= 0:
			r.violate("balanced", where, "transaction %s posting %d moves %d (must be > 0)", req.TransactionId, j, p.Amount)
		case p.Asset != asset:
			r.violate("balanced", where, "transaction %s posting %d is in %s, in the %s book", req.TransactionId, j, p.Asset, asset)
		case p.Debit == p.Credit || p.Debit == "" || p.Credit == "":
			r.violate("balanced", where, "transaction %s posting %d moves %s to %s", req.TransactionId, j, p.Debit, p.Credit)
		}
	}
	if req.GetRequestedBy() == "royalty" {
		if first, dup := r.rewards[req.TransactionId]; dup {
			r.violate("rewarded_once", where, "play %s was rewarded before, at %s", req.TransactionId, first)
		} else {
			r.rewards[req.TransactionId] = where
		}
	}
}

func (r *replayer) finish() *Result {
	r.res.Hash = hex.EncodeToString(r.hash[:])
	r.checkCampaigns()
	assets := make([]string, 0, len(r.books))
	for a := range r.books {
		assets = append(assets, a)
	}
	slices.Sort(assets)
	for _, a := range assets {
		bk := r.books[a]
		if bk.broken || bk.b == nil {
			continue
		}
		t := BookTotals{Asset: a, Scale: bk.b.Asset().Scale, Accounts: bk.b.Accounts(), Supply: bk.b.Supply(), Transactions: bk.txs, Stream: bk.stream, Revision: bk.rev}
		for _, acc := range t.Accounts {
			t.Sum += acc.Total
			if acc.Kind == domain.AccountWallet && acc.Total < 0 {
				r.violate("non_negative", "", "%s holds %d", acc.ID, acc.Total)
			}
			if acc.Held != 0 {
				holds, _ := bk.b.OpenHolds(acc.ID)
				var open int64
				for _, h := range holds {
					open += h.Amount
				}
				if open != acc.Held {
					r.violate("holds", "", "%s has %d on hold but its open holds add up to %d", acc.ID, acc.Held, open)
				}
			}
		}
		if t.Sum != 0 {
			r.violate("balanced", "", "the %s book sums to %d, not 0", a, t.Sum)
		}
		if s := t.Supply; s.Cap > 0 && s.Circulating > s.Cap {
			r.violate("supply_cap", "", "%s supply %d is over the cap %d", a, s.Circulating, s.Cap)
		}
		r.res.Books = append(r.res.Books, t)
	}
	return &r.res
}
