package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Store is the event store as Fanfare's code sees it: protobuf events in,
// protobuf events out, with the envelope (ids, correlation, causation,
// occurred-at, policy version) in each event's metadata.
type Store struct {
	Client *esdb.Client
	// Now stamps occurred-at; defaults to time.Now. Services inject their clock.
	Now func() time.Time
}

// NewStore wraps a connected client.
func NewStore(c *esdb.Client) *Store { return &Store{Client: c, Now: time.Now} }

// Event is one stored event, decoded.
type Event struct {
	Envelope events.Envelope
	Message  proto.Message
	Revision uint64
	Position uint64 // commit position in $all
}

// Pending is an event about to be appended. A zero ID gets a random one;
// reactions pass deterministic ids (events.ReactionID) so a redelivered
// cause appends nothing new.
type Pending struct {
	ID      uuid.UUID
	Message proto.Message
	// Trace is the span the event was decided in, recorded in its envelope
	// so the event's consumers continue that trace. Zero: the span of the
	// Append's ctx. A writer that appends many callers' events at once
	// gives each its caller's.
	Trace trace.SpanContext
}

type causeKey struct{}

// Cause is what an append inherits from the work that led to it.
type Cause struct {
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
	PolicyVersion uint64
}

// WithCause returns a context whose appends carry the given cause.
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

// CauseOf returns the cause in ctx (zero when none).
func CauseOf(ctx context.Context) Cause {
	c, _ := ctx.Value(causeKey{}).(Cause)
	return c
}

// CausedBy is the cause for work done in reaction to e: same correlation,
// caused by e, under the policy version e was written under.
func CausedBy(e events.Envelope) Cause {
	return Cause{CorrelationID: e.CorrelationID, CausationID: e.ID, PolicyVersion: e.PolicyVersion}
}

// ErrWrongExpectedRevision reports an optimistic-concurrency conflict.
var ErrWrongExpectedRevision = errors.New("eventstore: wrong expected revision")

// Append encodes and appends events to stream with the envelope in their
// metadata. An event with no cause in ctx starts its own correlation; one
// appended inside a span records it as its traceparent.
//
// Errors: ErrWrongExpectedRevision (wrapped), encoding errors, or the
// client's error.
func (s *Store) Append(ctx context.Context, stream string, expected esdb.ExpectedRevision, pending ...Pending) (*esdb.WriteResult, error) {
	cause := CauseOf(ctx)
	now := s.now()
	// Formatted once per span, not per event: a batch mostly shares one.
	ctxTrace := trace.SpanContextFromContext(ctx)
	var lastTrace trace.SpanContext
	var lastTraceparent string
	data := make([]esdb.EventData, len(pending))
	for i, p := range pending {
		sc := p.Trace
		if !sc.IsValid() {
			sc = ctxTrace
		}
		traceparent := ""
		if sc.IsValid() {
			if !sc.Equal(lastTrace) {
				lastTrace, lastTraceparent = sc, tracing.Traceparent(sc)
			}
			traceparent = lastTraceparent
		}
		typ, body, err := events.Encode(p.Message)
		if err != nil {
			return nil, err
		}
		id := p.ID
		if id == uuid.Nil {
			id = uuid.New()
		}
		env := events.Envelope{ID: id, Type: typ, Stream: stream, CorrelationID: cause.CorrelationID,
			CausationID: cause.CausationID, OccurredAt: now, PolicyVersion: cause.PolicyVersion, Traceparent: traceparent}
		if env.CorrelationID == uuid.Nil {
			env.CorrelationID = id
		}
		if env.CausationID == uuid.Nil {
			env.CausationID = env.CorrelationID
		}
		if env.PolicyVersion == 0 {
			env.PolicyVersion = 1
		}
		meta, err := events.MarshalEnvelope(env)
		if err != nil {
			return nil, err
		}
		data[i] = esdb.EventData{EventID: id, EventType: typ, ContentType: esdb.ContentTypeBinary, Data: body, Metadata: meta}
	}
	res, err := s.Client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, data...)
	if err != nil {
		if isCode(err, esdb.ErrorCodeWrongExpectedVersion) {
			return nil, fmt.Errorf("%w: %v", ErrWrongExpectedRevision, err)
		}
		return nil, fmt.Errorf("append to %s: %w", stream, err)
	}
	return res, nil
}

