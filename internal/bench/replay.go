package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/audit"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func init() { register("replay", replayScenario) }

// replayEvents is how many events the replay scenario seeds (issue 10: at
// least 5 million).
const replayEvents = 5_000_000

// replayScenario seeds a log shaped like a busy day (per 1,000 events: 900
// heartbeat batches, 99 counted plays and one ledger batch of 50 tips
// decided by the real book code), then replays it with the audit (decode,
// hash chain, every ledger decision taken again) and reports events/s. The
// replay must find the log clean.
func replayScenario(ctx context.Context, o Options) (*Result, error) {
	client, url, _, done, err := openStore(o, "replay")
	if err != nil {
		return nil, err
	}
	defer done()
	store := eventstore.NewStore(client)

	o.Log("seeding %d events", replayEvents)
	t0 := time.Now()
	seeded, err := seedReplay(ctx, store, replayEvents)
	if err != nil {
		return nil, err
	}
	seedSecs := time.Since(t0).Seconds()

	o.Log("replaying")
	start := time.Now()
	r, err := audit.Replay(ctx, url, audit.Options{ProgressEvery: 1_000_000, Progress: func(n, _, _ uint64) { o.Log("replayed %d", n) }})
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	if !r.Clean() {
		return nil, fmt.Errorf("the seeded log replays with violations: %v", r.Violations[0])
	}
	if r.Events < seeded {
		return nil, fmt.Errorf("replayed %d events of the %d seeded", r.Events, seeded)
	}
	rate := float64(r.Events) / secs
	res := &Result{Scenario: "replay", Pass: true, Floors: map[string]any{}, Figures: map[string]any{
		"events": r.Events, "seconds": secs, "events_per_sec": rate, "hash": r.Hash,
		"seeded": map[string]any{"events": seeded, "seconds": seedSecs},
		"mix":    "per 1,000 events: 900 HeartbeatBatchRecorded, 99 PlayCounted, 1 BookBatchAppended of 50 tips",
	}}
	res.atLeast("events_per_sec", rate, 300_000)
	return res, nil
}

// seedReplay appends n events in the scenario's mix and returns how many
// it appended.
func seedReplay(ctx context.Context, store *eventstore.Store, n int) (uint64, error) {
	const wallets = 1000
	book, err := newSeedBook("USD")
	if err != nil {
		return 0, err
	}
	// The book's first batch: its policy, the wallets and their deposits.
	first := &eventsv1.BookBatchAppended{Asset: "USD", Entries: []*eventsv1.BookBatchAppended_Entry{seedPolicyEntry()}}
	decide := book.decide
	for i := range wallets {
		id := domain.WalletID(fmt.Sprint("fan-", i), "USD")
		if err := book.open(first, id); err != nil {
			return 0, err
		}
		if err := decide(first, domain.Request{ID: fmt.Sprint("dep-", i), Asset: "USD", Kind: domain.KindDeposit,
			Postings: []domain.Posting{{Debit: domain.ExternalID("bank"), Credit: id, Amount: 1_000_000}}}); err != nil {
			return 0, err
		}
	}
	if _, err := store.Append(ctx, adapters.BookStream("USD"), esdb.Any{}, eventstore.Pending{Message: first}); err != nil {
		return 0, err
	}
	seeded := uint64(1)
	at := timestamppb.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	tip := 0
	for round := 0; int(seeded) < n; round++ {
		batch := make([]eventstore.Pending, 0, 1000)
		for i := range 999 {
			var m proto.Message
			session := fmt.Sprintf("%02x-s%d", i%16, round*1000+i)
			if i%10 == 9 {
				m = &eventsv1.PlayCounted{PlayId: "play-" + session, SessionId: session, SongId: fmt.Sprint("song-", i%200),
					ListenerId: fmt.Sprint("fan-", i%wallets), NodeId: "node", SongPlayNumber: uint64(round + 1), ListenerPlayNumber: 1}
			} else {
				m = &eventsv1.HeartbeatBatchRecorded{Sessions: []*eventsv1.HeartbeatsCredited{{SessionId: session, LastSeq: 3,
					Ranges: []*eventsv1.HeartbeatsCredited_Range{{FromMs: 0, ToMs: 10_000}}, CoverageMs: 10_000, At: at}}}
			}
			batch = append(batch, eventstore.Pending{Message: m})
		}
		tips := &eventsv1.BookBatchAppended{Asset: "USD"}
		for range 50 {
			from, to := tip%wallets, (tip*7+1)%wallets
			if from == to {
				to = (to + 1) % wallets
			}
			tip++
			if err := decide(tips, domain.Request{ID: fmt.Sprint("tip-", tip), Asset: "USD", Kind: domain.KindTip,
				Postings: []domain.Posting{{Debit: domain.WalletID(fmt.Sprint("fan-", from), "USD"), Credit: domain.WalletID(fmt.Sprint("fan-", to), "USD"), Amount: 1}}}); err != nil {
				return 0, err
			}
		}
		if _, err := store.Append(ctx, fmt.Sprint("plays-", round%16), esdb.Any{}, batch...); err != nil {
			return 0, err
		}
		if _, err := store.Append(ctx, adapters.BookStream("USD"), esdb.Any{}, eventstore.Pending{Message: tips}); err != nil {
			return 0, err
		}
		seeded += 1000
	}
	return seeded, nil
}

// seedBook decides seed requests with the real book code and logs them as
// the ledger's batches do.
type seedBook struct{ book *domain.Book }

func newSeedBook(asset string) (seedBook, error) {
	b, err := domain.NewBook(asset, domain.DefaultPolicy())
	return seedBook{b}, err
}

// decide applies req and appends the decision to b; seeds are meant to
// commit.
func (s seedBook) decide(b *eventsv1.BookBatchAppended, req domain.Request) error {
	out := s.book.Apply(req)
	if !out.Committed() {
		return fmt.Errorf("seed request %s: %v", req.ID, out.Err)
	}
	b.Entries = append(b.Entries, adapters.DecisionEntry(&req, out))
	return nil
}

// open opens account in the book and logs it in b.
func (s seedBook) open(b *eventsv1.BookBatchAppended, account string) error {
	if _, err := s.book.Open(account); err != nil {
		return err
	}
	b.Entries = append(b.Entries, &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Opened{
		Opened: &eventsv1.AccountOpened{AccountId: account, Asset: s.book.Asset().Code}}})
	return nil
}

// seedPolicyEntry starts a seeded book under the default policy.
func seedPolicyEntry() *eventsv1.BookBatchAppended_Entry {
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Policy{Policy: adapters.PolicyToEvent(domain.DefaultPolicy(), "bench", "seed")}}
}
