package domain

import (
	"crypto/sha256"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// HoldStatus is the state of a hold.
type HoldStatus uint8

// Hold states.
const (
	HoldOpen HoldStatus = iota + 1
	HoldCaptured
	HoldVoided
	// HoldExpired: voided by ExpireHolds.
	HoldExpired
)

func (s HoldStatus) String() string {
	switch s {
	case HoldOpen:
		return "open"
	case HoldCaptured:
		return "captured"
	case HoldVoided:
		return "voided"
	case HoldExpired:
		return "expired"
	}
	return "unknown"
}

// Balance is an account's balance in minor units.
type Balance struct {
	// Total is the posted balance.
	Total int64
	// Held is the sum of the account's open holds.
	Held int64
	// Available is Total − Held.
	Available int64
}

// AccountBalance is one account of a book with its balance.
type AccountBalance struct {
	ID   string
	Kind AccountKind
	Balance
}

// Hold is a hold as queried.
type Hold struct {
	ID      string
	Account string
	Amount  int64
	// ExpiresAt is zero for a hold without expiry.
	ExpiresAt time.Time
	// Placed is the sequence of the request that placed the hold.
	Placed uint64
	Status HoldStatus
}

// Supply is the token supply of a book, in minor units.
type Supply struct {
	// Minted is everything ever debited from mint.
	Minted int64
	// Burned is everything ever credited to burn.
	Burned int64
	// Circulating is Minted − Burned.
	Circulating int64
	// Cap is the cap in force; 0 in a book without a supply cap.
	Cap int64
}

type account struct {
	kind    AccountKind
	balance int64
	held    int64
}

type hold struct {
	id      string
	account string
	amount  int64
	expires int64 // Unix nanoseconds; 0: never
	placed  uint64
	status  HoldStatus
}

// decision is a remembered outcome. It is kept small and nearly pointer-free
// because a book remembers every request it decided: a plain commit is a
// fingerprint and two numbers.
type decision struct {
	fp     Fingerprint
	seq    uint64 // 0 when rejected
	policy uint64
	more   *decisionMore // nil for a commit without hold operations
}

type decisionMore struct {
	rej     *Error // nil when committed
	account string
	detail  string
	holds   []HoldEffect
}

// delta is the effect of the request being evaluated on one account.
type delta struct {
	id    string
	acct  *account // nil: a system account not materialized yet, or an unopened user account
	kind  AccountKind
	dBal  int64
	dHeld int64
}

// indexAfter is the number of touched accounts above which the scratch
// switches from a linear search to a map.
const indexAfter = 16

// Book is the ledger of one asset: balances, holds, supply and the outcomes
// of the requests it decided. It is a single-writer state machine: not safe
// for concurrent use, and every method that changes it is deterministic in
// its arguments and the current state.
type Book struct {
	asset  money.Asset
	policy Policy
	token  bool
	cap    int64

	accounts  map[string]*account
	open      map[string]*hold
	closed    map[string]*hold
	decisions map[string]decision

	seq        uint64 // committed requests
	clock      int64  // latest ExpireHolds time, Unix nanoseconds
	supply     int64  // minted − burned
	nextExpiry int64  // ≤ the earliest expiry of an open hold; 0: none

	// Scratch reused by Apply.
	buf     []byte
	deltas  []delta
	index   map[string]int32
	indexed bool
	pidx    []int32 // per posting: debit and credit delta index
	hidx    []int32 // per hold op: place → account, capture → credit, void → -1
	minted  int64
	burned  int64
}

// NewBook returns an empty book for the asset under policy p. Errors: the
// policy's validation error ([ErrInvalidPolicy]), or [ErrUnknownAsset] if the
// asset is not in the policy.
func NewBook(asset string, p Policy) (*Book, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	a, err := p.Assets.Lookup(asset)
	if err != nil {
		return nil, reject(ErrUnknownAsset, "", "asset %q is not in policy v%d (known: %s)", clip(asset), p.Version, strings.Join(p.Assets.Codes(), ", "))
	}
	b := &Book{
		asset:     a,
		accounts:  map[string]*account{},
		open:      map[string]*hold{},
		closed:    map[string]*hold{},
		decisions: map[string]decision{},
	}
	b.setPolicy(p)
	return b, nil
}

func (b *Book) setPolicy(p Policy) {
	b.policy = p.clone()
	b.cap, b.token = p.SupplyCap(b.asset.Code)
}

// SetPolicy puts a newer policy in force for every request decided after it.
// Errors: [ErrInvalidPolicy]; [ErrPolicyVersion] if p.Version is not greater
// than the current version; [ErrUnknownAsset] if p drops the book's asset or
// changes its scale; [ErrInvalidPolicy] if p makes a token book a non-token
// book or the reverse (the accounts of the book would change meaning).
func (b *Book) SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Version <= b.policy.Version {
		return reject(ErrPolicyVersion, "", "policy v%d is not newer than v%d", p.Version, b.policy.Version)
	}
	a, err := p.Assets.Lookup(b.asset.Code)
	if err != nil || a != b.asset {
		return reject(ErrUnknownAsset, "", "policy v%d must keep asset %s with scale %d", p.Version, b.asset.Code, b.asset.Scale)
	}
	if _, token := p.SupplyCap(b.asset.Code); token != b.token {
		return reject(ErrInvalidPolicy, "", "policy v%d adds or removes the supply cap of %s", p.Version, b.asset.Code)
	}
	b.setPolicy(p)
	return nil
}

