package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/eventstore/estest"
	"github.com/fanfare/fanfare/internal/platform/metrics"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func startWriter(t *testing.T, ctx context.Context, store *eventstore.Store, cfg adapters.WriterConfig) (*adapters.BookWriter, context.CancelFunc, chan error) {
	t.Helper()
	w, err := adapters.OpenBookWriter(ctx, store, "USD", domain.DefaultPolicy(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	return w, stop, done
}

func transfer(id, from, to string, amount int64) domain.Request {
	return domain.Request{ID: id, Asset: "USD", Kind: domain.KindTip, Postings: []domain.Posting{{Debit: from, Credit: to, Amount: amount}}}
}

// metricNow reads one metric's current value.
func metricNow(t *testing.T, m prometheus.Metric) *dto.Metric {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// ledgerMetrics are the USD book's refusals for insufficient funds, and
// how many batches and commits its histograms have seen.
func ledgerMetrics(t *testing.T) (refusals float64, batches, commits uint64) {
	t.Helper()
	refusals = metricNow(t, metrics.LedgerRefusals.WithLabelValues("USD", string(domain.ReasonInsufficientFunds))).GetCounter().GetValue()
	batches = metricNow(t, metrics.LedgerBatchSize.WithLabelValues("USD").(prometheus.Metric)).GetHistogram().GetSampleCount()
	commits = metricNow(t, metrics.LedgerCommitSeconds.WithLabelValues("USD").(prometheus.Metric)).GetHistogram().GetSampleCount()
	return refusals, batches, commits
}

// sumAndCheck asserts the per-asset sum is zero and returns balances by id.
func sumAndCheck(t *testing.T, w *adapters.BookWriter) map[string]domain.Balance {
	t.Helper()
	out := map[string]domain.Balance{}
	var sum int64
	w.Read(func(b *domain.Book) error {
		for _, a := range b.Accounts() {
			out[a.ID] = a.Balance
			sum += a.Total
		}
		return nil
	})
	if sum != 0 {
		t.Fatalf("USD balances sum to %d, want 0", sum)
	}
	return out
}

func TestBookWriterBatchesRecoversAndIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	w, stop, done := startWriter(t, ctx, store, adapters.WriterConfig{SnapshotEvery: 3})
	refusals0, batches0, commits0 := ledgerMetrics(t)
	const users = 20
	for i := 0; i < users; i++ {
		if _, err := w.Open(ctx, domain.WalletID(fmt.Sprint("u", i), "USD")); err != nil {
			t.Fatal(err)
		}
		out, err := w.Apply(ctx, domain.Request{ID: fmt.Sprint("fund-", i), Asset: "USD", Kind: domain.KindDeposit,
			Postings: []domain.Posting{{Debit: domain.ExternalID("bank"), Credit: domain.WalletID(fmt.Sprint("u", i), "USD"), Amount: 3000}}})
		if err != nil || !out.Committed() {
			t.Fatalf("fund %d: %+v %v", i, out, err)
		}
	}
	// 400 concurrent transfers in a ring: each user (30.00) sends 20 × 1.00 and receives 20 × 1.00.
	var wg sync.WaitGroup
	for i := 0; i < users; i++ {
		for j := 0; j < 20; j++ {
			wg.Add(1)
			go func(i, j int) {
				defer wg.Done()
				from, to := domain.WalletID(fmt.Sprint("u", i), "USD"), domain.WalletID(fmt.Sprint("u", (i+1)%users), "USD")
				out, err := w.Apply(ctx, transfer(fmt.Sprintf("t-%d-%d", i, j), from, to, 100))
				if err != nil || !out.Committed() {
					t.Errorf("transfer: %+v %v", out, err)
				}
			}(i, j)
		}
	}
	wg.Wait()
	// An overdraft is rejected and changes nothing.
	out, err := w.Apply(ctx, transfer("too-much", domain.WalletID("u0", "USD"), domain.WalletID("u1", "USD"), 5000))
	if err != nil || out.Committed() || out.Reason != domain.ReasonInsufficientFunds {
		t.Fatalf("overdraft: %+v %v", out, err)
	}
	// The writer's metrics saw the batches, each request's commit, and the
	// one refusal.
	refusals, batches, commits := ledgerMetrics(t)
	if refusals != refusals0+1 {
		t.Fatalf("insufficient_funds refusals went from %v to %v, want +1", refusals0, refusals)
	}
	if batches <= batches0 {
		t.Fatalf("batch size histogram count went from %d to %d, want more", batches0, batches)
	}
	if want := commits0 + users + users*20 + 1; commits != want {
		t.Fatalf("commit latency histogram count %d, want %d (one per request)", commits, want)
	}
	// A retry returns the first outcome; a different payload under the same id conflicts.
	again, err := w.Apply(ctx, transfer("t-0-0", domain.WalletID("u0", "USD"), domain.WalletID("u1", "USD"), 100))
	if err != nil || !again.Committed() || !again.Replayed {
		t.Fatalf("retry: %+v %v", again, err)
	}
	conflict, err := w.Apply(ctx, transfer("t-0-0", domain.WalletID("u0", "USD"), domain.WalletID("u1", "USD"), 101))
	if err != nil || conflict.Reason != domain.ReasonIDConflict {
		t.Fatalf("conflict: %+v %v", conflict, err)
	}
	bal := sumAndCheck(t, w)
	for i := 0; i < users; i++ {
		if b := bal[domain.WalletID(fmt.Sprint("u", i), "USD")]; b.Total != 3000 || b.Available != 3000 {
			t.Fatalf("u%d: %+v, want 30.00", i, b)
		}
	}
	if b := bal[domain.ExternalID("bank")]; b.Total != -users*3000 {
		t.Fatalf("external:bank %+v", b)
	}
	var before []byte
	w.Read(func(b *domain.Book) error { before = b.Snapshot(); return nil })
	stop()
	<-done
	if _, _, found, err := store.LoadSnapshot(ctx, adapters.BookStream("USD")); err != nil || !found {
		t.Fatalf("no snapshot of the book (%v)", err)
	}

	// A new writer recovers the same book from snapshot + tail.
	w2, stop2, done2 := startWriter(t, ctx, store, adapters.WriterConfig{})
	defer func() { stop2(); <-done2 }()
	var after []byte
	w2.Read(func(b *domain.Book) error { after = b.Snapshot(); return nil })
	if !bytes.Equal(before, after) {
		t.Fatal("the recovered book differs from the one before the restart")
	}
	again, err = w2.Apply(ctx, transfer("t-0-0", domain.WalletID("u0", "USD"), domain.WalletID("u1", "USD"), 100))
	if err != nil || !again.Replayed {
		t.Fatalf("retry after restart: %+v %v", again, err)
	}
}

// Two writers on one book: the one that appends second is fenced and its
// batch is not in the stream.
func TestSecondWriterIsFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	a, stopA, doneA := startWriter(t, ctx, store, adapters.WriterConfig{})
	defer func() { stopA(); <-doneA }()
	b, stopB, doneB := startWriter(t, ctx, store, adapters.WriterConfig{})
	defer stopB()
	if _, err := a.Open(ctx, domain.WalletID("x", "USD")); err != nil {
		t.Fatal(err)
	}
	_, err := b.Open(ctx, domain.WalletID("y", "USD"))
	if err == nil {
		t.Fatal("the second writer appended beside the first")
	}
	if err := <-doneB; !errors.Is(err, adapters.ErrFenced) {
		t.Fatalf("second writer stopped with %v, want ErrFenced", err)
	}
	if _, err := b.Open(ctx, domain.WalletID("z", "USD")); err == nil {
		t.Fatal("a fenced writer accepted a command")
	}
	// The first writer goes on.
	if _, err := a.Open(ctx, domain.WalletID("w", "USD")); err != nil {
		t.Fatal(err)
	}
	if a.Revision() != 1 {
		t.Fatalf("book revision %d, want 1 (two batches of the first writer)", a.Revision())
	}
}

// Commands that arrive together but would make an event over the store's
// append limit are split over several events, all under the fence.
func TestLargeBatchesAreSplit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	w, stop, done := startWriter(t, ctx, store, adapters.WriterConfig{Linger: 50 * time.Millisecond})
	defer func() { stop(); <-done }()
	if _, err := w.Open(ctx, domain.WalletID("big", "USD")); err != nil {
		t.Fatal(err)
	}
	memo := string(bytes.Repeat([]byte("m"), 4000))
	var wg sync.WaitGroup
	const n = 300
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := domain.Request{ID: fmt.Sprint("big-", i), Asset: "USD", Kind: domain.KindDeposit, Memo: memo}
			for j := 0; j < 64; j++ {
				req.Postings = append(req.Postings, domain.Posting{Debit: domain.ExternalID("bank"), Credit: domain.WalletID("big", "USD"), Amount: 1})
			}
			if out, err := w.Apply(ctx, req); err != nil || !out.Committed() {
				t.Errorf("request %d: %+v %v", i, out, err)
			}
		}(i)
	}
	wg.Wait()
	bal := sumAndCheck(t, w)
	if b := bal[domain.WalletID("big", "USD")]; b.Total != n*64 {
		t.Fatalf("wallet holds %d, want %d", b.Total, n*64)
	}
	// ~300 × 8 KB of decisions cannot fit one 512 KiB event.
	if w.Revision() < 3 {
		t.Fatalf("book stream at revision %d: the batch was not split", w.Revision())
	}
}

