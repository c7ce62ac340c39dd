package domain_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fanfare/fanfare/services/accounts/domain"
)

// The invariant harness, modelled on Blnk's: random sequences of every
// operation over 50 accounts (25 per book, USD and FAN), with every invariant
// checked after every step and an independent model as the oracle.

// source yields the harness's choices: a seeded generator, or fuzz bytes.
type source interface {
	intn(n int) int
	exhausted() bool
}

type randSource struct{ r *rand.Rand }

func (s randSource) intn(n int) int  { return s.r.IntN(n) }
func (s randSource) exhausted() bool { return false }

type byteSource struct {
	data []byte
	pos  int
}

func (s *byteSource) intn(n int) int {
	if n <= 1 {
		return 0
	}
	var v int
	for k := 0; k < 2 && (k == 0 || n > 256); k++ {
		var c byte
		if s.pos < len(s.data) {
			c = s.data[s.pos]
			s.pos++
		}
		v = v<<8 | int(c)
	}
	return v % n
}

func (s *byteSource) exhausted() bool { return s.pos >= len(s.data) }

type opKind uint8

const (
	opApply opKind = iota
	opOpen
	opExpire
	opPolicy
)

// logged is one state-changing call, kept to replay the book from scratch.
type logged struct {
	kind    opKind
	req     domain.Request
	account string
	now     time.Time
	policy  domain.Policy
}

type bookState struct {
	asset    string
	book     *domain.Book
	model    *model
	initial  domain.Policy
	accounts []string // 25 ids: opened, unopened, system, foreign, malformed
	good     []string // opened user accounts and this book's usable system accounts
	users    []string // opened user accounts
	holdIDs  []string
	reqs     []domain.Request              // every request applied, for replays and conflicts
	firstFP  map[string]domain.Fingerprint // fingerprint of the request each remembered id was decided with
	log      []logged
}

type harness struct {
	t     testing.TB
	src   source
	books []*bookState
	now   time.Time
	n     int
	stats map[string]int
}

func accountSet(asset, other string) (opened, all []string) {
	for i := range 14 {
		opened = append(opened, domain.WalletID(fmt.Sprintf("u%02d", i), asset))
	}
	opened = append(opened, domain.EscrowID("discovery", "artist-1", asset), domain.EscrowID("campaign", "c-1", asset))
	all = append(all, opened...)
	all = append(all,
		domain.EscrowID("campaign", "c-unopened", asset),
		domain.WalletID("late-1", asset), domain.WalletID("late-2", asset), // opened later, maybe
		domain.ExternalID("bank"), domain.Promotions, domain.Mint, domain.Burn,
		domain.WalletID("u00", other), // another book's account
		"wallet:malformed",
	)
	return opened, all
}

func newHarness(t testing.TB, src source) *harness {
	h := &harness{t: t, src: src, now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), stats: map[string]int{}}
	for _, asset := range []string{"USD", "FAN"} {
		p := domain.DefaultPolicy()
		other := "FAN"
		if asset == "FAN" {
			other = "USD"
			p.SupplyCaps = map[string]int64{"FAN": 5_000_000} // small, so the cap is hit
		}
		b, err := domain.NewBook(asset, p)
		if err != nil {
			t.Fatal(err)
		}
		bs := &bookState{asset: asset, book: b, model: newModel(asset, p), initial: p, firstFP: map[string]domain.Fingerprint{}}
		opened, all := accountSet(asset, other)
		bs.accounts = all
		bs.users = opened
		bs.good = append(slices.Clone(opened), domain.ExternalID("bank"), domain.Promotions)
		if asset == "FAN" {
			bs.good = append(opened, domain.Mint, domain.Burn)
		}
		for _, id := range opened {
			h.open(bs, id)
		}
		h.books = append(h.books, bs)
	}
	return h
}

func (h *harness) pick(list []string) string { return list[h.src.intn(len(list))] }

// account picks a usable account most of the time and any of the 25 else.
func (h *harness) account(bs *bookState) string {
	if h.src.intn(8) == 0 {
		return h.pick(bs.accounts)
	}
	return h.pick(bs.good)
}

func (h *harness) open(bs *bookState, id string) {
	before := bs.book.LedgerSnapshot()
	_, err := bs.book.Open(id)
	bs.log = append(bs.log, logged{kind: opOpen, account: id})
	if err == nil {
		bs.model.open(id)
	} else if !bytes.Equal(before, bs.book.LedgerSnapshot()) {
		h.t.Fatalf("failed Open(%s) changed the book", id)
	}
}

