package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// ErrFenced is returned by Subscription.Run when another instance of the
// same subscription took over: two instances never both keep running.
var ErrFenced = errors.New("eventstore: subscription fenced by a newer instance")

// EventTypePrefix selects Fanfare's service events in $all.
const EventTypePrefix = "fanfare."

// Subscription follows $all from its last checkpoint, calling Handle for
// every matching event in commit order. Delivery is at-least-once: after a
// crash the events since the last checkpoint are delivered again.
//
// The checkpoint lives in the event store, in stream "checkpoint-<Name>",
// written with an expected revision. A starting instance claims the stream
// first, so an older instance still running fails its next checkpoint write
// with ErrFenced and stops.
type Subscription struct {
	Store *Store
	Name  string
	// Filter defaults to Fanfare's service events (event type prefix "fanfare.").
	Filter *esdb.SubscriptionFilter
	// Handle gets each event. An error stops Run (the event is redelivered
	// on the next start).
	Handle func(ctx context.Context, rec *esdb.RecordedEvent) error
	// HandleBatch, used instead of Handle when set, gets the events that
	// arrived together (at most MaxBatch, in order); the checkpoint only
	// moves past a batch once it returns nil.
	HandleBatch func(ctx context.Context, recs []*esdb.RecordedEvent) error
	MaxBatch    int
	// FenceEveryBatch writes the checkpoint before handing each batch over,
	// so an instance that a newer one took over stops before it handles
	// anything more (at most the batch in flight at the takeover is handled
	// twice). It costs one small append per batch.
	FenceEveryBatch bool
	// CheckpointEvery and CheckpointInterval bound how much is redelivered
	// after a crash (defaults: 1000 events, 1 s).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// OnCaughtUp, when set, is called each time the subscription reaches
	// the head of the log.
	OnCaughtUp func()

	rev      int64
	position uint64
	owner    string
}

type checkpoint struct {
	Position uint64 `json:"position"`
	Owner    string `json:"owner"`
}

const checkpointType = "fanfare-checkpoint"

func (s *Subscription) stream() string { return "checkpoint-" + s.Name }

// Position is the last checkpointed $all position (0 = from the start).
func (s *Subscription) Position() uint64 { return s.position }

// claim reads the checkpoint and appends an ownership marker on top of it.
func (s *Subscription) claim(ctx context.Context) error {
	rec, err := s.Store.readLast(ctx, s.stream())
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w", s.stream(), err)
	}
	s.rev = -1
	if rec != nil {
		var cp checkpoint
		if err := json.Unmarshal(rec.Data, &cp); err != nil {
			return fmt.Errorf("checkpoint %s@%d: %w", s.stream(), rec.EventNumber, err)
		}
		s.rev, s.position = int64(rec.EventNumber), cp.Position
	}
	s.owner = uuid.NewString()
	return s.save(ctx, s.position)
}

func (s *Subscription) save(ctx context.Context, pos uint64) error {
	for attempt := 0; ; attempt++ {
		data, _ := json.Marshal(checkpoint{Position: pos, Owner: s.owner})
		res, err := s.Store.Client.AppendToStream(ctx, s.stream(), esdb.AppendToStreamOptions{ExpectedRevision: expectedFor(s.rev)},
			esdb.EventData{EventType: checkpointType, ContentType: esdb.ContentTypeJson, Data: data})
		if isCode(err, esdb.ErrorCodeWrongExpectedVersion) {
			// Either another instance wrote, or an earlier write of ours
			// landed but its answer was lost (a canceled call): only the
			// first is a takeover.
			if attempt == 0 && s.adoptOwnCheckpoint(ctx) {
				continue
			}
			return fmt.Errorf("%s: %w", s.Name, ErrFenced)
		}
		if err != nil {
			return fmt.Errorf("write checkpoint %s: %w", s.stream(), err)
		}
		s.rev, s.position = int64(res.NextExpectedVersion), pos
		return nil
	}
}

// adoptOwnCheckpoint takes the stream's last revision when the last
// checkpoint there was written by this instance.
func (s *Subscription) adoptOwnCheckpoint(ctx context.Context) bool {
	rec, err := s.Store.readLast(ctx, s.stream())
	if err != nil || rec == nil {
		return false
	}
	var cp checkpoint
	if json.Unmarshal(rec.Data, &cp) != nil || cp.Owner != s.owner {
		return false
	}
	s.rev = int64(rec.EventNumber)
	return true
}

