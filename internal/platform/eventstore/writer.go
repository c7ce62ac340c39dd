package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/protobuf/proto"
)

// ErrWriterStopped is returned by Writer.Do once the writer has stopped.
var ErrWriterStopped = errors.New("eventstore: writer stopped")

// WriterOptions tune a Writer.
type WriterOptions struct {
	// MaxBatch bounds how many Do calls share one append (default 1024).
	MaxBatch int
	// MaxAppendBytes splits a batch's events over several appends so each
	// stays under the store's append limit (default 900 KiB of 1 MiB).
	MaxAppendBytes int
}

// Writer is the single writer of one stream whose state lives in memory:
// the Do calls that arrive while an append is in flight run one after
// another on the state, and all the events they return go out in one
// append (group commit), expecting the stream's revision. A second writer
// of the same stream therefore fails its next append (ErrFenced) instead of
// forking the stream. When an append fails the in-memory state may hold
// changes the log does not, so the writer stops: Run returns the error and
// every waiting Do gets it; reopen the writer to recover from the log.
type Writer[S any] struct {
	store  *Store
	stream string
	state  S
	rev    int64
	opts   WriterOptions

	queue chan *writerJob[S]
	done  chan struct{}
	mu    sync.Mutex
	err   error
}

type writerJob[S any] struct {
	ctx    context.Context
	fn     func(S) ([]proto.Message, error)
	result chan error
}

// OpenWriter replays stream into state with apply and returns its writer;
// call Run to start it.
func OpenWriter[S any](ctx context.Context, store *Store, stream string, state S, apply func(S, Event) error, opts WriterOptions) (*Writer[S], error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxAppendBytes <= 0 {
		opts.MaxAppendBytes = 900 << 10
	}
	rev, err := store.ReadStream(ctx, stream, 0, func(e Event) error { return apply(state, e) })
	if err != nil {
		return nil, fmt.Errorf("open writer of %s: %w", stream, err)
	}
	return &Writer[S]{store: store, stream: stream, state: state, rev: rev, opts: opts,
		queue: make(chan *writerJob[S], opts.MaxBatch), done: make(chan struct{})}, nil
}

// Revision is the stream's last revision as this writer knows it (-1: empty).
// Only meaningful from inside Do or after Run returned.
func (w *Writer[S]) Revision() int64 { return w.rev }

// Do runs fn on the state inside the writer and returns once the events fn
// returned are appended. fn must record its changes in the events it
// returns and leave the state untouched when it returns an error (which Do
// then returns, appending nothing for it). Do returns ErrWriterStopped (or
// the append's error) when the writer stopped.
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

// Run writes until ctx ends (nil) or an append fails (its error).
func (w *Writer[S]) Run(ctx context.Context) (err error) {
	defer func() {
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
			return err
		}
	}
}

// write decides a batch and appends its events; the jobs learn the outcome
// only after the append, so nobody sees a decision the log may not keep.
func (w *Writer[S]) write(ctx context.Context, batch []*writerJob[S]) error {
	var pending []Pending
	results := make([]error, len(batch))
	for i, j := range batch {
		if j.ctx.Err() != nil {
			results[i] = j.ctx.Err()
			continue
		}
		evs, err := j.fn(w.state)
		results[i] = err
		if err == nil {
			for _, e := range evs {
				pending = append(pending, Pending{Message: e})
			}
		}
	}
	for start := 0; start < len(pending); {
		end, size := start, 0
		for end < len(pending) {
			n := proto.Size(pending[end].Message) + 256 // metadata and framing
			if end > start && size+n > w.opts.MaxAppendBytes {
				break
			}
			size += n
			end++
		}
		var expected esdb.ExpectedRevision = esdb.NoStream{}
		if w.rev >= 0 {
			expected = esdb.Revision(uint64(w.rev))
		}
		res, err := w.store.Append(ctx, w.stream, expected, pending[start:end]...)
		if err != nil {
			if errors.Is(err, ErrWrongExpectedRevision) {
				err = fmt.Errorf("%w: %s was written by another writer: %v", ErrFenced, w.stream, err)
			}
			for _, j := range batch {
				j.result <- err
			}
			return err
		}
		w.rev = int64(res.NextExpectedVersion)
		start = end
	}
	for i, j := range batch {
		j.result <- results[i]
	}
	return nil
}