// Expired holds are released, and a restarted writer agrees.
func TestHoldExpiryIsLoggedAndReplayed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	w, stop, done := startWriter(t, ctx, store, adapters.WriterConfig{})
	acct := domain.WalletID("h", "USD")
	w.Open(ctx, acct)
	if out, err := w.Apply(ctx, transfer("fund", domain.ExternalID("bank"), acct, 1000)); err != nil || !out.Committed() {
		t.Fatal(out, err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	place := domain.Request{ID: "hold-1", Asset: "USD", Kind: domain.KindWithdrawal,
		Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "h1", Account: acct, Amount: 400, ExpiresAt: t0.Add(time.Minute)}}}
	if out, err := w.Apply(ctx, place); err != nil || !out.Committed() {
		t.Fatal(out, err)
	}
	check := func(w *adapters.BookWriter, held int64) {
		t.Helper()
		if b := sumAndCheck(t, w)[acct]; b.Held != held || b.Available != 1000-held {
			t.Fatalf("balance %+v, want %d held", b, held)
		}
	}
	check(w, 400)
	if err := w.ExpireHolds(ctx, t0); err != nil { // not due yet: nothing happens, nothing is logged
		t.Fatal(err)
	}
	rev := w.Revision()
	check(w, 400)
	if err := w.ExpireHolds(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	check(w, 0)
	if w.Revision() != rev+1 {
		t.Fatalf("the expiry was not logged (revision %d → %d)", rev, w.Revision())
	}
	stop()
	<-done
	w2, stop2, done2 := startWriter(t, ctx, store, adapters.WriterConfig{})
	defer func() { stop2(); <-done2 }()
	check(w2, 0)
}

