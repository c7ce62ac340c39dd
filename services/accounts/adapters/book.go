package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/metrics"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// ErrFenced means another writer appended to this book: this one must stop,
// because its in-memory book no longer matches the stream.
var ErrFenced = errors.New("accounts: book writer fenced by another writer")

// ErrWriterStopped is returned to requests sent after the writer stopped
// (the service is stopping or being rebuilt): unavailable, try again.
var ErrWriterStopped = apperr.New(apperr.Unavailable, "accounts: book writer stopped")

// BookStream is the stream of an asset's book.
func BookStream(asset string) string { return "book-" + asset }

// WriterConfig tunes a BookWriter.
type WriterConfig struct {
	// MaxBatch bounds the commands folded into one appended event (default 4096).
	MaxBatch int
	// Linger is how long the writer waits for more commands after the first
	// of a batch (default 0: it takes whatever is already queued, so a busy
	// writer batches by itself and an idle one adds no latency).
	Linger time.Duration
	// SnapshotEvery writes a snapshot after this many batches (default 1000).
	SnapshotEvery int
	// OnBatch, when set, sees every appended batch (projections), in order,
	// on the writer goroutine.
	OnBatch func(*eventsv1.BookBatchAppended)
}

// BookWriter is the single writer of one asset's book. It keeps the book in
// memory, folds the commands that arrive together into one BookBatchAppended
// event, and appends it expecting the stream's revision: a second writer
// fails instead of forking the book.
type BookWriter struct {
	store   *eventstore.Store
	asset   string
	cfg     WriterConfig
	metrics metrics.Book

	mu      sync.RWMutex // guards book for queries from other goroutines
	book    *domain.Book
	rev     int64
	batches int
	// logPolicy: the book is new, and its first batch must record the
	// policy it was created under, so a replay starts from the same rules.
	logPolicy bool

	cmds chan *command
	done chan struct{}
	err  error
}

type cmdKind uint8

const (
	cmdRequest cmdKind = iota
	cmdOpen
	cmdExpire
	cmdPolicy
)

type command struct {
	kind    cmdKind
	policy  domain.Policy
	req     domain.Request
	account string
	now     time.Time
	reply   chan reply
	// queued is when the command was handed to the writer (metrics, and
	// the start of its commit span).
	queued time.Time
	// trace is the span the request was asked in; its commit is recorded
	// there (zero: not traced).
	trace trace.SpanContext
}

type reply struct {
	outcome domain.Outcome
	opened  bool
	err     error
}

// OpenBookWriter recovers the asset's book from its latest snapshot plus the
// batches after it (a new book under policy when there is nothing yet).
func OpenBookWriter(ctx context.Context, store *eventstore.Store, asset string, policy domain.Policy, cfg WriterConfig) (*BookWriter, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 4096
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 1000
	}
	w := &BookWriter{store: store, asset: asset, cfg: cfg, rev: -1, cmds: make(chan *command, cfg.MaxBatch), done: make(chan struct{}),
		metrics: metrics.ForBook(asset)}
	if err := w.recover(ctx, policy); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *BookWriter) recover(ctx context.Context, policy domain.Policy) error {
	from := uint64(0)
	book, rev, err := w.loadSnapshot(ctx)
	if err != nil {
		return err
	}
	if book != nil {
		from = uint64(rev + 1)
	}
	last, err := w.store.ReadStream(ctx, BookStream(w.asset), from, func(e eventstore.Event) error {
		b, ok := e.Message.(*eventsv1.BookBatchAppended)
		if !ok {
			return fmt.Errorf("%s@%d: unexpected %T", BookStream(w.asset), e.Revision, e.Message)
		}
		if book == nil {
			// A book starts under the policy its first entry records.
			p := policy
			if pe := b.GetEntries()[0].GetPolicy(); pe != nil {
				if p, err = PolicyFromEvent(pe); err != nil {
					return err
				}
			}
			if book, err = domain.NewBook(w.asset, p); err != nil {
				return err
			}
		}
		return Replay(book, b)
	})
	if err != nil {
		return fmt.Errorf("recover book %s: %w", w.asset, err)
	}
	w.logPolicy = book == nil
	if book == nil {
		if book, err = domain.NewBook(w.asset, policy); err != nil {
			return err
		}
	}
	if last < 0 {
		last = rev
	}
	w.book, w.rev = book, last
	return nil
}

