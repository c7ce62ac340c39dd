package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Subscription states.
const (
	StateActive     = "active"
	StatePastDue    = "past_due"
	StateCancelling = "cancelling"
	StateEnded      = "ended"
	StateLapsed     = "lapsed"
)

// chargeIDs derives a charge's transaction id from (subscription, period,
// attempt), so deciding the same charge twice asks the ledger once.
var chargeIDs = uuid.MustParse("5d0b9a62-2f3c-4c1e-8f7a-0b6e9d3c4a21")

// Subscription is one "true fan" subscription.
type Subscription struct {
	ID, Listener, Artist string
	Monthly              int64
	Started              time.Time
	// Period is the latest period a charge was asked for (0: none yet);
	// Attempt the attempts made for it (0 once it is paid).
	Period, Attempt uint32
	PaidUntil       time.Time
	// NextAt is when the next charge or retry is due (zero: none).
	NextAt        time.Time
	PendingTx     string
	Cancelled     bool
	State         string
	FailureReason string
}

// PeriodStart is the start of the n-th period (1-based).
func (s *Subscription) PeriodStart(n uint32) time.Time { return AddMonths(s.Started, int(n)-1) }

// Subscriptions is the state of the subscriptions stream: every
// subscription and artist setting, so the clock can be checked against all
// of them at once.
type Subscriptions struct {
	Rules   Rules
	Subs    map[string]*Subscription
	Running map[string]string // listener/artist → the subscription not yet ended
	TrueFan map[string]int64  // artist → monthly amount for new subscriptions
	Pending map[string]string // charge transaction id → subscription id
}

// NewSubscriptions is the state of an empty stream under r.
func NewSubscriptions(r Rules) *Subscriptions {
	return &Subscriptions{Rules: r, Subs: map[string]*Subscription{}, Running: map[string]string{}, TrueFan: map[string]int64{}, Pending: map[string]string{}}
}

// Monthly is an artist's amount for new subscriptions.
func (s *Subscriptions) Monthly(artist string) int64 {
	if m, ok := s.TrueFan[artist]; ok {
		return m
	}
	return s.Rules.SubscriptionDefault
}

// SetTrueFan sets an artist's monthly amount (cents ≥ 1, checked by the
// caller).
func (s *Subscriptions) SetTrueFan(artist string, units int64) ([]proto.Message, error) {
	if m, ok := s.TrueFan[artist]; ok && m == units {
		return nil, nil
	}
	return s.record(&eventsv1.TrueFanAmountSet{ArtistId: artist, Monthly: USDMoney(units)})
}

// Subscribe starts subscription id of listener to artist at now and asks
// for the first period's charge. When the id exists (a repeated request)
// or the listener already has a subscription to the artist that has not
// ended, that one is returned and nothing is recorded. Errors:
// InvalidInput for subscribing to oneself; Conflict for an id used for
// another artist.
func (s *Subscriptions) Subscribe(id, listener, artist string, now time.Time) (string, []proto.Message, error) {
	if listener == artist {
		return "", nil, apperr.New(apperr.InvalidInput, "you cannot subscribe to yourself")
	}
	if sub, ok := s.Subs[id]; ok {
		if sub.Listener != listener || sub.Artist != artist {
			return "", nil, apperr.New(apperr.Conflict, "request id was already used for a subscription to %s", sub.Artist)
		}
		return id, nil, nil
	}
	if running, ok := s.Running[listener+"/"+artist]; ok {
		return running, nil, nil
	}
	now = now.UTC()
	evs, err := s.record(&eventsv1.SubscriptionStarted{SubscriptionId: id, ListenerId: listener, ArtistId: artist,
		Monthly: USDMoney(s.Monthly(artist)), StartedAt: timestamppb.New(now)})
	if err != nil {
		return "", nil, err
	}
	more, err := s.charge(s.Subs[id], 1, 1)
	return id, append(evs, more...), err
}