func (h *harness) amount(bs *bookState) int64 {
	switch h.src.intn(40) {
	case 0:
		return 0
	case 1:
		return -int64(h.src.intn(100))
	case 2:
		return math.MaxInt64
	case 6, 7:
		// Exactly the room left under the supply cap, or one more.
		if sp := bs.book.Supply(); sp.Cap > sp.Circulating {
			return sp.Cap - sp.Circulating + int64(h.src.intn(2))
		}
	case 3, 4, 5:
		// Exactly what some account has available, or one more.
		id := h.pick(bs.users)
		if b, err := bs.book.Balance(id); err == nil && b.Available > 0 {
			return b.Available + int64(h.src.intn(2))
		}
	}
	return 1 + int64(h.src.intn(30_000))
}

func (h *harness) holdRef(bs *bookState) string {
	var open []string
	for id, mh := range bs.model.holds {
		if mh.status == domain.HoldOpen {
			open = append(open, id)
		}
	}
	slices.Sort(open) // map order must not leak into the choices
	switch k := h.src.intn(10); {
	case k < 6 && len(open) > 0:
		return h.pick(open)
	case k < 9 && len(bs.holdIDs) > 0:
		return h.pick(bs.holdIDs)
	}
	return fmt.Sprintf("h-%d", h.n)
}

func (h *harness) expiry() time.Time {
	switch h.src.intn(7) {
	case 6:
		return h.now // exactly the clock: already expired
	case 0, 1, 2:
		return time.Time{}
	case 3:
		return h.now.Add(-time.Duration(h.src.intn(3600)) * time.Second) // already passed
	case 4:
		return time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) // out of range
	}
	return h.now.Add(time.Duration(1+h.src.intn(4*3600)) * time.Second)
}

func (h *harness) holdOp(bs *bookState) domain.HoldOp {
	switch h.src.intn(3) {
	case 0:
		id := fmt.Sprintf("h-%d", h.n)
		if h.src.intn(10) == 0 && len(bs.holdIDs) > 0 {
			id = h.pick(bs.holdIDs) // reuse
		}
		bs.holdIDs = append(bs.holdIDs, id)
		acct := h.pick(bs.users)
		if h.src.intn(6) == 0 {
			acct = h.pick(bs.accounts)
		}
		amt := h.amount(bs)
		if b, err := bs.book.Balance(acct); err == nil && b.Available > 0 && h.src.intn(2) == 0 {
			amt = 1 + int64(h.src.intn(int(min(b.Available, 1<<40))))
		}
		return domain.HoldOp{Kind: domain.HoldPlace, HoldID: id, Account: acct, Amount: amt, ExpiresAt: h.expiry()}
	case 1:
		id := h.holdRef(bs)
		amt := int64(0)
		switch h.src.intn(4) {
		case 1:
			amt = h.amount(bs) / 2
		case 2, 3:
			// Exactly the held amount, or one more.
			if mh := bs.model.holds[id]; mh != nil {
				amt = mh.amount + int64(h.src.intn(2))
			}
		}
		return domain.HoldOp{Kind: domain.HoldCapture, HoldID: id, Amount: amt, Credit: h.account(bs)}
	}
	op := domain.HoldOp{Kind: domain.HoldVoid, HoldID: h.holdRef(bs)}
	if h.src.intn(20) == 0 {
		op.Amount = 1 // malformed
	}
	return op
}

// request generates a random request: mostly sensible, sometimes malformed in
// one of many ways.
func (h *harness) request(bs *bookState) domain.Request {
	req := domain.Request{ID: fmt.Sprintf("r-%d", h.n), Asset: bs.asset, Kind: domain.PostingKind(1 + h.src.intn(12))}
	np := 1 + h.src.intn(3)
	if h.src.intn(4) == 0 {
		np = 0
	}
	if h.src.intn(30) == 0 {
		np = bs.book.Policy().MaxPostings + 1
	}
	for range np {
		p := domain.Posting{Debit: h.account(bs), Credit: h.account(bs), Amount: h.amount(bs)}
		switch h.src.intn(6) {
		case 0: // money entering
			if bs.asset == "FAN" {
				p.Debit = domain.Mint
			} else {
				p.Debit = domain.ExternalID("bank")
			}
		case 1:
			if bs.asset == "FAN" {
				p.Credit = domain.Burn
			}
		}
		if h.src.intn(25) == 0 {
			p.Kind = domain.PostingKind(h.src.intn(15) - 1)
		}
		req.Postings = append(req.Postings, p)
	}
	nh := 0
	if np == 0 || h.src.intn(3) == 0 {
		nh = 1 + h.src.intn(2)
	}
	for range nh {
		req.Holds = append(req.Holds, h.holdOp(bs))
	}
	switch h.src.intn(60) {
	case 0:
		req.ID = ""
	case 1:
		req.Asset = "EUR"
	case 2:
		req.Asset = map[string]string{"USD": "FAN", "FAN": "USD"}[bs.asset]
	case 3:
		req.Kind = 0
	case 4:
		req.Memo = "memo"
	}
	return req
}

