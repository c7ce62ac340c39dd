package domain_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"google.golang.org/protobuf/proto"
)

func TestAddMonthsClampsToTheMonthsLastDay(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 30, 0, 0, time.UTC) }
	for _, c := range []struct {
		from time.Time
		n    int
		want time.Time
	}{
		{at(2026, 1, 31), 1, at(2026, 2, 28)},
		{at(2028, 1, 31), 1, at(2028, 2, 29)},
		{at(2026, 1, 31), 2, at(2026, 3, 31)},
		{at(2026, 3, 31), 1, at(2026, 4, 30)},
		{at(2026, 12, 15), 1, at(2027, 1, 15)},
		{at(2026, 11, 30), 3, at(2027, 2, 28)},
		{at(2026, 5, 1), 0, at(2026, 5, 1)},
	} {
		if got := domain.AddMonths(c.from, c.n); !got.Equal(c.want) {
			t.Errorf("%v + %d months = %v, want %v", c.from, c.n, got, c.want)
		}
	}
}

// ledger answers the state's pending charges: commit or reject.
func decision(tx string, commit bool) *eventsv1.BookBatchAppended_Decision {
	d := &eventsv1.BookBatchAppended_Decision{Request: &eventsv1.LedgerTransactionRequested{TransactionId: tx}}
	if commit {
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Committed{Committed: &eventsv1.LedgerTransactionCommitted{TransactionId: tx}}
	} else {
		d.Outcome = &eventsv1.BookBatchAppended_Decision_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{TransactionId: tx,
			Reason: eventsv1.LedgerTransactionRejected_REASON_INSUFFICIENT_FUNDS}}
	}
	return d
}

// A random walk of subscribing, cancelling, clock moves and ledger answers
// (answers repeated, as a redelivery would) keeps the rules: at most one
// charge in flight per subscription, a period paid at most once and never
// charged before it starts, at most 1 + retries attempts per period and a
// lapse exactly after them, nothing charged after a cancellation or an
// end, paid periods consecutive — and replaying the events gives the same
// state.
func TestSubscriptionsRandomWalk(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= 300; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { walk(t, seed, seen) })
	}
	// The walk must reach every outcome, or it proves little.
	for _, typ := range []string{"SubscriptionCharged", "SubscriptionChargeFailed", "SubscriptionLapsed", "SubscriptionCancelled", "SubscriptionEnded"} {
		if seen[typ] < 10 {
			t.Errorf("the walk produced %d %s events", seen[typ], typ)
		}
	}
}

func walk(t *testing.T, seed uint64, seen map[string]int) {
	r := rand.New(rand.NewPCG(seed, 7))
	rules := domain.DefaultRules()
	s := domain.NewSubscriptions(rules)
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	var log []proto.Message
	type track struct {
		paid      map[uint32]int
		attempts  map[uint32]int
		stopped   bool // cancelled, ended or lapsed
		lastPaid  uint32
		requested int
	}
	tracks := map[string]*track{}
	record := func(evs []proto.Message, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, e := range evs {
			log = append(log, e)
			seen[string(e.ProtoReflect().Descriptor().Name())]++
			switch e := e.(type) {
			case *eventsv1.SubscriptionStarted:
				tracks[e.SubscriptionId] = &track{paid: map[uint32]int{}, attempts: map[uint32]int{}}
			case *eventsv1.SubscriptionChargeRequested:
				tr := tracks[e.SubscriptionId]
				if tr.stopped {
					t.Fatalf("seed %d: charge after stop: %v", seed, e)
				}
				if now.Before(e.PeriodStart.AsTime()) {
					t.Fatalf("seed %d: period %d charged at %v before its start %v", seed, e.Period, now, e.PeriodStart.AsTime())
				}
				tr.attempts[e.Period]++
				if tr.attempts[e.Period] > 1+int(rules.ChargeRetries) {
					t.Fatalf("seed %d: %d attempts at period %d", seed, tr.attempts[e.Period], e.Period)
				}
				if tr.paid[e.Period] > 0 {
					t.Fatalf("seed %d: paid period %d charged again", seed, e.Period)
				}
				tr.requested++
			case *eventsv1.SubscriptionCharged:
				tr := tracks[e.SubscriptionId]
				tr.paid[e.Period]++
				if e.Period != tr.lastPaid+1 {
					t.Fatalf("seed %d: period %d paid after %d", seed, e.Period, tr.lastPaid)
				}
				tr.lastPaid = e.Period
			case *eventsv1.SubscriptionLapsed:
				tr := tracks[e.SubscriptionId]
				if tr.attempts[e.Period] != 1+int(rules.ChargeRetries) {
					t.Fatalf("seed %d: lapsed after %d attempts", seed, tr.attempts[e.Period])
				}
				tr.stopped = true
			case *eventsv1.SubscriptionCancelled, *eventsv1.SubscriptionEnded:
				tracks[subID(e)].stopped = true
			}
		}
	}
	listeners := []string{"l1", "l2", "l3"}
	for step := 0; step < 200; step++ {
		switch r.IntN(6) {
		case 0:
			l := listeners[r.IntN(len(listeners))]
			_, evs, err := s.Subscribe(fmt.Sprintf("sub-%d", step), l, "artist", now)
			record(evs, err)
		case 1:
			for id, sub := range s.Subs {
				if r.IntN(3) == 0 {
					record(s.Cancel(id, sub.Listener, now))
				}
			}
		case 2, 3:
			for tx := range s.Pending {
				d := decision(tx, r.IntN(3) > 0)
				record(s.Decide(d, now))
				record(s.Decide(d, now)) // redelivered: nothing more
			}
		default:
			now = now.Add(time.Duration(r.IntN(10*24)) * time.Hour)
			record(s.Due(now))
		}
		perSub := map[string]int{}
		for tx, id := range s.Pending {
			perSub[id]++
			if s.Subs[id].PendingTx != tx {
				t.Fatalf("seed %d: pending %s not the subscription's %s", seed, tx, s.Subs[id].PendingTx)
			}
		}
		for id, n := range perSub {
			if n > 1 {
				t.Fatalf("seed %d: %d charges in flight for %s", seed, n, id)
			}
		}
	}
	replayed := domain.NewSubscriptions(rules)
	for _, e := range log {
		if err := replayed.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(replayed, s) {
		t.Fatalf("seed %d: replay differs", seed)
	}
}

func subID(m proto.Message) string {
	switch e := m.(type) {
	case *eventsv1.SubscriptionCancelled:
		return e.SubscriptionId
	case *eventsv1.SubscriptionEnded:
		return e.SubscriptionId
	}
	return ""
}