// Open opens a user account (wallet or escrow) of this book. It reports true
// if the account is new and false if it was already open; system accounts
// exist without opening, so opening one reports false. Errors:
// [ErrInvalidAccountID]; [ErrUnknownAccount] for an account of another book,
// or mint/burn in a book without a supply cap.
func (b *Book) Open(id string) (bool, error) {
	if _, ok := b.accounts[id]; ok {
		return false, nil
	}
	aid, r := parseAccountID(id)
	if r != nil {
		return false, r
	}
	if r := b.inBook(aid); r != nil {
		return false, r
	}
	if aid.Kind.System() {
		return false, nil
	}
	b.accounts[id] = &account{kind: aid.Kind}
	return true, nil
}

// inBook checks that a parsed account belongs to this book.
func (b *Book) inBook(aid AccountID) *Rejection {
	switch {
	case aid.User() && aid.Asset != b.asset.Code:
		return reject(ErrUnknownAccount, aid.ID, "%s belongs to the %s book, not %s", aid.ID, aid.Asset, b.asset.Code)
	case (aid.Kind == AccountMint || aid.Kind == AccountBurn) && !b.token:
		return reject(ErrUnknownAccount, aid.ID, "the %s book has no %s account: %s has no supply cap in policy v%d", b.asset.Code, aid.ID, b.asset.Code, b.policy.Version)
	}
	return nil
}

// mayGoNegative reports whether accounts of the kind may end below zero.
func (b *Book) mayGoNegative(k AccountKind) bool {
	if b.token {
		return k == AccountMint
	}
	return k.System()
}

// ApplyBatch applies the requests in order, as one writer batch, and returns
// their outcomes in the same order. It is exactly a loop over [Book.Apply].
func (b *Book) ApplyBatch(reqs []Request) []Outcome {
	out := make([]Outcome, len(reqs))
	for i := range reqs {
		out[i] = b.Apply(reqs[i])
	}
	return out
}

// Apply decides one request. The outcome is committed, or rejected with a
// [*Rejection] in Outcome.Err wrapping exactly one sentinel:
//
//   - malformed, not remembered (the same content always fails the same way):
//     [ErrInvalidRequest], [ErrUnknownAsset], [ErrAssetMismatch],
//     [ErrTooManyPostings], [ErrTooManyHoldOps], [ErrInvalidAmount],
//     [ErrSelfPosting], [ErrInvalidPosting], [ErrInvalidAccountID],
//     [ErrInvalidHold], and [ErrUnknownAccount] for an account of another
//     book;
//   - [ErrIDConflict]: the id was decided before with different content
//     (not remembered: the id keeps its first outcome);
//   - decided against the state and remembered: [ErrUnknownAccount] (user
//     account not open), [ErrUnknownHold], [ErrHoldClosed], [ErrHoldExists],
//     [ErrHoldExpired], [ErrCaptureExceedsHold], [ErrAmountOverflow],
//     [ErrInsufficientFunds], [ErrSupplyCap] — checked in this order.
//
// A rejection changes no balance, hold, supply or sequence. A repeat of a
// remembered id with the same content returns the first outcome with
// Replayed set and changes nothing at all.
func (b *Book) Apply(req Request) Outcome {
	if len(req.ID) == 0 || len(req.ID) > MaxIDLen {
		return b.rejected(req.ID, reject(ErrInvalidRequest, "", "request id must be 1..%d bytes, got %d", MaxIDLen, len(req.ID)))
	}
	b.buf = appendCanonical(b.buf[:0], &req)
	fp := Fingerprint(sha256.Sum256(b.buf))
	if d, ok := b.decisions[req.ID]; ok {
		if d.fp == fp {
			return d.outcome(req.ID, true)
		}
		return b.rejected(req.ID, reject(ErrIDConflict, "", "request %q was decided before with different content", clip(req.ID)))
	}
	if r := b.validate(&req); r != nil {
		return b.rejected(req.ID, r)
	}
	effects, r := b.evaluate(&req)
	if r != nil {
		d := decision{fp: fp, policy: b.policy.Version, more: &decisionMore{rej: r.Err, account: r.Account, detail: r.Detail}}
		b.decisions[req.ID] = d
		return d.outcome(req.ID, false)
	}
	b.commit(&req)
	d := decision{fp: fp, seq: b.seq, policy: b.policy.Version}
	if len(effects) > 0 {
		d.more = &decisionMore{holds: effects}
	}
	b.decisions[req.ID] = d
	return d.outcome(req.ID, false)
}

