package kafka

import (
	"context"
	"errors"
	"fmt"
	"github.com/ThreeDotsLabs/watermill/message"
	"strconv"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/events"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// HandlerGroup is one consumer group: its name (the Kafka group id — never
// rename it casually) and handlers for events of one topic.
type HandlerGroup struct {
	Name     string
	Handlers []cqrs.GroupEventHandler
}

// Reaction adapts fn to a group handler that gets the source event's
// envelope, which reactions need for their deterministic event ids.
func Reaction[T any](fn func(ctx context.Context, cause events.Envelope, e *T) error) cqrs.GroupEventHandler {
	return cqrs.NewGroupEventHandler(func(ctx context.Context, e *T) error {
		src, ok := SourceEvent(ctx)
		if !ok {
			return ErrNoEnvelope
		}
		return fn(ctx, src, e)
	})
}

// RunGroups consumes with the handler groups until ctx ends: one router
// (NewRouter's middlewares, poison topic included), one consumer group per
// HandlerGroup. sub tunes the subscribers (group timings). Without brokers
// it only waits for ctx: a service run without Kafka serves its API alone.
func RunGroups(ctx context.Context, brokers []string, sub SubscriberConfig, groups ...HandlerGroup) error {
	if len(brokers) == 0 {
		<-ctx.Done()
		return nil
	}
	pub, err := NewPublisher(PublisherConfig{Brokers: brokers})
	if err != nil {
		return err
	}
	defer pub.Close()
	router, err := NewRouter(RouterConfig{}, pub)
	if err != nil {
		return err
	}
	proc, err := NewEventGroupProcessor(router, ProcessorConfig{Brokers: brokers, Subscriber: sub})
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := proc.AddHandlersGroup(g.Name, g.Handlers...); err != nil {
			return fmt.Errorf("kafka: handler group %s: %w", g.Name, err)
		}
	}
	if err := router.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Follow reads a whole topic from its beginning, then live, without a
// consumer group, handing each event to fn in order per partition: how a
// service rebuilds an in-memory read model of another service's events at
// every start. Messages of unknown types are skipped (a topic carries types
// newer than this binary knows). caughtUp, when not nil, is called once,
// when fn has seen every message the topic held as Follow started, so the
// service can hold back work that must not see a half-built model. It
// returns nil when ctx ends (whatever was interrupted by that), or fn's
// error.
func Follow(ctx context.Context, brokers []string, topic string, fn func(ctx context.Context, e proto.Message) error, caughtUp func()) (err error) {
	defer func() {
		if ctx.Err() != nil {
			err = nil // stopping is not a failure
		}
	}()
	sub, err := NewSubscriber(SubscriberConfig{Brokers: brokers})
	if err != nil {
		return err
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return err
	}
	behind, err := backlog(ctx, brokers, topic)
	if err != nil {
		return err
	}
	ready := func() {
		if caughtUp != nil && behind != nil && len(behind) == 0 {
			caughtUp()
			behind = nil
		}
	}
	ready()
	for msg := range msgs {
		e, err := events.Decode(msg.Metadata.Get(TypeMetadataKey), msg.Payload)
		if errors.Is(err, events.ErrUnknownType) {
			err = nil
		} else if err == nil {
			err = fn(withSource(msg.Context(), msg.Metadata), e)
		}
		if err != nil {
			msg.Nack()
			return fmt.Errorf("kafka: follow %s: %w", topic, err)
		}
		msg.Ack()
		if info, ok := RecordFromContext(msg.Context()); ok && behind != nil && info.Offset+1 >= behind[info.Partition] {
			delete(behind, info.Partition)
			ready()
		}
	}
	return nil
}

// FollowAll runs Follow in g for each topic with its fn, and calls
// caughtUp once all of them have caught up (at once when topics is empty).
func FollowAll(ctx context.Context, g *errgroup.Group, brokers []string, topics map[string]func(context.Context, proto.Message) error, caughtUp func()) {
	left := atomic.Int64{}
	left.Store(int64(len(topics)))
	if len(topics) == 0 {
		caughtUp()
		return
	}
	for topic, fn := range topics {
		g.Go(func() error {
			return Follow(ctx, brokers, topic, fn, func() {
				if left.Add(-1) == 0 {
					caughtUp()
				}
			})
		})
	}
}

// FollowThenRunGroups runs, in g, FollowAll of the read-model topics and,
// once all of them caught up (so no handler decides on a half-built
// model), the handler groups; caughtUp (may be nil) is called first.
func FollowThenRunGroups(ctx context.Context, g *errgroup.Group, brokers []string, sub SubscriberConfig,
	topics map[string]func(context.Context, proto.Message) error, caughtUp func(), groups ...HandlerGroup) {
	ready := make(chan struct{})
	FollowAll(ctx, g, brokers, topics, func() {
		if caughtUp != nil {
			caughtUp()
		}
		close(ready)
	})
	g.Go(func() error {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
		return RunGroups(ctx, brokers, sub, groups...)
	})
}

// backlog is the end offset of each partition of topic that holds
// messages now.
func backlog(ctx context.Context, brokers []string, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %s: %w", topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			out[o.Partition] = o.Offset
		}
	})
	return out, nil
}

// Source is where a followed event was stored, as the forwarder's message
// metadata says.
type Source struct {
	Stream   string
	Revision uint64
	Envelope events.Envelope
}

type sourceInfoKey struct{}

// withSource keeps the message metadata in ctx; SourceOf parses it only
// for the handlers that ask, so followers that do not pay nothing.
func withSource(ctx context.Context, md message.Metadata) context.Context {
	return context.WithValue(ctx, sourceInfoKey{}, md)
}

// SourceOf is where the event Follow hands to fn was stored; false for a
// message that did not come from the forwarder (or whose metadata is bad).
func SourceOf(ctx context.Context) (Source, bool) {
	md, ok := ctx.Value(sourceInfoKey{}).(message.Metadata)
	if !ok || md.Get(StreamMetadataKey) == "" {
		return Source{}, false
	}
	rev, err := strconv.ParseUint(md.Get(RevisionMetadataKey), 10, 64)
	if err != nil {
		return Source{}, false
	}
	env, err := events.UnmarshalEnvelope([]byte(md.Get(EnvelopeMetadataKey)))
	if err != nil {
		return Source{}, false
	}
	return Source{Stream: md.Get(StreamMetadataKey), Revision: rev, Envelope: env}, true
}
