package domain

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// Snapshot encoding, version 1. All integers are varints, strings are
// length-prefixed, every collection is sorted by id, and a CRC-32C of
// everything before it closes the encoding:
//
//	magic "fanfare.book" · version 1 · flags (1: decisions included)
//	asset code · scale
//	policy: version · assets (code, scale)… · caps (code, units)… ·
//	        welcome credit (code, scale, units) · max postings · max hold ops
//	sequence · clock
//	accounts (id, kind, balance, held)…
//	open holds (id, account, amount, expires, placed)…
//	closed holds (id, account, amount, expires, placed, status)…
//	[decisions (id, fingerprint, sequence, policy, error code, account,
//	            detail, hold effects…)…]
//	crc32c
//
// The encoding is canonical: one state has exactly one encoding, and Restore
// refuses any other bytes.
const (
	snapshotMagic   = "fanfare.book"
	snapshotVersion = 1
	flagDecisions   = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot returns the whole book — ledger state and remembered outcomes —
// as deterministic bytes: two books with the same state give the same bytes.
// [Restore] reads them back.
func (b *Book) Snapshot() []byte { return b.encode(true) }

// LedgerSnapshot returns the ledger state alone (policy, balances, holds,
// sequence, clock), without the remembered outcomes. It is what "a rejection
// changes nothing" is measured on. [Restore] reads it too, giving a book with
// no remembered outcomes.
func (b *Book) LedgerSnapshot() []byte { return b.encode(false) }

func (b *Book) encode(withDecisions bool) []byte {
	var w enc
	w.buf = make([]byte, 0, 64+48*len(b.accounts)+64*(len(b.open)+len(b.closed)))
	w.buf = append(w.buf, snapshotMagic...)
	w.uvarint(snapshotVersion)
	flags := uint64(0)
	if withDecisions {
		flags = flagDecisions
	}
	w.uvarint(flags)
	w.str(b.asset.Code)
	w.uvarint(uint64(b.asset.Scale))

	p := &b.policy
	w.uvarint(p.Version)
	assets := p.Assets.List()
	w.uvarint(uint64(len(assets)))
	for _, a := range assets {
		w.str(a.Code)
		w.uvarint(uint64(a.Scale))
	}
	caps := slices.Sorted(maps.Keys(p.SupplyCaps))
	w.uvarint(uint64(len(caps)))
	for _, c := range caps {
		w.str(c)
		w.varint(p.SupplyCaps[c])
	}
	w.str(p.WelcomeCredit.Asset().Code)
	w.uvarint(uint64(p.WelcomeCredit.Asset().Scale))
	w.varint(p.WelcomeCredit.Units())
	w.uvarint(uint64(p.MaxPostings))
	w.uvarint(uint64(p.MaxHoldOps))

	w.uvarint(b.seq)
	w.varint(b.clock)

	ids := slices.Sorted(maps.Keys(b.accounts))
	w.uvarint(uint64(len(ids)))
	for _, id := range ids {
		a := b.accounts[id]
		w.str(id)
		w.uvarint(uint64(a.kind))
		w.varint(a.balance)
		w.varint(a.held)
	}
	for pass, holds := range []map[string]*hold{b.open, b.closed} {
		ids := slices.Sorted(maps.Keys(holds))
		w.uvarint(uint64(len(ids)))
		for _, id := range ids {
			h := holds[id]
			w.str(id)
			w.str(h.account)
			w.varint(h.amount)
			w.varint(h.expires)
			w.uvarint(h.placed)
			if pass == 1 {
				w.uvarint(uint64(h.status))
			}
		}
	}
	if withDecisions {
		ids := slices.Sorted(maps.Keys(b.decisions))
		w.uvarint(uint64(len(ids)))
		for _, id := range ids {
			d := b.decisions[id]
			w.str(id)
			w.buf = append(w.buf, d.fp[:]...)
			w.uvarint(d.seq)
			w.uvarint(d.policy)
			var m decisionMore
			if d.more != nil {
				m = *d.more
			}
			code := ""
			if m.rej != nil {
				code = m.rej.code
			}
			w.str(code)
			w.str(m.account)
			w.str(m.detail)
			w.uvarint(uint64(len(m.holds)))
			for _, e := range m.holds {
				w.uvarint(uint64(e.Kind))
				w.str(e.HoldID)
				w.str(e.Account)
				w.varint(e.Amount)
				w.varint(e.Released)
				w.str(e.Credit)
				exp, _ := expiryNanos(e.ExpiresAt)
				w.varint(exp)
				w.bool(e.Expired)
			}
		}
	}
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
	return w.buf
}

type enc struct{ buf []byte }

func (w *enc) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *enc) varint(v int64)   { w.buf = binary.AppendVarint(w.buf, v) }
func (w *enc) str(s string)     { w.buf = appendString(w.buf, s) }
func (w *enc) bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Restore rebuilds a book from [Book.Snapshot] or [Book.LedgerSnapshot]
// bytes. It checks the checksum, the encoding and every ledger invariant
// (balances sum to zero, no user account below zero available, held equals
// the open holds, the accounts belong to the book) and returns
// [ErrCorruptSnapshot] if anything is off. Restore(s).Snapshot() == s.
func Restore(data []byte) (*Book, error) {
	b, withDecisions, err := decode(data)
	if err != nil {
		return nil, reject(ErrCorruptSnapshot, "", "%v", err)
	}
	if err := b.check(); err != nil {
		return nil, reject(ErrCorruptSnapshot, "", "%v", err)
	}
	if !bytes.Equal(b.encode(withDecisions), data) {
		return nil, reject(ErrCorruptSnapshot, "", "not in canonical form")
	}
	return b, nil
}