func (b *Book) rejected(id string, r *Rejection) Outcome {
	return Outcome{ID: id, Status: Rejected, PolicyVersion: b.policy.Version, Err: r, Reason: r.Err.reason, Account: r.Account}
}

func (d *decision) outcome(id string, replayed bool) Outcome {
	o := Outcome{ID: id, PolicyVersion: d.policy, Replayed: replayed}
	m := d.more
	if m == nil || m.rej == nil {
		o.Status = Committed
		o.Sequence = d.seq
		if m != nil && len(m.holds) > 0 {
			o.Holds = slices.Clone(m.holds)
		}
		return o
	}
	o.Status = Rejected
	o.Err = &Rejection{Err: m.rej, Account: m.account, Detail: m.detail}
	o.Reason = m.rej.reason
	o.Account = m.account
	return o
}

// Decision returns the remembered outcome of a request id (with Replayed
// set), if the book decided it against its state.
func (b *Book) Decision(id string) (Outcome, bool) {
	d, ok := b.decisions[id]
	if !ok {
		return Outcome{}, false
	}
	return d.outcome(id, true), true
}

func (b *Book) resetScratch() {
	b.deltas = b.deltas[:0]
	b.pidx = b.pidx[:0]
	b.hidx = b.hidx[:0]
	b.minted, b.burned = 0, 0
	if b.indexed {
		clear(b.index)
		b.indexed = false
	}
}

func (b *Book) find(id string) (int32, bool) {
	if b.indexed {
		i, ok := b.index[id]
		return i, ok
	}
	for i := range b.deltas {
		if b.deltas[i].id == id {
			return int32(i), true
		}
	}
	return -1, false
}

func (b *Book) add(d delta) int32 {
	b.deltas = append(b.deltas, d)
	i := int32(len(b.deltas) - 1)
	switch {
	case b.indexed:
		b.index[d.id] = i
	case len(b.deltas) > indexAfter:
		if b.index == nil {
			b.index = make(map[string]int32, 64)
		}
		for j := range b.deltas {
			b.index[b.deltas[j].id] = int32(j)
		}
		b.indexed = true
	}
	return i
}

// touch returns the scratch index of an account, checking the id's syntax and
// book on first sight. An unopened user account is not an error here.
func (b *Book) touch(id string) (int32, *Rejection) {
	if i, ok := b.find(id); ok {
		return i, nil
	}
	d := delta{id: id}
	if a := b.accounts[id]; a != nil {
		d.acct, d.kind = a, a.kind
	} else {
		aid, r := parseAccountID(id)
		if r != nil {
			return -1, r
		}
		if r := b.inBook(aid); r != nil {
			return -1, r
		}
		d.kind = aid.Kind
	}
	return b.add(d), nil
}