// Replay applies a logged batch to a book and checks that every decision
// comes out as it was recorded: a difference means the log and the code
// disagree, and nothing should be built on that.
func Replay(book *domain.Book, b *eventsv1.BookBatchAppended) error {
	for i, e := range b.Entries {
		switch x := e.Entry.(type) {
		case *eventsv1.BookBatchAppended_Entry_Opened:
			if _, err := book.Open(x.Opened.AccountId); err != nil {
				return fmt.Errorf("replay entry %d: open %s: %w", i, x.Opened.AccountId, err)
			}
		case *eventsv1.BookBatchAppended_Entry_HoldsExpiredAt:
			book.ExpireHolds(x.HoldsExpiredAt.AsTime())
		case *eventsv1.BookBatchAppended_Entry_Policy:
			p, err := PolicyFromEvent(x.Policy)
			if err != nil {
				return fmt.Errorf("replay entry %d: %w", i, err)
			}
			if p.Version > book.Policy().Version { // not the book's creation entry
				if err := book.SetPolicy(p); err != nil {
					return fmt.Errorf("replay entry %d: %w", i, err)
				}
			}
		case *eventsv1.BookBatchAppended_Entry_Decision:
			req, err := RequestFromEvent(x.Decision.Request)
			if err != nil {
				return fmt.Errorf("replay entry %d: %w", i, err)
			}
			out := book.Apply(req)
			if out.Committed() != (x.Decision.GetCommitted() != nil) {
				logged := "rejected"
				if x.Decision.GetCommitted() != nil {
					logged = "committed"
				}
				return fmt.Errorf("replay entry %d (%s): %v when decided again, %s in the log", i, req.ID, out.Status, logged)
			}
			// What a commit moved (captures included) and its sequence must
			// be what deciding it again moves.
			if c := x.Decision.GetCommitted(); c != nil {
				if now := DecisionEntry(&req, out).GetDecision().GetCommitted(); !proto.Equal(c, now) {
					return fmt.Errorf("replay entry %d (%s): logged commit %v, deciding it again commits %v", i, req.ID, c, now)
				}
			}
		}
	}
	return nil
}

func (w *BookWriter) loadSnapshot(ctx context.Context) (*domain.Book, int64, error) {
	rev, data, found, err := w.store.LoadSnapshot(ctx, BookStream(w.asset))
	if err != nil || !found {
		return nil, -1, err
	}
	book, err := domain.Restore(data)
	if err != nil {
		return nil, -1, fmt.Errorf("snapshot of book %s: %w", w.asset, err)
	}
	return book, int64(rev), nil
}

func (w *BookWriter) snapshot(ctx context.Context) {
	w.mu.RLock()
	data := w.book.Snapshot()
	rev := w.rev
	w.mu.RUnlock()
	// A failed snapshot only makes the next recovery replay more.
	_ = w.store.SaveSnapshot(ctx, BookStream(w.asset), uint64(rev), data)
}