type dec struct {
	data []byte
	err  error
}

func (r *dec) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *dec) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data)
	if n <= 0 {
		r.fail("truncated or bad varint")
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *dec) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.data)
	if n <= 0 {
		r.fail("truncated or bad varint")
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *dec) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.data)) {
		r.fail("truncated string")
		return ""
	}
	s := string(r.data[:n])
	r.data = r.data[n:]
	return s
}

// count reads a collection size, bounded by the bytes left (every element
// takes at least one byte) so a corrupt count cannot allocate much.
func (r *dec) count() int {
	n := r.uvarint()
	if n > uint64(len(r.data)) {
		r.fail("count %d exceeds the data left", n)
		return 0
	}
	return int(n)
}

func (r *dec) small(limit uint64, what string) uint64 {
	v := r.uvarint()
	if v > limit {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return v
}

func (r *dec) bool() bool {
	v := r.small(1, "bool")
	return v == 1
}

// sorted checks that ids come in strictly ascending order.
func (r *dec) sorted(prev *string, id string, i int, what string) {
	if i > 0 && id <= *prev {
		r.fail("%s ids not strictly ascending at %q", what, clip(id))
	}
	*prev = id
}

func decode(data []byte) (*Book, bool, error) {
	if len(data) < len(snapshotMagic)+4 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, false, fmt.Errorf("not a book snapshot")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, false, fmt.Errorf("checksum mismatch")
	}
	r := &dec{data: body[len(snapshotMagic):]}
	if v := r.uvarint(); v != snapshotVersion {
		return nil, false, fmt.Errorf("unsupported snapshot version %d", v)
	}
	flags := r.small(flagDecisions, "flags")
	withDecisions := flags&flagDecisions != 0

	assetCode := r.str()
	assetScale := r.small(money.MaxScale, "scale")

	var p Policy
	p.Version = r.uvarint()
	nAssets := r.count()
	assets := make([]money.Asset, 0, nAssets)
	for range nAssets {
		code := r.str()
		assets = append(assets, money.Asset{Code: code, Scale: uint8(r.small(money.MaxScale, "scale"))})
	}
	if r.err != nil {
		return nil, false, r.err
	}
	tab, err := money.NewAssets(assets...)
	if err != nil {
		return nil, false, err
	}
	p.Assets = tab
	nCaps := r.count()
	if nCaps > 0 {
		p.SupplyCaps = make(map[string]int64, nCaps)
	}
	var prev string
	for i := range nCaps {
		code := r.str()
		r.sorted(&prev, code, i, "supply cap")
		p.SupplyCaps[code] = r.varint()
	}
	wcCode := r.str()
	wcScale := r.small(money.MaxScale, "scale")
	wcUnits := r.varint()
	if wcCode != "" || wcScale != 0 || wcUnits != 0 {
		p.WelcomeCredit = money.New(money.Asset{Code: wcCode, Scale: uint8(wcScale)}, wcUnits)
		if p.WelcomeCredit.Units() != wcUnits {
			r.fail("welcome credit out of range")
		}
	}
	p.MaxPostings = int(r.small(maxBound, "max postings"))
	p.MaxHoldOps = int(r.small(maxBound, "max hold ops"))
	if r.err != nil {
		return nil, false, r.err
	}
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	b, err := NewBook(assetCode, p)
	if err != nil {
		return nil, false, err
	}
	if uint64(b.asset.Scale) != assetScale {
		return nil, false, fmt.Errorf("asset scale %d does not match the policy's %d", assetScale, b.asset.Scale)
	}
	b.seq = r.uvarint()
	b.clock = r.varint()

	nAccounts := r.count()
	for i := range nAccounts {
		id := r.str()
		r.sorted(&prev, id, i, "account")
		a := &account{kind: AccountKind(r.small(uint64(AccountPromotions), "account kind"))}
		a.balance = r.varint()
		a.held = r.varint()
		b.accounts[id] = a
	}
	for pass, holds := range []map[string]*hold{b.open, b.closed} {
		n := r.count()
		for i := range n {
			id := r.str()
			r.sorted(&prev, id, i, "hold")
			h := &hold{id: id, account: r.str(), amount: r.varint(), expires: r.varint(), placed: r.uvarint(), status: HoldOpen}
			if pass == 1 {
				h.status = HoldStatus(r.small(uint64(HoldExpired), "hold status"))
				if h.status == HoldOpen || h.status == 0 {
					r.fail("closed hold %q has status %s", clip(id), h.status)
				}
			}
			holds[id] = h
		}
	}
	if withDecisions {
		n := r.count()
		for i := range n {
			id := r.str()
			r.sorted(&prev, id, i, "decision")
			var d decision
			if len(r.data) < len(d.fp) {
				r.fail("truncated fingerprint")
				break
			}
			copy(d.fp[:], r.data)
			r.data = r.data[len(d.fp):]
			d.seq = r.uvarint()
			d.policy = r.uvarint()
			var m decisionMore
			if code := r.str(); code != "" {
				m.rej = sentinels[code]
				if m.rej == nil {
					r.fail("decision %q has unknown error code %q", clip(id), clip(code))
				}
			}
			m.account = r.str()
			m.detail = r.str()
			ne := r.count()
			for range ne {
				e := HoldEffect{Kind: HoldOpKind(r.small(uint64(HoldVoid), "hold op"))}
				e.HoldID = r.str()
				e.Account = r.str()
				e.Amount = r.varint()
				e.Released = r.varint()
				e.Credit = r.str()
				e.ExpiresAt = nanosTime(r.varint())
				e.Expired = r.bool()
				m.holds = append(m.holds, e)
			}
			if m.rej != nil || m.account != "" || m.detail != "" || len(m.holds) > 0 {
				d.more = &m
			}
			if r.err != nil {
				break
			}
			b.decisions[id] = d
		}
	}
	if r.err == nil && len(r.data) != 0 {
		r.fail("%d trailing bytes", len(r.data))
	}
	if r.err != nil {
		return nil, false, r.err
	}
	return b, withDecisions, nil
}