func (s *Store) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func isCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.Code() == code
}

// Decode turns a recorded event into an Event (upcasting old types).
//
// Errors: events.ErrUnknownType, events.ErrMalformed, events.ErrInvalidEnvelope (wrapped).
func Decode(rec *esdb.RecordedEvent) (Event, error) {
	env, err := events.UnmarshalEnvelope(rec.UserMetadata)
	if err != nil {
		return Event{}, fmt.Errorf("%s@%d: %w", rec.StreamID, rec.EventNumber, err)
	}
	msg, err := events.Decode(rec.EventType, rec.Data)
	if err != nil {
		return Event{}, fmt.Errorf("%s@%d: %w", rec.StreamID, rec.EventNumber, err)
	}
	if t, err := events.TypeName(msg); err == nil {
		env.Type = t // the upcast type, when an upcaster ran
	}
	return Event{Envelope: env, Message: msg, Revision: rec.EventNumber, Position: rec.Position.Commit}, nil
}

// ReadStream calls fn for every event of stream from revision from on, and
// returns the stream's last revision (-1 when it does not exist).
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, fn func(Event) error) (int64, error) {
	last := int64(from) - 1
	rs, err := s.Client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Revision(from)}, ^uint64(0)>>1)
	if err != nil {
		return -1, fmt.Errorf("read %s: %w", stream, err)
	}
	defer rs.Close()
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if isCode(err, esdb.ErrorCodeResourceNotFound) {
			return -1, nil
		}
		if err != nil {
			return -1, fmt.Errorf("read %s: %w", stream, err)
		}
		ev, err := Decode(re.OriginalEvent())
		if err != nil {
			return -1, err
		}
		if err := fn(ev); err != nil {
			return -1, err
		}
		last = int64(re.OriginalEvent().EventNumber)
	}
}

// readLast returns the last recorded event of a stream, or nil.
func (s *Store) readLast(ctx context.Context, stream string) (*esdb.RecordedEvent, error) {
	rs, err := s.Client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	re, err := rs.Recv()
	if errors.Is(err, io.EOF) || isCode(err, esdb.ErrorCodeResourceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return re.OriginalEvent(), nil
}

// expectedFor is the expected revision for a stream whose last revision is last.
func expectedFor(last int64) esdb.ExpectedRevision {
	if last < 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(uint64(last))
}

// CatchUp calls fn, in commit order, for every event of the streams whose
// names start with one of prefixes, from the start of $all until the
// subscription reports it has caught up with the head; it returns the
// commit position of the last event handed over (0 for none). Services use
// it to rebuild in-memory read models of their own streams at start.
func (s *Store) CatchUp(ctx context.Context, prefixes []string, fn func(Event) error) (uint64, error) {
	sub, err := s.Client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes},
	})
	if err != nil {
		return 0, fmt.Errorf("catch up %v: %w", prefixes, err)
	}
	defer sub.Close()
	var last uint64
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return last, fmt.Errorf("catch up %v: %w", prefixes, ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			return last, nil
		case ev.EventAppeared != nil:
			rec := ev.EventAppeared.OriginalEvent()
			if !strings.HasPrefix(rec.EventType, EventTypePrefix) {
				continue // the store's own events ($metadata and the like)
			}
			e, err := Decode(rec)
			if err != nil {
				return last, err
			}
			if err := fn(e); err != nil {
				return last, err
			}
			last = rec.Position.Commit
		}
	}
}