// Run writes batches until ctx ends or the writer is fenced or fails.
func (w *BookWriter) Run(ctx context.Context) error {
	defer close(w.done)
	var batch []*command
	for {
		batch = batch[:0]
		select {
		case c := <-w.cmds:
			batch = append(batch, c)
		case <-ctx.Done():
			w.err = ErrWriterStopped
			w.drain(ErrWriterStopped)
			return nil
		}
		var linger <-chan time.Time
		if w.cfg.Linger > 0 {
			linger = time.After(w.cfg.Linger)
		}
	collect:
		for len(batch) < w.cfg.MaxBatch {
			if linger == nil {
				select {
				case c := <-w.cmds:
					batch = append(batch, c)
				default:
					break collect
				}
			} else {
				select {
				case c := <-w.cmds:
					batch = append(batch, c)
				case <-linger:
					break collect
				}
			}
		}
		if err := w.write(ctx, batch); err != nil {
			if ctx.Err() != nil {
				// Stopped mid-append, not failed: the batch was answered
				// with the error and the next start recovers from the store.
				w.err = ErrWriterStopped
				w.drain(ErrWriterStopped)
				return nil
			}
			w.err = err
			w.drain(err)
			return err
		}
	}
}

func (w *BookWriter) drain(err error) {
	for {
		select {
		case c := <-w.cmds:
			c.reply <- reply{err: err}
		default:
			return
		}
	}
}

// write applies a batch to the book, appends it, and answers it. If the
// append fails the in-memory book is ahead of the stream: the writer stops
// (fenced) or rebuilds the book from the store before going on.
func (w *BookWriter) write(ctx context.Context, batch []*command) error {
	replies := make([]reply, len(batch))
	ev := &eventsv1.BookBatchAppended{Asset: w.asset, Entries: make([]*eventsv1.BookBatchAppended_Entry, 0, len(batch))}
	w.mu.Lock()
	policy := w.book.Policy()
	if w.logPolicy {
		ev.Entries = append(ev.Entries, policyEntry(policy))
	}
	for i, c := range batch {
		switch c.kind {
		case cmdPolicy:
			err := w.book.SetPolicy(c.policy)
			replies[i] = reply{err: err}
			if err == nil {
				ev.Entries = append(ev.Entries, policyEntry(c.policy))
			}
		case cmdOpen:
			opened, err := w.book.Open(c.account)
			replies[i] = reply{opened: opened, err: err}
			if err == nil && opened {
				ev.Entries = append(ev.Entries, openedEntry(c.account, w.asset))
			}
		case cmdExpire:
			// ExpireHolds moves the book's clock, which later holds are
			// checked against: run it only when a hold is due, and log it
			// every time, so a replay moves the clock the same way.
			replies[i] = reply{}
			if next := w.book.NextExpiry(); !next.IsZero() && !next.After(c.now) {
				w.book.ExpireHolds(c.now)
				ev.Entries = append(ev.Entries, expiredEntry(c.now))
			}
		case cmdRequest:
			out := w.book.Apply(c.req)
			replies[i] = reply{outcome: out}
			if !out.Replayed {
				ev.Entries = append(ev.Entries, DecisionEntry(&c.req, out))
			}
		}
	}
	w.mu.Unlock()
	// One event per chunk of entries, each well under the store's append
	// limit (1 MiB by default), appended in order under the fence.
	var chunk []*eventsv1.BookBatchAppended_Entry
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		b := &eventsv1.BookBatchAppended{Asset: w.asset, Entries: chunk}
		chunk, size = nil, 0
		return w.append(ctx, b, policy)
	}
	for _, e := range ev.Entries {
		n := proto.Size(e)
		if size+n > maxBatchBytes {
			if err := flush(); err != nil {
				return w.appendFailed(ctx, batch, policy, err)
			}
		}
		chunk = append(chunk, e)
		size += n
	}
	if err := flush(); err != nil {
		return w.appendFailed(ctx, batch, policy, err)
	}
	if len(ev.Entries) > 0 {
		w.logPolicy = false
	}
	w.observe(batch, replies)
	w.traceCommits(ctx, batch, replies)
	for i, c := range batch {
		c.reply <- replies[i]
	}
	return nil
}

