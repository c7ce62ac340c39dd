package domain

import (
	"fmt"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
)

// RequestedBy names the tipping service on its tips' ledger requests;
// SubscriptionsRequestedBy on its subscription charges. The service finds
// its answers in the ledger's decisions by these names: never rename.
const (
	RequestedBy              = "tipping"
	SubscriptionsRequestedBy = "tipping.subscriptions"
)

// Status is where a payment stands.
type Status uint8

// Payment states.
const (
	Pending Status = iota + 1
	Completed
	Failed
)

// Tip is one tip of a fan.
type Tip struct {
	ID     string
	SongID string
	Amount int64
	Source eventsv1.TipRequested_Source
	PlayID string
	Month  string // auto-tips: the budget month
	Status Status
	Reason eventsv1.LedgerTransactionRejected_Reason
	Detail string
}

// Fan is the aggregate of stream fan-<listener id>: the listener's tip
// settings, tips and auto-tip spending. Tips live here, not in a stream of
// their own, so an auto-tip and the budget it spends are one append.
type Fan struct {
	events.Recorder
	ID        string
	ThumbsUp  int64 // 0: the rules' default
	AutoTipOn bool
	Budget    int64            // 0: the rules' default
	Spent     map[string]int64 // budget month → auto-tips requested, failed ones given back
	Tips      map[string]*Tip
}

// NewFan is a repository factory.
func NewFan(id string) *Fan { return &Fan{ID: id, Spent: map[string]int64{}, Tips: map[string]*Tip{}} }

// ThumbsUpAmount is the fan's thumbs-up tip under r.
func (f *Fan) ThumbsUpAmount(r Rules) int64 {
	if f.ThumbsUp > 0 {
		return f.ThumbsUp
	}
	return r.ThumbsUpDefault
}

// MonthlyBudget is the fan's auto-tip budget under r.
func (f *Fan) MonthlyBudget(r Rules) int64 {
	if f.Budget > 0 {
		return f.Budget
	}
	return r.AutoTipBudget
}

// TipPlan is a tip to ask the ledger for.
type TipPlan struct {
	ID     string
	SongID string
	Amount int64
	Source eventsv1.TipRequested_Source
	PlayID string
	Month  string
	// Postings pay the song's payees from the fan's wallet (Payments).
	Postings []*eventsv1.Posting
}

// Payments turns a split of a tip (songview.Payments) into its postings
// from the listener's USD wallet; a part that would pay the fan itself is left out.
// Errors: InvalidInput when nothing is left to pay (the fan is the song's
// only payee).
func Payments(listener, songID string, parts []songview.Payment) ([]*eventsv1.Posting, error) {
	from := accounts.WalletID(listener, USD.Code)
	var out []*eventsv1.Posting
	for _, p := range parts {
		if p.Account == from || p.Units <= 0 {
			continue
		}
		out = append(out, &eventsv1.Posting{Debit: from, Credit: p.Account, Asset: USD.Code, Amount: p.Units, Kind: eventsv1.PostingKind_POSTING_KIND_TIP})
	}
	if len(out) == 0 {
		return nil, apperr.New(apperr.InvalidInput, "song %s pays only you: there is no one to tip", songID)
	}
	return out, nil
}

// RequestTip records a tip and its ledger request. A repeat (same id, same
// song, amount and source) is a no-op. Errors: Conflict when the id was
// used for another tip.
func (f *Fan) RequestTip(p TipPlan) error {
	if t, ok := f.Tips[p.ID]; ok {
		if t.SongID == p.SongID && t.Amount == p.Amount && t.Source == p.Source {
			return nil
		}
		return apperr.New(apperr.Conflict, "request id was already used for a tip of %s USD to song %s", FormatUSD(t.Amount), t.SongID)
	}
	e := &eventsv1.TipRequested{TipId: p.ID, ListenerId: f.ID, SongId: p.SongID, Amount: USDMoney(p.Amount), Source: p.Source,
		PlayId: p.PlayID, BudgetMonth: p.Month}
	req := &eventsv1.LedgerTransactionRequested{TransactionId: p.ID, Postings: p.Postings, RequestedBy: RequestedBy,
		Memo: fmt.Sprintf("tip %s to song %s", p.ID, p.SongID), Kind: eventsv1.PostingKind_POSTING_KIND_TIP, Asset: USD.Code}
	return f.record(e, req)
}