// validate is phase 1: checks that depend only on the request and the policy.
func (b *Book) validate(req *Request) *Rejection {
	p := &b.policy
	if req.Asset != b.asset.Code {
		if _, err := p.Assets.Lookup(req.Asset); err != nil {
			return reject(ErrUnknownAsset, "", "asset %q is not in policy v%d (known: %s)", clip(req.Asset), p.Version, strings.Join(p.Assets.Codes(), ", "))
		}
		return reject(ErrAssetMismatch, "", "the request is in %s but this is the %s book", req.Asset, b.asset.Code)
	}
	if !req.Kind.Valid() {
		return reject(ErrInvalidRequest, "", "unknown request kind %d", req.Kind)
	}
	if len(req.Postings) == 0 && len(req.Holds) == 0 {
		return reject(ErrInvalidRequest, "", "no postings and no hold operations")
	}
	if len(req.Postings) > p.MaxPostings {
		return reject(ErrTooManyPostings, "", "%d postings, policy v%d allows %d", len(req.Postings), p.Version, p.MaxPostings)
	}
	if len(req.Holds) > p.MaxHoldOps {
		return reject(ErrTooManyHoldOps, "", "%d hold operations, policy v%d allows %d", len(req.Holds), p.Version, p.MaxHoldOps)
	}
	if len(req.RequestedBy) > MaxTextLen || len(req.Memo) > MaxTextLen {
		return reject(ErrInvalidRequest, "", "requested_by and memo are limited to %d bytes", MaxTextLen)
	}
	b.resetScratch()
	for i := range req.Postings {
		ps := &req.Postings[i]
		switch {
		case ps.Amount <= 0:
			return reject(ErrInvalidAmount, "", "posting %d: amount must be > 0, got %s %s", i, b.format(ps.Amount), b.asset.Code)
		case ps.Kind != 0 && !ps.Kind.Valid():
			return reject(ErrInvalidRequest, "", "posting %d: unknown kind %d", i, ps.Kind)
		case ps.Debit == ps.Credit:
			return reject(ErrSelfPosting, clip(ps.Debit), "posting %d moves from %s to itself", i, clip(ps.Debit))
		case ps.Credit == Mint:
			return reject(ErrInvalidPosting, Mint, "posting %d credits mint, which can only be debited", i)
		case ps.Debit == Burn:
			return reject(ErrInvalidPosting, Burn, "posting %d debits burn, which can only be credited", i)
		}
		di, r := b.touch(ps.Debit)
		if r != nil {
			return r
		}
		ci, r := b.touch(ps.Credit)
		if r != nil {
			return r
		}
		b.pidx = append(b.pidx, di, ci)
	}
	for i := range req.Holds {
		op := &req.Holds[i]
		if why := checkHoldID(op.HoldID); why != "" {
			return reject(ErrInvalidHold, "", "hold operation %d: hold id %s", i, why)
		}
		for j := range i {
			if req.Holds[j].HoldID == op.HoldID {
				return reject(ErrInvalidHold, "", "hold %q appears in operations %d and %d of one request", op.HoldID, j, i)
			}
		}
		switch op.Kind {
		case HoldPlace:
			if op.Credit != "" {
				return reject(ErrInvalidRequest, "", "hold operation %d: place takes no credit account", i)
			}
			if op.Amount <= 0 {
				return reject(ErrInvalidAmount, "", "hold operation %d: amount must be > 0, got %s %s", i, b.format(op.Amount), b.asset.Code)
			}
			if _, ok := expiryNanos(op.ExpiresAt); !ok {
				return reject(ErrInvalidHold, "", "hold operation %d: expiry %s is outside 1970..2262", i, op.ExpiresAt.UTC().Format(time.RFC3339Nano))
			}
			ai, r := b.touch(op.Account)
			if r != nil {
				return r
			}
			if b.deltas[ai].kind.System() {
				return reject(ErrInvalidHold, op.Account, "hold operation %d: holds are placed on wallets and escrows, not on %s", i, op.Account)
			}
			b.hidx = append(b.hidx, ai)
		case HoldCapture:
			if op.Account != "" || !op.ExpiresAt.IsZero() {
				return reject(ErrInvalidRequest, "", "hold operation %d: capture takes a hold id, an optional amount and a credit account only", i)
			}
			if op.Amount < 0 {
				return reject(ErrInvalidAmount, "", "hold operation %d: capture amount must be ≥ 0 (0: the whole hold), got %s %s", i, b.format(op.Amount), b.asset.Code)
			}
			if op.Credit == Mint {
				return reject(ErrInvalidPosting, Mint, "hold operation %d credits mint, which can only be debited", i)
			}
			ci, r := b.touch(op.Credit)
			if r != nil {
				return r
			}
			b.hidx = append(b.hidx, ci)
		case HoldVoid:
			if op.Account != "" || op.Amount != 0 || !op.ExpiresAt.IsZero() || op.Credit != "" {
				return reject(ErrInvalidRequest, "", "hold operation %d: void takes a hold id only", i)
			}
			b.hidx = append(b.hidx, -1)
		default:
			return reject(ErrInvalidRequest, "", "hold operation %d: unknown operation %d", i, op.Kind)
		}
	}
	return nil
}