// step performs one random operation on one book and checks everything.
func (h *harness) step() {
	h.n++
	bs := h.books[h.src.intn(len(h.books))]
	switch k := h.src.intn(20); {
	case k < 12:
		h.apply(bs, h.request(bs), "request")
	case k == 12 && len(bs.reqs) > 0: // the same request again
		h.apply(bs, bs.reqs[h.src.intn(len(bs.reqs))], "repeat")
	case k == 13 && len(bs.reqs) > 0: // the same id, other content
		req := bs.reqs[h.src.intn(len(bs.reqs))]
		req.Memo += "!"
		h.apply(bs, req, "conflict")
	case k == 14:
		h.now = h.now.Add(time.Duration(h.src.intn(7200)) * time.Second)
		// Now and then exactly at an open hold's expiry, or a nanosecond before.
		var exps []int64
		for _, mh := range bs.model.holds {
			if mh.status == domain.HoldOpen && mh.expires > h.now.UnixNano() {
				exps = append(exps, mh.expires)
			}
		}
		if len(exps) > 0 && h.src.intn(2) == 0 {
			slices.Sort(exps)
			h.now = time.Unix(0, exps[h.src.intn(len(exps))]-int64(h.src.intn(2))).UTC()
		}
		h.expire(bs)
	case k == 15:
		h.open(bs, h.pick(bs.accounts))
		h.stats["open"]++
	case k == 16:
		h.restore(bs)
	case k == 17 && h.src.intn(4) == 0:
		h.setPolicy(bs)
	case k == 18:
		// A deposit (USD) or a mint (FAN): keeps money coming in.
		from := domain.ExternalID("bank")
		if bs.asset == "FAN" {
			from = domain.Mint
		}
		req := domain.Request{ID: fmt.Sprintf("d-%d", h.n), Asset: bs.asset, Kind: domain.KindDeposit,
			Postings: []domain.Posting{{Debit: from, Credit: h.pick(bs.users), Amount: 1 + int64(h.src.intn(200_000))}}}
		h.apply(bs, req, "deposit")
	default:
		// A plain transfer between opened accounts: keeps money moving.
		req := domain.Request{ID: fmt.Sprintf("t-%d", h.n), Asset: bs.asset, Kind: domain.KindTip,
			Postings: []domain.Posting{{Debit: h.pick(bs.users), Credit: h.pick(bs.users), Amount: 1 + int64(h.src.intn(50_000))}}}
		h.apply(bs, req, "transfer")
	}
	h.check(bs)
}