// The snapshot of a book with 50,000 accounts is over 1 MB, more than one
// append may carry: it is stored in parts and recovery reads it back whole.
func TestBigBookSnapshotsInParts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	w, stop, done := startWriter(t, ctx, store, adapters.WriterConfig{SnapshotEvery: 10})
	const accounts, workers = 50_000, 64
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < accounts; i += workers {
				if _, err := w.Open(ctx, domain.WalletID(fmt.Sprint("user-", i), "USD")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var before []byte
	w.Read(func(b *domain.Book) error { before = b.Snapshot(); return nil })
	stop()
	<-done
	_, data, found, err := store.LoadSnapshot(ctx, adapters.BookStream("USD"))
	if err != nil || !found || len(data) <= 1<<20 {
		t.Fatalf("latest snapshot: %d bytes, found %v, %v; want over 1 MiB", len(data), found, err)
	}
	w2, stop2, done2 := startWriter(t, ctx, store, adapters.WriterConfig{})
	defer func() { stop2(); <-done2 }()
	var after []byte
	w2.Read(func(b *domain.Book) error { after = b.Snapshot(); return nil })
	if !bytes.Equal(before, after) {
		t.Fatal("the book recovered from a snapshot in parts differs")
	}
}

// A writer stopped while it appends has stopped, not failed: Run returns
// nil (a service would otherwise report its own shutdown as an error, as
// it once did in CI), and the requests it could not write are told so.
func TestWriterStoppedMidAppendIsAStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := eventstore.NewStore(estest.Connect(t))
	for round := range 20 {
		wctx, stop := context.WithCancel(ctx)
		var once sync.Once
		// One request per batch; the first appended batch stops the
		// writer while the next requests wait, so it often has a batch
		// in hand when it sees the stop and appends it on a dead context.
		w, err := adapters.OpenBookWriter(ctx, store, "USD", domain.DefaultPolicy(),
			adapters.WriterConfig{MaxBatch: 1, OnBatch: func(*eventsv1.BookBatchAppended) { once.Do(stop) }})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx) }()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				_, err := w.Apply(ctx, transfer(fmt.Sprintf("r%d-%d", round, i), "a", "b", 1))
				if err != nil && wctx.Err() == nil {
					t.Errorf("round %d: request failed before the stop: %v", round, err)
				}
			})
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run = %v, want nil for a stop", round, err)
		}
		wg.Wait()
		stop()
	}
}