func checkHoldID(id string) string {
	switch {
	case id == "":
		return "is empty"
	case len(id) > MaxIDLen:
		return "is longer than 256 bytes"
	}
	return ""
}

func overflow(account string) *Rejection {
	return reject(ErrAmountOverflow, account, "a balance or total of %s would leave the int64 range", account)
}

// evaluate is phase 2: checks against the state, with the effects computed in
// the scratch. It changes nothing in the book.
func (b *Book) evaluate(req *Request) ([]HoldEffect, *Rejection) {
	for i := range b.deltas {
		if d := &b.deltas[i]; d.acct == nil && !d.kind.System() {
			return nil, reject(ErrUnknownAccount, d.id, "%s is not open", d.id)
		}
	}
	var ok bool
	for i := range req.Postings {
		ps := &req.Postings[i]
		dd, cd := &b.deltas[b.pidx[2*i]], &b.deltas[b.pidx[2*i+1]]
		if dd.dBal, ok = money.AddUnits(dd.dBal, -ps.Amount); !ok {
			return nil, overflow(dd.id)
		}
		if cd.dBal, ok = money.AddUnits(cd.dBal, ps.Amount); !ok {
			return nil, overflow(cd.id)
		}
		if ps.Debit == Mint {
			if b.minted, ok = money.AddUnits(b.minted, ps.Amount); !ok {
				return nil, overflow(Mint)
			}
		}
		if ps.Credit == Burn {
			if b.burned, ok = money.AddUnits(b.burned, ps.Amount); !ok {
				return nil, overflow(Burn)
			}
		}
	}
	var effects []HoldEffect
	if len(req.Holds) > 0 {
		effects = make([]HoldEffect, 0, len(req.Holds))
	}
	for i := range req.Holds {
		op := &req.Holds[i]
		if op.Kind == HoldPlace {
			if b.open[op.HoldID] != nil || b.closed[op.HoldID] != nil {
				return nil, reject(ErrHoldExists, "", "hold %q was placed before", op.HoldID)
			}
			exp, _ := expiryNanos(op.ExpiresAt)
			if exp != 0 && exp <= b.clock {
				return nil, reject(ErrHoldExpired, "", "hold %q would expire at %s, not after the book clock %s", op.HoldID, nanosTime(exp).Format(time.RFC3339Nano), nanosTime(b.clock).Format(time.RFC3339Nano))
			}
			d := &b.deltas[b.hidx[i]]
			if d.dHeld, ok = money.AddUnits(d.dHeld, op.Amount); !ok {
				return nil, overflow(d.id)
			}
			effects = append(effects, HoldEffect{Kind: HoldPlace, HoldID: op.HoldID, Account: op.Account, Amount: op.Amount, ExpiresAt: nanosTime(exp)})
			continue
		}
		h := b.open[op.HoldID]
		if h == nil {
			if c := b.closed[op.HoldID]; c != nil {
				return nil, reject(ErrHoldClosed, c.account, "hold %q is already %s", op.HoldID, c.status)
			}
			return nil, reject(ErrUnknownHold, "", "hold %q was never placed", op.HoldID)
		}
		ai, _ := b.touch(h.account) // an open hold's account is open: cannot fail
		if op.Kind == HoldVoid {
			d := &b.deltas[ai]
			d.dHeld -= h.amount // |dHeld| ≤ Σ open holds ≤ balance: no overflow
			effects = append(effects, HoldEffect{Kind: HoldVoid, HoldID: h.id, Account: h.account, Amount: h.amount})
			continue
		}
		amt := op.Amount
		if amt == 0 {
			amt = h.amount
		}
		if amt > h.amount {
			return nil, reject(ErrCaptureExceedsHold, h.account, "capture of %s from hold %q, which holds %s", b.format(amt), op.HoldID, b.format(h.amount))
		}
		if op.Credit == h.account {
			return nil, reject(ErrSelfPosting, h.account, "hold %q would be captured into its own account %s", op.HoldID, h.account)
		}
		ad := &b.deltas[ai]
		ad.dHeld -= h.amount
		if ad.dBal, ok = money.AddUnits(ad.dBal, -amt); !ok {
			return nil, overflow(ad.id)
		}
		cd := &b.deltas[b.hidx[i]]
		if cd.dBal, ok = money.AddUnits(cd.dBal, amt); !ok {
			return nil, overflow(cd.id)
		}
		if op.Credit == Burn {
			if b.burned, ok = money.AddUnits(b.burned, amt); !ok {
				return nil, overflow(Burn)
			}
		}
		effects = append(effects, HoldEffect{Kind: HoldCapture, HoldID: h.id, Account: h.account, Amount: amt, Released: h.amount - amt, Credit: op.Credit})
	}
	for i := range b.deltas {
		d := &b.deltas[i]
		if d.dBal == 0 && d.dHeld == 0 {
			continue
		}
		var bal, held int64
		if d.acct != nil {
			bal, held = d.acct.balance, d.acct.held
		}
		nb, ok1 := money.AddUnits(bal, d.dBal)
		nh, ok2 := money.AddUnits(held, d.dHeld)
		if !ok1 || !ok2 {
			return nil, overflow(d.id)
		}
		if !b.mayGoNegative(d.kind) && nb < nh {
			return nil, reject(ErrInsufficientFunds, d.id, "%s has %s %s available; after the request its balance %s would be below its holds %s",
				d.id, b.format(bal-held), b.asset.Code, b.format(nb), b.format(nh))
		}
	}
	if b.token && b.minted > b.burned {
		ns, ok := money.AddUnits(b.supply, b.minted-b.burned)
		if !ok || ns > b.cap {
			return nil, reject(ErrSupplyCap, Mint, "supply %s + minted %s − burned %s exceeds the cap %s %s of policy v%d",
				b.format(b.supply), b.format(b.minted), b.format(b.burned), b.format(b.cap), b.asset.Code, b.policy.Version)
		}
	}
	return effects, nil
}

