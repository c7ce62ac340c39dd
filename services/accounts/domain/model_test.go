package domain_test

import (
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// model is an independent, deliberately naive reference ledger for one book.
// The invariant harness asks it which problems a request has (a set of error
// codes, in no particular order) and checks that the book commits exactly the
// requests with no problem and rejects the others with one of the problems
// the model found.
type model struct {
	asset    string
	token    bool
	cap      int64
	policy   domain.Policy
	bal      map[string]int64
	held     map[string]int64
	opened   map[string]bool
	holds    map[string]*mhold
	supply   int64
	clock    int64
	assetTab money.Assets
}

type mhold struct {
	id, account string
	amount      int64
	expires     int64
	status      domain.HoldStatus
}

func newModel(asset string, p domain.Policy) *model {
	m := &model{asset: asset, bal: map[string]int64{}, held: map[string]int64{}, opened: map[string]bool{}, holds: map[string]*mhold{}}
	m.setPolicy(p)
	return m
}

func (m *model) setPolicy(p domain.Policy) {
	m.policy = p
	m.cap, m.token = p.SupplyCap(m.asset)
	m.assetTab = p.Assets
}

func (m *model) floorZero(id string) bool {
	aid, err := domain.ParseAccountID(id)
	if err != nil {
		return true
	}
	if m.token {
		return aid.Kind != domain.AccountMint
	}
	return !aid.Kind.System()
}

// accountProblem returns the code of what is wrong with an account used in a
// request, or "".
func (m *model) accountProblem(id string) string {
	aid, err := domain.ParseAccountID(id)
	switch {
	case err != nil:
		return "invalid_account_id"
	case aid.User() && aid.Asset != m.asset:
		return "unknown_account"
	case (aid.Kind == domain.AccountMint || aid.Kind == domain.AccountBurn) && !m.token:
		return "unknown_account"
	case aid.User() && !m.opened[id]:
		return "unknown_account"
	}
	return ""
}

func (m *model) open(id string) {
	aid, err := domain.ParseAccountID(id)
	if err == nil && aid.User() && aid.Asset == m.asset {
		m.opened[id] = true
	}
}

func expNanos(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, true
	}
	n := t.UnixNano()
	return n, n > 0 && time.Unix(0, n).Equal(t)
}