// observe records a durably written batch in the metrics: how many ledger
// requests it held, how long each waited since it was queued, and the
// requests it newly rejected (a replayed outcome was counted the first
// time).
func (w *BookWriter) observe(batch []*command, replies []reply) {
	requests := 0
	now := time.Now()
	for i, c := range batch {
		if c.kind != cmdRequest {
			continue
		}
		requests++
		w.metrics.ObserveCommit(now.Sub(c.queued))
		if out := replies[i].outcome; !out.Committed() && !out.Replayed {
			w.metrics.CountRefusal(string(out.Reason))
		}
	}
	if requests > 0 {
		w.metrics.ObserveBatch(requests)
	}
}

// traceCommits records a "ledger commit" span in the trace of every traced
// request of a durably written batch, from when the request was queued to
// now: one append serves many traces, so each gets its own span of it.
func (w *BookWriter) traceCommits(ctx context.Context, batch []*command, replies []reply) {
	for i, c := range batch {
		if c.kind != cmdRequest || !c.trace.IsValid() {
			continue
		}
		_, span := tracing.Start(trace.ContextWithSpanContext(ctx, c.trace), "ledger commit", trace.WithTimestamp(c.queued))
		if span.IsRecording() {
			out := replies[i].outcome
			span.SetAttributes(attribute.String("fanfare.ledger.request_id", c.req.ID), attribute.String("fanfare.ledger.book", w.asset),
				attribute.String("fanfare.ledger.status", out.Status.String()), attribute.Bool("fanfare.ledger.replayed", out.Replayed),
				attribute.Int64("fanfare.ledger.revision", w.rev), attribute.Int("fanfare.ledger.batch_size", len(batch)))
			if out.Reason != "" {
				span.SetAttributes(attribute.String("fanfare.ledger.reason", string(out.Reason)))
			}
		}
		span.End()
	}
}

// maxBatchBytes bounds one appended batch event.
const maxBatchBytes = 512 << 10

func (w *BookWriter) append(ctx context.Context, b *eventsv1.BookBatchAppended, policy domain.Policy) error {
	ctx = eventstore.WithCause(ctx, eventstore.Cause{PolicyVersion: policy.Version})
	if _, err := w.store.Append(ctx, BookStream(w.asset), expected(w.rev), eventstore.Pending{ID: uuid.New(), Message: b}); err != nil {
		return err
	}
	w.mu.Lock()
	w.rev++
	w.mu.Unlock()
	w.batches++
	if w.cfg.OnBatch != nil {
		w.cfg.OnBatch(b)
	}
	if w.batches%w.cfg.SnapshotEvery == 0 {
		w.snapshot(ctx)
	}
	return nil
}

// appendFailed answers the batch with the failure. The book in memory is
// ahead of the stream now: a fenced writer stops; otherwise the outcome of
// the append is unknown and the book is rebuilt from what is stored.
func (w *BookWriter) appendFailed(ctx context.Context, batch []*command, policy domain.Policy, err error) error {
	for _, c := range batch {
		c.reply <- reply{err: fmt.Errorf("accounts: book %s unavailable: %w", w.asset, err)}
	}
	if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		return fmt.Errorf("%w (book %s at revision %d)", ErrFenced, w.asset, w.rev)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if rerr := w.recover(ctx, policy); rerr != nil {
		return fmt.Errorf("book %s: append failed (%v) and recovery failed: %w", w.asset, err, rerr)
	}
	return nil
}

func expected(rev int64) esdb.ExpectedRevision {
	if rev < 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(uint64(rev))
}

func (w *BookWriter) submit(ctx context.Context, c *command) reply {
	if err := w.enqueue(ctx, c); err != nil {
		return reply{err: err}
	}
	return w.await(ctx, c)
}