// check verifies the invariants of a decoded book and derives its caches
// (supply, next expiry).
func (b *Book) check() error {
	var sum int64
	for id, a := range b.accounts {
		aid, r := parseAccountID(id)
		if r != nil {
			return r
		}
		if r := b.inBook(aid); r != nil {
			return r
		}
		if aid.Kind != a.kind {
			return fmt.Errorf("account %s has kind %s", id, a.kind)
		}
		var ok bool
		if sum, ok = money.AddUnits(sum, a.balance); !ok {
			return fmt.Errorf("balances overflow")
		}
		if a.held < 0 || (a.kind.System() && a.held != 0) {
			return fmt.Errorf("account %s holds %d", id, a.held)
		}
		if !b.mayGoNegative(a.kind) && a.balance < a.held {
			return fmt.Errorf("account %s is below zero available", id)
		}
		if (a.kind == AccountMint && a.balance > 0) || (a.kind == AccountBurn && a.balance < 0) {
			return fmt.Errorf("account %s has balance %d", id, a.balance)
		}
	}
	if sum != 0 {
		return fmt.Errorf("balances sum to %d, not 0", sum)
	}
	held := map[string]int64{}
	b.nextExpiry = 0
	for id, h := range b.open {
		a := b.accounts[h.account]
		if a == nil || a.kind.System() {
			return fmt.Errorf("hold %q is on %q, not an open user account", id, h.account)
		}
		if h.amount <= 0 || h.expires < 0 || (h.expires != 0 && h.expires <= b.clock) || h.placed == 0 || h.placed > b.seq || checkHoldID(id) != "" {
			return fmt.Errorf("hold %q is malformed", id)
		}
		var ok bool
		if held[h.account], ok = money.AddUnits(held[h.account], h.amount); !ok {
			return fmt.Errorf("holds of %s overflow", h.account)
		}
		if h.expires != 0 && (b.nextExpiry == 0 || h.expires < b.nextExpiry) {
			b.nextExpiry = h.expires
		}
	}
	for id, a := range b.accounts {
		if held[id] != a.held {
			return fmt.Errorf("account %s holds %d but its open holds sum to %d", id, a.held, held[id])
		}
	}
	for id, h := range b.closed {
		if b.open[id] != nil {
			return fmt.Errorf("hold %q is open and closed", id)
		}
		if h.amount <= 0 || h.expires < 0 || h.placed == 0 || h.placed > b.seq || checkHoldID(id) != "" {
			return fmt.Errorf("closed hold %q is malformed", id)
		}
		if a := b.accounts[h.account]; a == nil || a.kind.System() {
			return fmt.Errorf("closed hold %q is on %q, not an open user account", id, h.account)
		}
	}
	for id, d := range b.decisions {
		var m decisionMore
		if d.more != nil {
			m = *d.more
		}
		if len(id) == 0 || len(id) > MaxIDLen || d.seq > b.seq || d.policy == 0 || d.policy > b.policy.Version ||
			(m.rej == nil) != (d.seq != 0) || (m.rej == nil && (m.account != "" || m.detail != "")) || (m.rej != nil && len(m.holds) > 0) {
			return fmt.Errorf("decision %q is malformed", clip(id))
		}
	}
	if b.clock < 0 {
		return fmt.Errorf("negative clock")
	}
	if b.token {
		var minted, burned int64
		if a := b.accounts[Mint]; a != nil {
			minted = -a.balance
		}
		if a := b.accounts[Burn]; a != nil {
			burned = a.balance
		}
		b.supply = minted - burned
		if b.supply < 0 {
			return fmt.Errorf("negative supply")
		}
	}
	return nil
}