// commit applies the evaluated scratch to the book.
func (b *Book) commit(req *Request) {
	b.seq++
	for i := range b.deltas {
		d := &b.deltas[i]
		a := d.acct
		if a == nil {
			a = &account{kind: d.kind}
			b.accounts[d.id] = a
		}
		a.balance += d.dBal
		a.held += d.dHeld
	}
	for i := range req.Holds {
		op := &req.Holds[i]
		switch op.Kind {
		case HoldPlace:
			exp, _ := expiryNanos(op.ExpiresAt)
			b.open[op.HoldID] = &hold{id: op.HoldID, account: op.Account, amount: op.Amount, expires: exp, placed: b.seq, status: HoldOpen}
			if exp != 0 && (b.nextExpiry == 0 || exp < b.nextExpiry) {
				b.nextExpiry = exp
			}
		case HoldCapture, HoldVoid:
			h := b.open[op.HoldID]
			delete(b.open, op.HoldID)
			h.status = HoldVoided
			if op.Kind == HoldCapture {
				h.status = HoldCaptured
			}
			b.closed[op.HoldID] = h
		}
	}
	b.supply += b.minted - b.burned
}

// ExpireHolds voids every open hold whose expiry is at or before now and
// returns their effects (Expired set), ordered by expiry, then hold id. The
// book reads no clock: the writer passes the time, and it must record the
// call so a replay makes the same one. The book's clock becomes the latest
// time passed in; holds whose expiry is not after it cannot be placed.
func (b *Book) ExpireHolds(now time.Time) []HoldEffect {
	n := clampNanos(now)
	if n > b.clock {
		b.clock = n
	}
	if b.nextExpiry == 0 || b.nextExpiry > n {
		return nil
	}
	var due []*hold
	var next int64
	for _, h := range b.open {
		switch {
		case h.expires == 0:
		case h.expires <= n:
			due = append(due, h)
		case next == 0 || h.expires < next:
			next = h.expires
		}
	}
	b.nextExpiry = next
	slices.SortFunc(due, func(x, y *hold) int {
		if x.expires != y.expires {
			if x.expires < y.expires {
				return -1
			}
			return 1
		}
		return strings.Compare(x.id, y.id)
	})
	effects := make([]HoldEffect, 0, len(due))
	for _, h := range due {
		delete(b.open, h.id)
		h.status = HoldExpired
		b.closed[h.id] = h
		b.accounts[h.account].held -= h.amount
		effects = append(effects, HoldEffect{Kind: HoldVoid, HoldID: h.id, Account: h.account, Amount: h.amount, Expired: true})
	}
	return effects
}