func (h *harness) apply(bs *bookState, req domain.Request, label string) {
	t := h.t
	b := bs.book
	ledger, full := b.LedgerSnapshot(), b.Snapshot()
	prior, decided := b.Decision(req.ID)
	fp := req.Fingerprint()
	var probs map[string]bool
	if !decided {
		probs = bs.model.problems(req)
	}
	seq := b.Sequence()
	o := b.Apply(req)
	bs.log = append(bs.log, logged{kind: opApply, req: req})
	bs.reqs = append(bs.reqs, req)
	if o.ID != req.ID {
		t.Fatalf("%s %s: outcome for %q", label, req.ID, o.ID)
	}

	if decided {
		if first := bs.firstFP[req.ID]; first == fp {
			if !o.Replayed || o.Status != prior.Status || o.Sequence != prior.Sequence || o.PolicyVersion != prior.PolicyVersion ||
				o.Reason != prior.Reason || o.Account != prior.Account || fmt.Sprint(o.Err) != fmt.Sprint(prior.Err) || !slices.Equal(o.Holds, prior.Holds) {
				t.Fatalf("%s %s: repeat gave %+v, first outcome %+v", label, req.ID, o, prior)
			}
			h.stats["replayed"]++
		} else if !errors.Is(o.Err, domain.ErrIDConflict) || o.Reason != domain.ReasonIDConflict {
			t.Fatalf("%s %s: reused id with other content gave %+v", label, req.ID, o)
		} else {
			h.stats["id_conflict"]++
		}
		if !bytes.Equal(full, b.Snapshot()) {
			t.Fatalf("%s %s: a repeat or conflict changed the book", label, req.ID)
		}
		return
	}

	if o.Committed() {
		if len(probs) != 0 {
			t.Fatalf("%s %s: committed, but the model finds %v in %+v", label, req.ID, probs, req)
		}
		if o.Sequence != seq+1 || b.Sequence() != seq+1 || o.Err != nil {
			t.Fatalf("%s %s: committed with sequence %d after %d", label, req.ID, o.Sequence, seq)
		}
		if len(o.Holds) != len(req.Holds) {
			t.Fatalf("%s %s: %d hold effects for %d operations", label, req.ID, len(o.Holds), len(req.Holds))
		}
		if d, ok := b.Decision(req.ID); !ok || d.Sequence != o.Sequence {
			t.Fatalf("%s %s: committed but not remembered", label, req.ID)
		}
		bs.model.apply(req)
		bs.firstFP[req.ID] = fp
		h.stats["committed"]++
		return
	}
	var rej *domain.Rejection
	if !errors.As(o.Err, &rej) {
		t.Fatalf("%s %s: rejected without a Rejection: %v", label, req.ID, o.Err)
	}
	if !probs[rej.Err.Code()] {
		t.Fatalf("%s %s: rejected as %s (%v), but the model finds only %v in %+v", label, req.ID, rej.Err.Code(), o.Err, probs, req)
	}
	if o.Reason != rej.Err.Reason() || b.Sequence() != seq {
		t.Fatalf("%s %s: reason %s for %s", label, req.ID, o.Reason, rej.Err.Code())
	}
	if !bytes.Equal(ledger, b.LedgerSnapshot()) {
		t.Fatalf("%s %s: rejection %v changed the ledger", label, req.ID, o.Err)
	}
	_, remembered := b.Decision(req.ID)
	if must, known := mustRemember[rej.Err.Code()]; known && must != remembered {
		t.Fatalf("%s %s: rejection %s remembered = %v, want %v", label, req.ID, rej.Err.Code(), remembered, must)
	}
	if remembered {
		bs.firstFP[req.ID] = fp
		h.stats["rejected (remembered) "+rej.Err.Code()]++
	} else {
		if !bytes.Equal(full, b.Snapshot()) {
			t.Fatalf("%s %s: unremembered rejection %v changed the book", label, req.ID, o.Err)
		}
		h.stats["rejected "+rej.Err.Code()]++
	}
}

// mustRemember says which rejections the book must remember (decided against
// the state) and which it must not (malformed). unknown_account and
// self_posting can be either.
var mustRemember = map[string]bool{
	"insufficient_funds": true, "supply_cap": true, "unknown_hold": true, "hold_closed": true, "hold_exists": true,
	"hold_expired": true, "capture_exceeds_hold": true, "amount_overflow": true,
	"invalid_request": false, "unknown_asset": false, "asset_mismatch": false, "too_many_postings": false,
	"too_many_hold_ops": false, "invalid_amount": false, "invalid_posting": false, "invalid_account_id": false, "invalid_hold": false,
}

func (h *harness) expire(bs *bookState) {
	got := bs.book.ExpireHolds(h.now)
	bs.log = append(bs.log, logged{kind: opExpire, now: h.now})
	want := bs.model.expire(h.now)
	if len(got) != len(want) {
		h.t.Fatalf("ExpireHolds voided %d holds, the model %d", len(got), len(want))
	}
	for i, e := range got {
		if e.HoldID != want[i] || !e.Expired || e.Kind != domain.HoldVoid {
			h.t.Fatalf("expired[%d] = %+v, model %s", i, e, want[i])
		}
		if hd, err := bs.book.Hold(e.HoldID); err != nil || hd.Status != domain.HoldExpired {
			h.t.Fatalf("expired hold %s is %+v, %v", e.HoldID, hd, err)
		}
	}
	h.stats["expired"] += len(got)
}

func (h *harness) restore(bs *bookState) {
	snap := bs.book.Snapshot()
	c, err := domain.Restore(snap)
	if err != nil {
		h.t.Fatalf("Restore: %v", err)
	}
	if !bytes.Equal(c.Snapshot(), snap) {
		h.t.Fatal("snapshot → restore → snapshot differs")
	}
	bs.book = c // carry on with the restored book
	h.stats["restore"]++
}