// AutoTip decides a counted play's auto-tip: nothing when the fan has not
// opted in or the play is within the first AutoTipAfterPlays of the song;
// a skip when the month's budget cannot cover it; otherwise the tip.
func (f *Fan) AutoTip(play *eventsv1.PlayCounted, month string, r Rules, postings []*eventsv1.Posting, tipID string) error {
	if !f.AutoTipOn || play.ListenerPlayNumber <= uint64(r.AutoTipAfterPlays) {
		return nil
	}
	if _, ok := f.Tips[tipID]; ok {
		return nil
	}
	budget, spent := f.MonthlyBudget(r), f.Spent[month]
	if spent+r.AutoTipAmount > budget {
		return f.record(&eventsv1.AutoTipSkipped{ListenerId: f.ID, SongId: play.SongId, PlayId: play.PlayId, Amount: USDMoney(r.AutoTipAmount),
			MonthlyBudget: USDMoney(budget), Spent: USDMoney(spent), Month: month})
	}
	return f.RequestTip(TipPlan{ID: tipID, SongID: play.SongId, Amount: r.AutoTipAmount, Source: eventsv1.TipRequested_SOURCE_AUTO,
		PlayID: play.PlayId, Month: month, Postings: postings})
}

// Decide records the ledger's answer to one of the fan's tips; an answer
// to a tip that is not pending (a redelivery) records nothing.
func (f *Fan) Decide(d *eventsv1.BookBatchAppended_Decision) error {
	t, ok := f.Tips[d.GetRequest().GetTransactionId()]
	if !ok || t.Status != Pending {
		return nil
	}
	if c := d.GetCommitted(); c != nil {
		return f.record(&eventsv1.TipSettled{TipId: t.ID, ListenerId: f.ID, SongId: t.SongID, Amount: USDMoney(t.Amount), Source: t.Source, Sequence: c.Sequence})
	}
	r := d.GetRejected()
	return f.record(&eventsv1.TipFailed{TipId: t.ID, ListenerId: f.ID, SongId: t.SongID, Amount: USDMoney(t.Amount), Source: t.Source,
		Reason: r.GetReason(), Detail: r.GetDetail()})
}

// SetThumbsUp sets the thumbs-up amount (cents ≥ the minimum tip, checked
// by the caller).
func (f *Fan) SetThumbsUp(units int64) error {
	if units == f.ThumbsUp {
		return nil
	}
	return f.record(&eventsv1.ThumbsUpAmountSet{ListenerId: f.ID, Amount: USDMoney(units)})
}

// SetAutoTip opts in with a monthly budget (0: the default).
func (f *Fan) SetAutoTip(budget int64) error {
	if f.AutoTipOn && f.Budget == budget {
		return nil
	}
	return f.record(&eventsv1.AutoTipSet{ListenerId: f.ID, MonthlyBudget: USDMoney(budget)})
}

// ClearAutoTip opts out.
func (f *Fan) ClearAutoTip() error {
	if !f.AutoTipOn {
		return nil
	}
	return f.record(&eventsv1.AutoTipCleared{ListenerId: f.ID})
}

func (f *Fan) record(evs ...proto.Message) error { return events.RecordNew(f, evs...) }

// Apply evolves the fan by one event.
func (f *Fan) Apply(m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.TipRequested:
		f.Tips[e.TipId] = &Tip{ID: e.TipId, SongID: e.SongId, Amount: e.Amount.GetUnits(), Source: e.Source, PlayID: e.PlayId,
			Month: e.BudgetMonth, Status: Pending}
		if e.Source == eventsv1.TipRequested_SOURCE_AUTO {
			f.Spent[e.BudgetMonth] += e.Amount.GetUnits()
		}
	case *eventsv1.LedgerTransactionRequested, *eventsv1.AutoTipSkipped:
	case *eventsv1.TipSettled:
		if t, ok := f.Tips[e.TipId]; ok {
			t.Status = Completed
		}
	case *eventsv1.TipFailed:
		if t, ok := f.Tips[e.TipId]; ok {
			t.Status, t.Reason, t.Detail = Failed, e.Reason, e.Detail
			if t.Source == eventsv1.TipRequested_SOURCE_AUTO {
				f.Spent[t.Month] -= t.Amount // nothing moved: the budget gets it back
			}
		}
	case *eventsv1.ThumbsUpAmountSet:
		f.ThumbsUp = e.Amount.GetUnits()
	case *eventsv1.AutoTipSet:
		f.AutoTipOn, f.Budget = true, e.MonthlyBudget.GetUnits()
	case *eventsv1.AutoTipCleared:
		f.AutoTipOn = false
	default:
		return fmt.Errorf("fan %s: unexpected event %T", f.ID, m)
	}
	return nil
}