// problems lists every problem of req; apply commits it when there is none.
func (m *model) problems(req domain.Request) map[string]bool {
	probs := map[string]bool{}
	add := func(code string) {
		if code != "" {
			probs[code] = true
		}
	}
	if req.ID == "" || len(req.ID) > domain.MaxIDLen {
		add("invalid_request")
	}
	if req.Asset != m.asset {
		if _, err := m.assetTab.Lookup(req.Asset); err != nil {
			add("unknown_asset")
		} else {
			add("asset_mismatch")
		}
	}
	if req.Kind < 1 || req.Kind > 12 {
		add("invalid_request")
	}
	if len(req.Postings) == 0 && len(req.Holds) == 0 {
		add("invalid_request")
	}
	if len(req.Postings) > m.policy.MaxPostings {
		add("too_many_postings")
	}
	if len(req.Holds) > m.policy.MaxHoldOps {
		add("too_many_hold_ops")
	}
	if len(req.Memo) > domain.MaxTextLen || len(req.RequestedBy) > domain.MaxTextLen {
		add("invalid_request")
	}
	bal := map[string]int64{}
	held := map[string]int64{}
	touched := []string{}
	touch := func(id string) {
		if !slices.Contains(touched, id) {
			touched = append(touched, id)
		}
	}
	move := func(debit, credit string, amt int64) {
		var ok1, ok2 bool
		bal[debit], ok1 = money.AddUnits(bal[debit], -amt)
		bal[credit], ok2 = money.AddUnits(bal[credit], amt)
		if !ok1 || !ok2 {
			add("amount_overflow")
		}
		touch(debit)
		touch(credit)
	}
	var minted, burned int64
	count := func(p *int64, amt int64) {
		var ok bool
		if *p, ok = money.AddUnits(*p, amt); !ok {
			add("amount_overflow")
		}
	}
	for _, p := range req.Postings {
		if p.Amount <= 0 {
			add("invalid_amount")
		}
		if p.Kind != 0 && (p.Kind < 1 || p.Kind > 12) {
			add("invalid_request")
		}
		if p.Debit == p.Credit {
			add("self_posting")
		}
		if p.Credit == domain.Mint || p.Debit == domain.Burn {
			add("invalid_posting")
		}
		add(m.accountProblem(p.Debit))
		add(m.accountProblem(p.Credit))
		if p.Amount > 0 {
			move(p.Debit, p.Credit, p.Amount)
			if p.Debit == domain.Mint {
				count(&minted, p.Amount)
			}
			if p.Credit == domain.Burn {
				count(&burned, p.Amount)
			}
		}
	}
	seen := map[string]bool{}
	for _, op := range req.Holds {
		if op.HoldID == "" || len(op.HoldID) > domain.MaxIDLen || seen[op.HoldID] {
			add("invalid_hold")
		}
		seen[op.HoldID] = true
		h := m.holds[op.HoldID]
		switch op.Kind {
		case domain.HoldPlace:
			if op.Credit != "" {
				add("invalid_request")
			}
			if op.Amount <= 0 {
				add("invalid_amount")
			}
			exp, ok := expNanos(op.ExpiresAt)
			if !ok {
				add("invalid_hold")
			}
			if aid, err := domain.ParseAccountID(op.Account); err == nil && aid.Kind.System() {
				add("invalid_hold")
			}
			add(m.accountProblem(op.Account))
			if h != nil {
				add("hold_exists")
			}
			if ok && exp != 0 && exp <= m.clock {
				add("hold_expired")
			}
			if op.Amount > 0 {
				var ok bool
				if held[op.Account], ok = money.AddUnits(held[op.Account], op.Amount); !ok {
					add("amount_overflow")
				}
				touch(op.Account)
			}
		case domain.HoldCapture, domain.HoldVoid:
			if op.Account != "" || !op.ExpiresAt.IsZero() {
				add("invalid_request")
			}
			if op.Kind == domain.HoldVoid && (op.Amount != 0 || op.Credit != "") {
				add("invalid_request")
			}
			if op.Kind == domain.HoldCapture {
				if op.Amount < 0 {
					add("invalid_amount")
				}
				if op.Credit == domain.Mint {
					add("invalid_posting")
				}
				add(m.accountProblem(op.Credit))
			}
			switch {
			case h == nil:
				add("unknown_hold")
				continue
			case h.status != domain.HoldOpen:
				add("hold_closed")
				continue
			}
			held[h.account] -= h.amount
			touch(h.account)
			if op.Kind == domain.HoldCapture && op.Amount >= 0 {
				amt := op.Amount
				if amt == 0 {
					amt = h.amount
				}
				if amt > h.amount {
					add("capture_exceeds_hold")
				}
				if op.Credit == h.account {
					add("self_posting")
				}
				move(h.account, op.Credit, amt)
				if op.Credit == domain.Burn {
					count(&burned, amt)
				}
			}
		default:
			add("invalid_request")
		}
	}
	for _, id := range touched {
		nb, ok1 := money.AddUnits(m.bal[id], bal[id])
		nh, ok2 := money.AddUnits(m.held[id], held[id])
		if !ok1 || !ok2 {
			add("amount_overflow")
			continue
		}
		if m.floorZero(id) && nb < nh {
			add("insufficient_funds")
		}
	}
	if m.token && minted > burned {
		if ns, ok := money.AddUnits(m.supply, minted-burned); !ok || ns > m.cap {
			add("supply_cap")
		}
	}
	return probs
}

// apply commits a request the model found no problem with.
func (m *model) apply(req domain.Request) {
	for _, p := range req.Postings {
		m.bal[p.Debit] -= p.Amount
		m.bal[p.Credit] += p.Amount
		if p.Debit == domain.Mint {
			m.supply += p.Amount
		}
		if p.Credit == domain.Burn {
			m.supply -= p.Amount
		}
	}
	for _, op := range req.Holds {
		switch op.Kind {
		case domain.HoldPlace:
			exp, _ := expNanos(op.ExpiresAt)
			m.holds[op.HoldID] = &mhold{id: op.HoldID, account: op.Account, amount: op.Amount, expires: exp, status: domain.HoldOpen}
			m.held[op.Account] += op.Amount
		case domain.HoldVoid:
			h := m.holds[op.HoldID]
			h.status = domain.HoldVoided
			m.held[h.account] -= h.amount
		case domain.HoldCapture:
			h := m.holds[op.HoldID]
			h.status = domain.HoldCaptured
			m.held[h.account] -= h.amount
			amt := op.Amount
			if amt == 0 {
				amt = h.amount
			}
			m.bal[h.account] -= amt
			m.bal[op.Credit] += amt
			if op.Credit == domain.Burn {
				m.supply -= amt
			}
		}
	}
}

// expire voids due holds and returns their ids in expiry, then id, order.
func (m *model) expire(now time.Time) []string {
	n := now.UnixNano()
	if now.Unix() < 0 {
		n = 0
	}
	if n > m.clock {
		m.clock = n
	}
	var due []*mhold
	for _, h := range m.holds {
		if h.status == domain.HoldOpen && h.expires != 0 && h.expires <= n {
			due = append(due, h)
		}
	}
	slices.SortFunc(due, func(a, b *mhold) int {
		if a.expires != b.expires {
			if a.expires < b.expires {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, len(due))
	for i, h := range due {
		h.status = domain.HoldExpired
		m.held[h.account] -= h.amount
		ids[i] = h.id
	}
	return ids
}