// charge asks the ledger for one attempt at one period's charge.
func (s *Subscriptions) charge(sub *Subscription, period, attempt uint32) ([]proto.Message, error) {
	tx := uuid.NewSHA1(chargeIDs, fmt.Appendf(nil, "%s/%d/%d", sub.ID, period, attempt)).String()
	return s.record(
		&eventsv1.SubscriptionChargeRequested{SubscriptionId: sub.ID, Period: period, Attempt: attempt, TransactionId: tx,
			Amount: USDMoney(sub.Monthly), PeriodStart: timestamppb.New(sub.PeriodStart(period))},
		&eventsv1.LedgerTransactionRequested{TransactionId: tx, RequestedBy: SubscriptionsRequestedBy, Asset: USD.Code,
			Kind: eventsv1.PostingKind_POSTING_KIND_SUBSCRIPTION, Memo: fmt.Sprintf("subscription %s period %d", sub.ID, period),
			Postings: []*eventsv1.Posting{{Debit: accounts.WalletID(sub.Listener, USD.Code), Credit: accounts.WalletID(sub.Artist, USD.Code),
				Asset: USD.Code, Amount: sub.Monthly, Kind: eventsv1.PostingKind_POSTING_KIND_SUBSCRIPTION}}})
}

// Cancel stops a listener's subscription's charges; it ends when the paid
// period does (at once when nothing is paid ahead and no charge is in
// flight). Cancelling again, or an ended subscription, records nothing.
// Errors: NotFound (also for another listener's subscription).
func (s *Subscriptions) Cancel(id, listener string, now time.Time) ([]proto.Message, error) {
	sub, ok := s.Subs[id]
	if !ok || sub.Listener != listener {
		return nil, apperr.New(apperr.NotFound, "you have no subscription %s", id)
	}
	if sub.Cancelled || sub.State == StateEnded || sub.State == StateLapsed {
		return nil, nil
	}
	evs, err := s.record(&eventsv1.SubscriptionCancelled{SubscriptionId: id, EffectiveAt: timestamppb.New(later(sub.PaidUntil, now))})
	if err != nil {
		return nil, err
	}
	more, err := s.Due(now)
	return append(evs, more...), err
}