// lookup returns an account for a query: an unopened user account is
// [ErrUnknownAccount]; a system account not touched yet is zero.
func (b *Book) lookup(id string) (*account, error) {
	if a := b.accounts[id]; a != nil {
		return a, nil
	}
	aid, r := parseAccountID(id)
	if r != nil {
		return nil, r
	}
	if r := b.inBook(aid); r != nil {
		return nil, r
	}
	if !aid.Kind.System() {
		return nil, reject(ErrUnknownAccount, id, "%s is not open", id)
	}
	return &account{kind: aid.Kind}, nil
}

// Balance returns an account's total, held and available balance. Errors:
// [ErrInvalidAccountID], [ErrUnknownAccount].
func (b *Book) Balance(id string) (Balance, error) {
	a, err := b.lookup(id)
	if err != nil {
		return Balance{}, err
	}
	return Balance{Total: a.balance, Held: a.held, Available: a.balance - a.held}, nil
}

// OpenHolds returns the open holds of an account, in the order they were
// placed. Errors as for [Book.Balance].
func (b *Book) OpenHolds(id string) ([]Hold, error) {
	if _, err := b.lookup(id); err != nil {
		return nil, err
	}
	var out []Hold
	for _, h := range b.open {
		if h.account == id {
			out = append(out, h.view())
		}
	}
	slices.SortFunc(out, func(x, y Hold) int {
		if x.Placed != y.Placed {
			if x.Placed < y.Placed {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// Hold returns a hold, open or closed. Error: [ErrUnknownHold].
func (b *Book) Hold(id string) (Hold, error) {
	if h := b.open[id]; h != nil {
		return h.view(), nil
	}
	if h := b.closed[id]; h != nil {
		return h.view(), nil
	}
	return Hold{}, reject(ErrUnknownHold, "", "hold %q was never placed", clip(id))
}

func (h *hold) view() Hold {
	return Hold{ID: h.id, Account: h.account, Amount: h.amount, ExpiresAt: nanosTime(h.expires), Placed: h.placed, Status: h.status}
}

// Accounts returns every account the book knows (opened, or touched system
// accounts) with its balance, sorted by id.
func (b *Book) Accounts() []AccountBalance {
	out := make([]AccountBalance, 0, len(b.accounts))
	for id, a := range b.accounts {
		out = append(out, AccountBalance{ID: id, Kind: a.kind, Balance: Balance{Total: a.balance, Held: a.held, Available: a.balance - a.held}})
	}
	slices.SortFunc(out, func(x, y AccountBalance) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// Supply returns the book's token supply (all zero in a book without a cap).
func (b *Book) Supply() Supply {
	s := Supply{Cap: b.cap}
	if a := b.accounts[Mint]; a != nil {
		s.Minted = -a.balance
	}
	if a := b.accounts[Burn]; a != nil {
		s.Burned = a.balance
	}
	s.Circulating = b.supply
	return s
}

// Asset returns the book's asset.
func (b *Book) Asset() money.Asset { return b.asset }

// Policy returns a copy of the policy in force.
func (b *Book) Policy() Policy { return b.policy.clone() }

// Sequence returns the number of committed requests.
func (b *Book) Sequence() uint64 { return b.seq }

// Clock returns the latest time passed to ExpireHolds (zero if none).
func (b *Book) Clock() time.Time { return nanosTime(b.clock) }

func (b *Book) format(units int64) string { return money.FormatUnits(units, b.asset.Scale) }

// expiryNanos converts a hold expiry to Unix nanoseconds: 0 for the zero
// time; false for an instant not after 1970 or not representable.
func expiryNanos(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, true
	}
	n := t.UnixNano()
	if n <= 0 || !time.Unix(0, n).Equal(t) {
		return 0, false
	}
	return n, true
}

// clampNanos converts a clock reading to Unix nanoseconds within
// [0, MaxInt64].
func clampNanos(t time.Time) int64 {
	switch {
	case t.Unix() < 0:
		return 0
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// NextExpiry is no later than the earliest expiry of an open hold (zero:
// no open hold expires). The book writer calls ExpireHolds only once it has
// passed, so the book's clock only moves in logged steps.
func (b *Book) NextExpiry() time.Time {
	if b.nextExpiry == 0 {
		return time.Time{}
	}
	return nanosTime(b.nextExpiry)
}
