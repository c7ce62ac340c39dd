package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// ErrWriterStopped is returned by Writer.Do once the writer has stopped
// (its part is stopping or being rebuilt): unavailable, try again.
var ErrWriterStopped = apperr.New(apperr.Unavailable, "eventstore: writer stopped")

// WriterOptions tune a Writer of state S.
type WriterOptions[S any] struct {
	// MaxBatch bounds how many Do calls share one decision round (default
	// 1024).
	MaxBatch int
	// MaxAppendBytes splits a batch's events over several appends, at Do
	// call boundaries, so each stays under the store's append limit
	// (default 900 KiB of 1 MiB).
	MaxAppendBytes int
	// Retries bounds how often a batch is decided again after another
	// writer of the stream got its append in first (default 16).
	Retries int
	// SnapshotEvery saves a snapshot of the state once this many events were
	// appended since the last one (0: never). Needs Snapshot and Restore.
	SnapshotEvery uint64
	// Snapshot returns the state as one message. It runs inside the writer,
	// so it sees a quiet state.
	Snapshot func(S) (proto.Message, error)
	// Restore loads a snapshot message into a fresh state.
	Restore func(S, proto.Message) error
}

// Writer keeps the state of one stream in memory and appends the events
// that change it. The Do calls that arrive while an append is in flight
// are decided one after another on the state and their events go out
// together (group commit), expecting the revision the state was decided
// at, so a decision is only kept if nothing else reached the log first.
//
// Several writers (service instances) may write one stream. Before each
// batch a writer reads what the others appended; when it still loses a
// race, it rebuilds the state from the log (latest snapshot, then the
// events after it) and decides the batch again. Every kept decision was
// therefore made on the whole log before it — what keeps counters and
// numbers exact however many instances run — and is only slower when
// instances contend for the same stream.
type Writer[S any] struct {
	store    *Store
	stream   string
	newState func() S
	apply    func(S, Event) error
	state    S
	rev      int64
	snapRev  int64 // revision of the last snapshot saved or loaded (-1: none)
	opts     WriterOptions[S]

	queue chan *writerJob[S]
	done  chan struct{}
	mu    sync.Mutex
	err   error
	// saving is closed when the snapshot being saved is stored (nil: none
	// since the start; writer goroutine only).
	saving chan struct{}
}

type writerJob[S any] struct {
	ctx    context.Context
	fn     func(S) ([]proto.Message, error)
	result chan error
	evs    []proto.Message
	err    error
}

// OpenWriter rebuilds the state of stream (newState, then the latest
// snapshot, then apply for every later event) and returns its writer; call
// Run to start it.
func OpenWriter[S any](ctx context.Context, store *Store, stream string, newState func() S, apply func(S, Event) error, opts WriterOptions[S]) (*Writer[S], error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxAppendBytes <= 0 {
		opts.MaxAppendBytes = 900 << 10
	}
	if opts.Retries <= 0 {
		opts.Retries = 16
	}
	if opts.SnapshotEvery > 0 && (opts.Snapshot == nil || opts.Restore == nil) {
		return nil, fmt.Errorf("writer of %s: snapshots need both Snapshot and Restore", stream)
	}
	w := &Writer[S]{store: store, stream: stream, newState: newState, apply: apply, opts: opts, snapRev: -1,
		queue: make(chan *writerJob[S], opts.MaxBatch), done: make(chan struct{})}
	if err := w.load(ctx); err != nil {
		return nil, fmt.Errorf("open writer of %s: %w", stream, err)
	}
	return w, nil
}

// load rebuilds the state from the log. A snapshot that cannot be read or
// restored is passed over: replaying the whole stream gives the same state.
func (w *Writer[S]) load(ctx context.Context) error {
	state, from, snapRev := w.newState(), uint64(0), int64(-1)
	if w.opts.SnapshotEvery > 0 {
		rev, msg, found, err := w.store.loadMessage(ctx, w.stream)
		if err == nil && found {
			if err := w.opts.Restore(state, msg); err == nil {
				from, snapRev = rev+1, int64(rev)
			} else {
				state = w.newState()
			}
		}
	}
	last, err := w.store.ReadStream(ctx, w.stream, from, func(e Event) error { return w.apply(state, e) })
	if err != nil {
		return err
	}
	if last < 0 && from > 0 {
		return fmt.Errorf("%s: snapshot at revision %d but no stream", w.stream, from-1)
	}
	w.state, w.rev, w.snapRev = state, last, snapRev
	return nil
}

// errApply marks a catch-up that failed inside apply: the state may be
// half-changed, so the writer must rebuild it.
type errApply struct{ err error }

func (e errApply) Error() string { return e.err.Error() }
func (e errApply) Unwrap() error { return e.err }

// catchUp applies what other writers appended since the writer's revision.
func (w *Writer[S]) catchUp(ctx context.Context) error {
	_, err := w.store.ReadStream(ctx, w.stream, uint64(w.rev+1), func(e Event) error {
		if err := w.apply(w.state, e); err != nil {
			return errApply{err}
		}
		w.rev = int64(e.Revision)
		return nil
	})
	return err
}

// Revision is the stream's last revision as this writer knows it (-1: empty).
// Only meaningful from inside Do or after Run returned.
func (w *Writer[S]) Revision() int64 { return w.rev }