// Due records what the clock makes due at now, subscription by
// subscription in id order: a period's charge at its start, a retry at its
// time, the end of a cancelled subscription's paid period. A charge in
// flight waits for the ledger's answer first.
func (s *Subscriptions) Due(now time.Time) ([]proto.Message, error) {
	var evs []proto.Message
	for _, id := range slices.Sorted(maps.Keys(s.Running)) {
		sub := s.Subs[s.Running[id]]
		if sub.PendingTx != "" {
			continue
		}
		var more []proto.Message
		var err error
		switch {
		case sub.Cancelled:
			if !now.Before(sub.PaidUntil) {
				end := sub.PaidUntil
				if end.IsZero() {
					end = now.UTC()
				}
				more, err = s.record(&eventsv1.SubscriptionEnded{SubscriptionId: sub.ID, EndedAt: timestamppb.New(end)})
			}
		case !sub.NextAt.IsZero() && !now.Before(sub.NextAt):
			if sub.Attempt == 0 {
				more, err = s.charge(sub, sub.Period+1, 1)
			} else {
				more, err = s.charge(sub, sub.Period, sub.Attempt+1)
			}
		}
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

// Decide records the ledger's answer to a charge: the period is paid, or
// the charge failed and is retried (RetryWindow/ChargeRetries after the
// period's start per attempt made), or, after the last retry, the
// subscription lapses. An answer to no pending charge records nothing.
func (s *Subscriptions) Decide(d *eventsv1.BookBatchAppended_Decision, now time.Time) ([]proto.Message, error) {
	tx := d.GetRequest().GetTransactionId()
	id, ok := s.Pending[tx]
	if !ok {
		return nil, nil
	}
	sub := s.Subs[id]
	if d.GetCommitted() != nil {
		evs, err := s.record(&eventsv1.SubscriptionCharged{SubscriptionId: id, Period: sub.Period, TransactionId: tx,
			PaidUntil: timestamppb.New(sub.PeriodStart(sub.Period + 1))})
		if err != nil {
			return nil, err
		}
		more, err := s.Due(now) // a cancelled subscription may be over already
		return append(evs, more...), err
	}
	r := d.GetRejected()
	failed := &eventsv1.SubscriptionChargeFailed{SubscriptionId: id, Period: sub.Period, Attempt: sub.Attempt, TransactionId: tx,
		Reason: r.GetReason(), Detail: r.GetDetail()}
	retry := sub.Attempt <= s.Rules.ChargeRetries && !sub.Cancelled
	if retry {
		step := s.Rules.RetryWindow / time.Duration(max(s.Rules.ChargeRetries, 1))
		failed.NextAttemptAt = timestamppb.New(sub.PeriodStart(sub.Period).Add(step * time.Duration(sub.Attempt)))
	}
	evs, err := s.record(failed)
	if err != nil || retry {
		return evs, err
	}
	var end proto.Message = &eventsv1.SubscriptionLapsed{SubscriptionId: id, Period: sub.Period}
	if sub.Cancelled {
		end = &eventsv1.SubscriptionEnded{SubscriptionId: id, EndedAt: timestamppb.New(later(sub.PaidUntil, now))}
	}
	more, err := s.record(end)
	return append(evs, more...), err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a.UTC()
	}
	return b.UTC()
}

func (s *Subscriptions) record(evs ...proto.Message) ([]proto.Message, error) {
	for _, e := range evs {
		if err := s.Apply(e); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// Apply evolves the state by one event of the stream.
func (s *Subscriptions) Apply(m proto.Message) error {
	sub := func(id string) (*Subscription, error) {
		if x, ok := s.Subs[id]; ok {
			return x, nil
		}
		return nil, fmt.Errorf("subscriptions: %T for unknown subscription %s", m, id)
	}
	switch e := m.(type) {
	case *eventsv1.TrueFanAmountSet:
		s.TrueFan[e.ArtistId] = e.Monthly.GetUnits()
	case *eventsv1.SubscriptionStarted:
		at := e.StartedAt.AsTime()
		s.Subs[e.SubscriptionId] = &Subscription{ID: e.SubscriptionId, Listener: e.ListenerId, Artist: e.ArtistId,
			Monthly: e.Monthly.GetUnits(), Started: at, NextAt: at, State: StateActive}
		s.Running[e.ListenerId+"/"+e.ArtistId] = e.SubscriptionId
	case *eventsv1.SubscriptionChargeRequested:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		x.Period, x.Attempt, x.PendingTx, x.NextAt = e.Period, e.Attempt, e.TransactionId, time.Time{}
		s.Pending[e.TransactionId] = x.ID
	case *eventsv1.LedgerTransactionRequested:
	case *eventsv1.SubscriptionCharged:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		delete(s.Pending, e.TransactionId)
		x.PendingTx, x.Attempt, x.FailureReason, x.PaidUntil = "", 0, "", e.PaidUntil.AsTime()
		if x.Cancelled {
			x.State = StateCancelling
		} else {
			x.State, x.NextAt = StateActive, x.PaidUntil
		}
	case *eventsv1.SubscriptionChargeFailed:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		delete(s.Pending, e.TransactionId)
		x.PendingTx, x.FailureReason = "", ReasonName(e.Reason)
		if e.NextAttemptAt != nil {
			x.State, x.NextAt = StatePastDue, e.NextAttemptAt.AsTime()
		}
	case *eventsv1.SubscriptionLapsed:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		x.State, x.NextAt = StateLapsed, time.Time{}
		delete(s.Running, x.Listener+"/"+x.Artist)
	case *eventsv1.SubscriptionCancelled:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		x.Cancelled, x.NextAt, x.State = true, time.Time{}, StateCancelling
	case *eventsv1.SubscriptionEnded:
		x, err := sub(e.SubscriptionId)
		if err != nil {
			return err
		}
		x.State, x.NextAt = StateEnded, time.Time{}
		delete(s.Running, x.Listener+"/"+x.Artist)
	default:
		return fmt.Errorf("subscriptions: unexpected event %T", m)
	}
	return nil
}