func (h *harness) setPolicy(bs *bookState) {
	p := bs.book.Policy()
	p.Version++
	p.MaxPostings = 2 + h.src.intn(63)
	if bs.asset == "FAN" {
		p.SupplyCaps = map[string]int64{"FAN": 1 + int64(h.src.intn(8_000_000))}
	}
	if err := bs.book.SetPolicy(p); err != nil {
		h.t.Fatalf("SetPolicy: %v", err)
	}
	bs.log = append(bs.log, logged{kind: opPolicy, policy: p})
	bs.model.setPolicy(p)
	h.stats["policy"]++
}

// check runs after every step.
func (h *harness) check(bs *bookState) {
	t := h.t
	b := bs.book
	if err := invariants(b); err != nil {
		t.Fatalf("step %d: %v", h.n, err)
	}
	// The book agrees with the model on every balance and hold.
	for _, a := range b.Accounts() {
		if a.Total != bs.model.bal[a.ID] || a.Held != bs.model.held[a.ID] {
			t.Fatalf("step %d: %s is %+v, the model says total %d held %d", h.n, a.ID, a.Balance, bs.model.bal[a.ID], bs.model.held[a.ID])
		}
	}
	for id, v := range bs.model.bal {
		if bal, err := b.Balance(id); v != 0 && (err != nil || bal.Total != v) {
			t.Fatalf("step %d: model has %s = %d, book %+v %v", h.n, id, v, bal, err)
		}
	}
	if s := b.Supply(); s.Circulating != bs.model.supply {
		t.Fatalf("step %d: supply %d, model %d", h.n, s.Circulating, bs.model.supply)
	}
	if h.n%200 == 0 {
		h.checkReplay(bs)
	}
}

// checkReplay rebuilds the book from its initial policy and the log of calls
// and requires the very same bytes (determinism).
func (h *harness) checkReplay(bs *bookState) {
	fresh, err := domain.NewBook(bs.asset, bs.initial)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, l := range bs.log {
		switch l.kind {
		case opApply:
			fresh.Apply(l.req)
		case opOpen:
			_, _ = fresh.Open(l.account)
		case opExpire:
			fresh.ExpireHolds(l.now)
		case opPolicy:
			if err := fresh.SetPolicy(l.policy); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	if !bytes.Equal(fresh.Snapshot(), bs.book.Snapshot()) {
		h.t.Fatalf("step %d: replaying %d calls into a fresh %s book gives a different state", h.n, len(bs.log), bs.asset)
	}
}

func (h *harness) finish() {
	for _, bs := range h.books {
		h.checkReplay(bs)
	}
}

func TestLedgerInvariants(t *testing.T) {
	steps, seeds := 1500, 4
	if testing.Short() {
		steps, seeds = 400, 2
	}
	total := map[string]int{}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			h := newHarness(t, randSource{rand.New(rand.NewPCG(uint64(seed), 0x1ed9e7))})
			for range steps {
				h.step()
			}
			h.finish()
			for k, v := range h.stats {
				total[k] += v
			}
		})
	}
	t.Logf("outcomes: %v", total)
	if testing.Short() {
		return
	}
	// The harness must actually reach every kind of outcome.
	for _, k := range []string{"committed", "replayed", "id_conflict", "expired", "restore", "policy",
		"rejected (remembered) insufficient_funds", "rejected (remembered) supply_cap", "rejected (remembered) unknown_account",
		"rejected (remembered) hold_closed", "rejected (remembered) unknown_hold", "rejected (remembered) capture_exceeds_hold",
		"rejected invalid_amount", "rejected self_posting", "rejected too_many_postings", "rejected invalid_account_id",
		"rejected unknown_asset", "rejected asset_mismatch", "rejected invalid_request"} {
		if total[k] == 0 {
			t.Errorf("the harness never produced %q", k)
		}
	}
}

// FuzzBook drives the same harness from fuzz input: each byte (or pair) is a
// choice, up to 300 steps. The seeds are short because Go minimizes every new
// interesting input, which costs time quadratic in its length; run it with a
// bounded minimization, e.g.
//
//	go test -run '^$' -fuzz '^FuzzBook$' -fuzztime 30s -fuzzminimizetime 5s ./services/accounts/domain/
func FuzzBook(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 8 {
		seed := make([]byte, 160)
		for i := range seed {
			seed[i] = byte(r.UintN(256))
		}
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{data: data}
		h := newHarness(t, src)
		for i := 0; i < 300 && !src.exhausted(); i++ {
			h.step()
		}
		h.finish()
	})
}
