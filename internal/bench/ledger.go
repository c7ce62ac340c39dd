package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/services/accounts"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

func init() { register("ledger", ledgerScenario) }

// ledgerPostings is the postings per transaction: a payment split four ways.
const ledgerPostings = 4

// ledgerScenario measures committed postings per second, every batch
// fsync'd in the event store: first through the in-process book API
// (BookWriter.Apply from many goroutines, with p50/p99 commit latency),
// then through Kafka (LedgerTransactionRequested events appended by a
// "saga", forwarded, consumed and decided by the accounts service).
func ledgerScenario(ctx context.Context, o Options) (*Result, error) {
	st, err := startStack(ctx, "ledger")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	store, broker := st.store, st.broker
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	pubKey, _, _ := ed25519.GenerateKey(nil)
	svc, err := accounts.New(ctx, accounts.Config{Store: store, Brokers: broker.Brokers(), IdentityKey: pubKey})
	if err != nil {
		return nil, err
	}
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(ctx) }()

	book := svc.App.Books["USD"]
	const wallets = 1000
	for i := 0; i < wallets; i++ {
		id := domain.WalletID(fmt.Sprint("bench", i), "USD")
		if _, err := book.Open(ctx, id); err != nil {
			return nil, err
		}
	}
	// A payment: a listener pays 4 payees of one song.
	tx := func(id string, n int) domain.Request {
		req := domain.Request{ID: id, Asset: "USD", Kind: domain.KindTip}
		for p := 0; p < ledgerPostings; p++ {
			req.Postings = append(req.Postings, domain.Posting{Debit: domain.ExternalID("bank"),
				Credit: domain.WalletID(fmt.Sprint("bench", (n*7+p*131)%wallets), "USD"), Amount: int64(1 + p)})
		}
		return req
	}
	res := &Result{Scenario: "ledger", Figures: map[string]any{}, Floors: map[string]any{}, Pass: true}

	// In process.
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	committed := 0
	const workers = 256
	deadline := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				out, err := book.Apply(ctx, tx(fmt.Sprintf("ip-%d-%d", w, i), w*100000+i))
				d := time.Since(t0)
				mu.Lock()
				if err == nil && !out.Committed() {
					err = out.Err
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				committed++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	el := time.Since(start)
	postings := float64(committed*ledgerPostings) / el.Seconds()
	sortDurations(lat)
	p50, p99 := percentileMS(lat, 0.5), percentileMS(lat, 0.99)
	o.Log("ledger in-process: %d transactions (%d postings each) in %s = %.0f postings/s, commit p50 %.2f ms p99 %.2f ms", committed, ledgerPostings, el.Round(time.Millisecond), postings, p50, p99)
	res.Figures["in_process"] = map[string]any{"transactions": committed, "postings_per_tx": ledgerPostings, "postings_per_sec": round1(postings),
		"tx_per_sec": round1(float64(committed) / el.Seconds()), "commit_p50_ms": p50, "commit_p99_ms": p99, "concurrency": workers}
	res.atLeast("in_process.postings_per_sec", postings, 100000)

	// Through Kafka: requests appended as events (100 per append, over many
	// saga streams), decided by the service's consumer.
	seqBefore := sequence(book)
	n := int(30000 * o.Duration.Seconds() / 3)
	if n < 3000 {
		n = 3000
	}
	start = time.Now()
	const appenders, perAppend = 8, 100
	errs := make(chan error, appenders)
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			for i := a * perAppend; i < n; i += appenders * perAppend {
				var pending []eventstore.Pending
				for j := i; j < i+perAppend && j < n; j++ {
					req := tx(fmt.Sprint("kafka-", j), j)
					pending = append(pending, eventstore.Pending{Message: adapters.RequestToEvent(&req)})
				}
				if _, err := store.Append(ctx, fmt.Sprintf("benchsaga-%d", (i/perAppend)%64), esdb.Any{}, pending...); err != nil {
					errs <- err
					return
				}
			}
		}(a)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for sequence(book)-seqBefore < uint64(n) {
		if time.Since(start) > 5*time.Minute {
			return nil, fmt.Errorf("only %d of %d Kafka requests decided", sequence(book)-seqBefore, n)
		}
		select {
		case err := <-svcDone:
			return nil, fmt.Errorf("accounts service stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	el = time.Since(start)
	postings = float64(n*ledgerPostings) / el.Seconds()
	o.Log("ledger through Kafka: %d transactions appended→decided in %s = %.0f postings/s", n, el.Round(time.Millisecond), postings)
	res.Figures["through_kafka"] = map[string]any{"transactions": n, "postings_per_tx": ledgerPostings, "postings_per_sec": round1(postings),
		"tx_per_sec": round1(float64(n) / el.Seconds())}
	res.atLeast("through_kafka.postings_per_sec", postings, 30000)
	return res, nil
}

func sequence(w *adapters.BookWriter) uint64 {
	var s uint64
	w.Read(func(b *domain.Book) error { s = b.Sequence(); return nil })
	return s
}