// Run follows $all until ctx ends (returning nil), Handle fails, or the
// subscription is fenced. A dropped connection is resubscribed from the
// last handled event.
func (s *Subscription) Run(ctx context.Context) error {
	if s.CheckpointEvery <= 0 {
		s.CheckpointEvery = 1000
	}
	if s.CheckpointInterval <= 0 {
		s.CheckpointInterval = time.Second
	}
	filter := s.Filter
	if filter == nil {
		filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{EventTypePrefix}}
	}
	if err := s.claim(ctx); err != nil {
		return err
	}
	handled := s.position // last position handed to Handle
	backoff := 50 * time.Millisecond
	for {
		var from esdb.AllPosition = esdb.Start{}
		if handled > 0 {
			from = esdb.Position{Commit: handled, Prepare: handled}
		}
		sub, err := s.Store.Client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: from, Filter: filter})
		if err == nil {
			backoff = 50 * time.Millisecond
			err = s.consume(ctx, sub, &handled)
			sub.Close()
		}
		if ctx.Err() != nil {
			// Keep what was handled: a clean stop redelivers nothing.
			if handled > s.position {
				saveCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return s.save(saveCtx, handled)
			}
			return nil
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, errHandler) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

var errHandler = errors.New("handler failed")

// consume hands events to the handler in batches: a reader goroutine
// receives from the subscription, and each batch is whatever is waiting
// when the handler is free again.
func (s *Subscription) consume(ctx context.Context, sub *esdb.Subscription, handled *uint64) error {
	if s.MaxBatch <= 0 {
		s.MaxBatch = 500
	}
	handle := s.HandleBatch
	if handle == nil {
		handle = func(ctx context.Context, recs []*esdb.RecordedEvent) error {
			for _, r := range recs {
				if err := s.Handle(ctx, r); err != nil {
					return err
				}
			}
			return nil
		}
	}
	incoming := make(chan *esdb.SubscriptionEvent, s.MaxBatch)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			ev := sub.Recv()
			select {
			case incoming <- ev:
			case <-stop:
				return
			}
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	}()

	since := 0
	last := time.Now()
	maybeSave := func(force bool) error {
		if *handled == s.position || (!force && since < s.CheckpointEvery && time.Since(last) < s.CheckpointInterval) {
			return nil
		}
		since, last = 0, time.Now()
		return s.save(ctx, *handled)
	}
	var batch []*esdb.RecordedEvent
	var scanned uint64 // a server checkpoint seen while batching
	caughtUp := false
	flush := func() error {
		if len(batch) > 0 {
			if s.FenceEveryBatch {
				if err := s.save(ctx, *handled); err != nil {
					return err
				}
				since, last = 0, time.Now()
			}
			if err := handle(ctx, batch); err != nil {
				r := batch[0]
				return fmt.Errorf("%w: %s at %s@%d: %v", errHandler, s.Name, r.StreamID, r.EventNumber, err)
			}
			*handled = batch[len(batch)-1].Position.Commit
			since += len(batch)
			batch = batch[:0]
		}
		if scanned > *handled {
			*handled = scanned // nothing matched up to here: the scan itself is progress
		}
		if err := maybeSave(caughtUp); err != nil {
			return err
		}
		if caughtUp && s.OnCaughtUp != nil {
			s.OnCaughtUp()
		}
		caughtUp = false
		return nil
	}
	for {
		var ev *esdb.SubscriptionEvent
		select {
		case ev = <-incoming:
		case <-ctx.Done():
			// Stopping: what is not handled yet is delivered on the next start.
			return nil
		}
		for {
			switch {
			case ev.SubscriptionDropped != nil:
				if err := flush(); err != nil {
					return err
				}
				return ev.SubscriptionDropped.Error
			case ev.EventAppeared != nil:
				batch = append(batch, ev.EventAppeared.OriginalEvent())
			case ev.CheckPointReached != nil:
				scanned = ev.CheckPointReached.Commit
			case ev.CaughtUp != nil:
				caughtUp = true
			}
			if len(batch) >= s.MaxBatch {
				break
			}
			select {
			case ev = <-incoming:
				continue
			default:
			}
			break
		}
		if err := flush(); err != nil {
			return err
		}
	}
}
