// Package forwarder publishes every service event in the event store to
// Kafka: it follows $all from a checkpoint kept in the event store and
// publishes each event to fanfare.<service>.v1, keyed by stream id. This is
// how Fanfare avoids dual writes — services only append to the store.
//
// Delivery is at-least-once and ordered per stream within a topic: the
// checkpoint moves only past events Kafka acknowledged, so a crash
// re-publishes the tail (consumers are idempotent) and never leaves a gap.
// Only one forwarder runs at a time: a newer one claims the checkpoint
// stream, and the older one, which writes its checkpoint before publishing
// each batch, stops with eventstore.ErrFenced before it publishes anything
// more.
package forwarder

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
)

// Metadata keys on forwarded messages. The message UUID is the event id.
const (
	MetaType     = kafka.TypeMetadataKey
	MetaEnvelope = kafka.EnvelopeMetadataKey
	MetaStream   = kafka.StreamMetadataKey
	MetaRevision = kafka.RevisionMetadataKey
	MetaPosition = kafka.PositionMetadataKey
	// MetaTraceparent is set only for events written inside a trace.
	MetaTraceparent = kafka.TraceparentMetadataKey
)

// DefaultName is the forwarder's subscription (and checkpoint) name.
const DefaultName = "forwarder"

// Config configures a forwarder.
type Config struct {
	Store     *eventstore.Store
	Publisher message.Publisher
	// Name of the subscription; DefaultName when empty.
	Name string
	// MaxBatch bounds the events published per Kafka round trip (default 1000).
	MaxBatch int
	// OnCaughtUp, when set, is called whenever the forwarder reaches the
	// head of the log.
	OnCaughtUp func()
}

// Run forwards until ctx ends, the publisher fails for good, or a newer
// forwarder fences this one.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	sub := &eventstore.Subscription{
		Store:    cfg.Store,
		Name:     cfg.Name,
		MaxBatch: cfg.MaxBatch,
		// Publishing is the one effect here that is not idempotent, so a
		// superseded forwarder must stop before its next batch.
		FenceEveryBatch: true,
		OnCaughtUp:      cfg.OnCaughtUp,
		HandleBatch:     func(ctx context.Context, recs []*esdb.RecordedEvent) error { return publish(cfg.Publisher, recs) },
	}
	return sub.Run(ctx)
}

// Message is the Kafka message for a stored event (upcast to its current
// type), and its topic.
func Message(rec *esdb.RecordedEvent) (string, *message.Message, error) {
	typ, data, err := events.Upcast(rec.EventType, rec.Data)
	if err != nil {
		return "", nil, err
	}
	topic, err := events.Topic(typ)
	if err != nil {
		return "", nil, err
	}
	msg := message.NewMessage(rec.EventID.String(), data)
	msg.Metadata.Set(MetaType, typ)
	msg.Metadata.Set(MetaStream, rec.StreamID)
	msg.Metadata.Set(MetaRevision, strconv.FormatUint(rec.EventNumber, 10))
	msg.Metadata.Set(MetaPosition, strconv.FormatUint(rec.Position.Commit, 10))
	msg.Metadata.Set(MetaEnvelope, string(rec.UserMetadata))
	if tp := events.TraceparentOf(rec.UserMetadata); tp != "" {
		msg.Metadata.Set(MetaTraceparent, tp)
	}
	kafka.SetPartitionKey(msg, rec.StreamID)
	return topic, msg, nil
}

// publish sends a batch, one Publish per topic in order of first
// appearance, so a stream's events keep their order within each topic. Only
// within it: one stream's events can go to several topics (a saga's stream
// holds its ledger requests, which the accounts topic carries), and a
// consumer of two topics sees them in either order.
func publish(p message.Publisher, recs []*esdb.RecordedEvent) error {
	var order []string
	byTopic := map[string][]*message.Message{}
	for _, rec := range recs {
		topic, msg, err := Message(rec)
		if err != nil {
			// Not a Fanfare service event (the subscription filters on the
			// type prefix, so this is a type this build does not know):
			// skipping it would lose it for good, so stop instead.
			return fmt.Errorf("forward %s@%d (%s): %w", rec.StreamID, rec.EventNumber, rec.EventType, err)
		}
		if _, ok := byTopic[topic]; !ok {
			order = append(order, topic)
		}
		byTopic[topic] = append(byTopic[topic], msg)
	}
	for _, topic := range order {
		if err := p.Publish(topic, byTopic[topic]...); err != nil {
			return fmt.Errorf("publish %d events to %s: %w", len(byTopic[topic]), topic, err)
		}
	}
	slog.Debug("forwarded", "events", len(recs), "topics", len(order))
	return nil
}

// Topics lists every topic the forwarder can publish to, for creating them
// up front with explicit partition counts.
func Topics() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range events.Types() {
		topic, err := events.Topic(t)
		if err == nil && !seen[topic] {
			seen[topic] = true
			out = append(out, topic)
		}
	}
	return out
}