// Do runs fn on the state inside the writer and returns once the events fn
// returned are appended. fn must record its changes in the events it
// returns, leave the state untouched when it returns an error (which Do
// then returns, appending nothing for it), and have no other effect than
// on the state and its own results: it runs again when its batch lost a
// race with another writer. Do returns ErrWriterStopped (or the error that
// stopped the writer) when the writer stopped, and ErrConflict when other
// writers kept winning for every retry.
func (w *Writer[S]) Do(ctx context.Context, fn func(S) ([]proto.Message, error)) error {
	j := &writerJob[S]{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case w.queue <- j:
	case <-w.done:
		return w.stoppedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.result:
		return err
	case <-w.done:
		// The job may have been taken just before the stop: its result, if
		// any, is already buffered.
		select {
		case err := <-j.result:
			return err
		default:
			return w.stoppedErr()
		}
	}
}

func (w *Writer[S]) stoppedErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("%w: %v", ErrWriterStopped, w.err)
	}
	return ErrWriterStopped
}

// Run writes until ctx ends (nil) or the state can no longer be rebuilt
// from the log (that error).
func (w *Writer[S]) Run(ctx context.Context) (err error) {
	defer func() {
		if w.saving != nil {
			<-w.saving
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		close(w.done)
	}()
	for {
		var batch []*writerJob[S]
		select {
		case <-ctx.Done():
			return nil
		case j := <-w.queue:
			batch = append(batch, j)
		}
	more:
		for len(batch) < w.opts.MaxBatch {
			select {
			case j := <-w.queue:
				batch = append(batch, j)
			default:
				break more
			}
		}
		if err := w.write(ctx, batch); err != nil {
			stopped := ctx.Err() != nil // mid-append: a stop, not a failure
			if stopped {
				err = ErrWriterStopped
			}
			for _, j := range batch {
				select {
				case j.result <- err:
				default: // answered before the failure
				}
			}
			if stopped {
				return nil
			}
			return err
		}
		w.maybeSnapshot(ctx)
	}
}

// write decides a batch and appends its events; the jobs learn the outcome
// only after the append, so nobody sees a decision the log may not keep.
// It returns an error only when the writer must stop.
func (w *Writer[S]) write(ctx context.Context, jobs []*writerJob[S]) error {
	for attempt := 0; ; attempt++ {
		live := jobs[:0:0]
		for _, j := range jobs {
			if err := j.ctx.Err(); err != nil {
				j.result <- err
				continue
			}
			live = append(live, j)
		}
		jobs = live
		if len(jobs) == 0 {
			return nil
		}
		if err := w.catchUp(ctx); err != nil {
			var bad errApply
			if errors.As(err, &bad) {
				return fmt.Errorf("%s: %w", w.stream, err)
			}
			for _, j := range jobs {
				j.result <- err
			}
			return nil
		}
		for _, j := range jobs {
			j.evs, j.err = j.fn(w.state)
			if j.err != nil {
				j.evs = nil
			}
		}
		kept, err := w.append(ctx, jobs)
		for _, j := range jobs[:kept] {
			j.result <- j.err
		}
		if err == nil {
			return nil
		}
		// The state holds decisions the log does not: rebuild it.
		if rerr := w.load(ctx); rerr != nil {
			return fmt.Errorf("%s: rebuilding after %v: %w", w.stream, err, rerr)
		}
		jobs = jobs[kept:]
		if !errors.Is(err, ErrWrongExpectedRevision) {
			// The outcome is unknown (the append may have landed): the
			// callers decide whether to try again.
			for _, j := range jobs {
				j.result <- err
			}
			return nil
		}
		if attempt >= w.opts.Retries {
			for _, j := range jobs {
				j.result <- fmt.Errorf("%s: %w after %d rounds: %v", w.stream, ErrConflict, attempt+1, err)
			}
			return nil
		}
	}
}

// append writes the jobs' events, expecting the writer's revision, in as
// few appends as the size limit allows, never splitting one job's events.
// It returns how many leading jobs are settled: their events, and those of
// every job before them, are in the log.
func (w *Writer[S]) append(ctx context.Context, jobs []*writerJob[S]) (int, error) {
	start := 0
	for start < len(jobs) {
		end, size := start, 0
		var pending []Pending
		for end < len(jobs) {
			n := 0
			for _, e := range jobs[end].evs {
				n += proto.Size(e) + 256 // metadata and framing
			}
			if len(pending) > 0 && size+n > w.opts.MaxAppendBytes {
				break
			}
			size += n
			// Each job's events carry its caller's trace, not the writer's.
			sc := trace.SpanContextFromContext(jobs[end].ctx)
			for _, e := range jobs[end].evs {
				pending = append(pending, Pending{Message: e, Trace: sc})
			}
			end++
		}
		if len(pending) > 0 {
			res, err := w.store.Append(ctx, w.stream, expectedFor(w.rev), pending...)
			if err != nil {
				return start, err
			}
			w.rev = int64(res.NextExpectedVersion)
		}
		start = end
	}
	return start, nil
}

// maybeSnapshot saves a snapshot when enough events went by since the
// last. The state is encoded here, in the writer; the appends run beside
// it, one snapshot at a time. A failed snapshot only costs a longer replay.
func (w *Writer[S]) maybeSnapshot(ctx context.Context) {
	if w.saving != nil {
		select {
		case <-w.saving:
		default:
			return
		}
	}
	n := w.opts.SnapshotEvery
	if n == 0 || w.rev < 0 || uint64(w.rev-w.snapRev) < n {
		return
	}
	msg, err := w.opts.Snapshot(w.state)
	if err != nil {
		return
	}
	data, err := marshalSnapshot(msg)
	if err != nil {
		return
	}
	rev := uint64(w.rev)
	w.snapRev = w.rev
	saving := make(chan struct{})
	w.saving = saving
	go func() {
		defer close(saving)
		_ = w.store.SaveSnapshot(ctx, w.stream, rev, data)
	}()
}