// enqueue hands a command to the writer.
func (w *BookWriter) enqueue(ctx context.Context, c *command) error {
	c.reply = make(chan reply, 1)
	c.queued = time.Now()
	select {
	case <-w.done:
		return w.stopped()
	default:
	}
	select {
	case w.cmds <- c:
		return nil
	case <-w.done:
		return w.stopped()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// await waits for an enqueued command's answer.
func (w *BookWriter) await(ctx context.Context, c *command) reply {
	select {
	case r := <-c.reply:
		return r
	case <-w.done:
		// The writer answers everything it took before stopping; a command
		// queued after that gets the stop error.
		select {
		case r := <-c.reply:
			return r
		default:
			return reply{err: w.stopped()}
		}
	case <-ctx.Done():
		// The command may still be decided; its id makes a retry safe.
		return reply{err: ctx.Err()}
	}
}

func (w *BookWriter) stopped() error {
	if w.err != nil {
		return w.err
	}
	return ErrWriterStopped
}

// Apply submits a request and waits until its outcome is durable. Its
// commit is recorded in the trace of ctx.
func (w *BookWriter) Apply(ctx context.Context, req domain.Request) (domain.Outcome, error) {
	r := w.submit(ctx, &command{kind: cmdRequest, req: req, trace: trace.SpanContextFromContext(ctx)})
	return r.outcome, r.err
}

// Open opens an account in the book (idempotent); true when it was new.
func (w *BookWriter) Open(ctx context.Context, account string) (bool, error) {
	r := w.submit(ctx, &command{kind: cmdOpen, account: account})
	return r.opened, r.err
}

// ExpireHolds voids the holds whose expiry is at or before now.
func (w *BookWriter) ExpireHolds(ctx context.Context, now time.Time) error {
	return w.submit(ctx, &command{kind: cmdExpire, now: now}).err
}

// Read runs fn with the book under a read lock (queries).
func (w *BookWriter) Read(fn func(*domain.Book) error) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return fn(w.book)
}

// Revision is the revision of the last appended batch (-1: none).
func (w *BookWriter) Revision() int64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.rev
}

// Asset is the book's asset code.
func (w *BookWriter) Asset() string { return w.asset }

// ApplyAll submits requests in order and waits for all their outcomes: the
// writer folds them into as few appends as their size allows. On error some
// may have been decided; their ids make a resubmission safe. Their commits
// are recorded in the trace of ctx.
func (w *BookWriter) ApplyAll(ctx context.Context, reqs []domain.Request) ([]domain.Outcome, error) {
	return w.ApplyTraced(ctx, reqs, nil)
}

// ApplyTraced is ApplyAll for requests asked in different traces (a batch
// of Kafka messages): traces[i] is the span reqs[i] was asked in, where its
// commit is recorded (zero: not traced). Without traces, every request is
// in the trace of ctx.
func (w *BookWriter) ApplyTraced(ctx context.Context, reqs []domain.Request, traces []trace.SpanContext) ([]domain.Outcome, error) {
	cmds := make([]*command, len(reqs))
	ctxTrace := trace.SpanContextFromContext(ctx)
	for i := range reqs {
		cmds[i] = &command{kind: cmdRequest, req: reqs[i], trace: ctxTrace}
		if traces != nil {
			cmds[i].trace = traces[i]
		}
		if err := w.enqueue(ctx, cmds[i]); err != nil {
			return nil, err
		}
	}
	outs := make([]domain.Outcome, len(reqs))
	for i, c := range cmds {
		r := w.await(ctx, c)
		if r.err != nil {
			return nil, r.err
		}
		outs[i] = r.outcome
	}
	return outs, nil
}

// SetPolicy puts a newer policy in force from the next request on, and logs
// it in the book so replays switch at the same point.
func (w *BookWriter) SetPolicy(ctx context.Context, p domain.Policy) error {
	return w.submit(ctx, &command{kind: cmdPolicy, policy: p}).err
}

func policyEntry(p domain.Policy) *eventsv1.BookBatchAppended_Entry {
	return &eventsv1.BookBatchAppended_Entry{Entry: &eventsv1.BookBatchAppended_Entry_Policy{Policy: PolicyToEvent(p, "", "")}}
}
