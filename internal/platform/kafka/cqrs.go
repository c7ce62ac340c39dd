package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// TypeMetadataKey holds a message's event type name (what watermill's cqrs
// marshalers call the name).
const TypeMetadataKey = "name"

// EnvelopeMetadataKey holds the event's envelope JSON, as stored.
const EnvelopeMetadataKey = "envelope"

// TraceparentMetadataKey holds the W3C trace context of the span the event
// was written in (the envelope's traceparent), under its standard name, so
// a consumer continues the trace without parsing the envelope and other
// Kafka tooling sees it too. Absent when the writer was not tracing.
const TraceparentMetadataKey = tracing.TraceparentKey

// Where the forwarder found the event: its stream, revision and commit
// position in $all (decimal).
const (
	StreamMetadataKey   = "stream"
	RevisionMetadataKey = "revision"
	PositionMetadataKey = "position"
)

// Marshaler is the cqrs marshaler for Fanfare events: protobuf payloads,
// named by the events registry (fanfare.<service>.v1.<Message>).
type Marshaler struct{}

var _ cqrs.CommandEventMarshaler = Marshaler{}

func (Marshaler) Marshal(v any) (*message.Message, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("kafka: %T is not a protobuf message", v)
	}
	name, data, err := events.Encode(m)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(watermill.NewUUID(), data)
	msg.Metadata.Set(TypeMetadataKey, name)
	return msg, nil
}

func (Marshaler) Unmarshal(msg *message.Message, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("kafka: %T is not a protobuf message", v)
	}
	if err := proto.Unmarshal(msg.Payload, m); err != nil {
		return fmt.Errorf("%w: %s: %v", events.ErrMalformed, msg.Metadata.Get(TypeMetadataKey), err)
	}
	return nil
}

func (Marshaler) Name(v any) string {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Sprintf("%T", v)
	}
	name, err := events.TypeName(m)
	if err != nil {
		return string(m.ProtoReflect().Descriptor().FullName())
	}
	return name
}

func (Marshaler) NameFromMessage(msg *message.Message) string {
	return msg.Metadata.Get(TypeMetadataKey)
}

type sourceKey struct{}

// SourceEvent is the envelope of the event a handler is reacting to; every
// handler run by NewEventGroupProcessor has it in its context. Reactions use
// its id for deterministic ids (eventstore.Repository.React).
func SourceEvent(ctx context.Context) (events.Envelope, bool) {
	env, ok := ctx.Value(sourceKey{}).(events.Envelope)
	return env, ok
}

// withSourceEvent is the message's context with its source event's envelope
// (SourceEvent). Messages published straight to Kafka (not via the event
// store) still get a stable source id: their message UUID.
func withSourceEvent(m *message.Message) (context.Context, error) {
	if raw := m.Metadata.Get(EnvelopeMetadataKey); raw != "" {
		env, err := events.UnmarshalEnvelope([]byte(raw))
		if err != nil {
			return nil, err
		}
		return context.WithValue(m.Context(), sourceKey{}, env), nil
	}
	id, err := uuid.Parse(m.UUID)
	if err != nil {
		return nil, fmt.Errorf("%w (uuid %q)", ErrNoEnvelope, m.UUID)
	}
	return context.WithValue(m.Context(), sourceKey{}, events.Envelope{ID: id, CorrelationID: id, CausationID: id, PolicyVersion: 1}), nil
}

// ErrNoEnvelope marks a message that did not come from the forwarder.
var ErrNoEnvelope = errors.New("kafka: message carries no event envelope")

// ProcessorConfig configures NewEventGroupProcessor.
type ProcessorConfig struct {
	Brokers []string
	// Subscriber overrides the subscriber settings (Brokers and
	// ConsumerGroup are set per group).
	Subscriber SubscriberConfig
	Logger     watermill.LoggerAdapter
}

// NewEventGroupProcessor wires event handler groups onto router: each group
// is one Kafka consumer group (named after the group — so never rename a
// group casually) consuming the one topic its handlers' events come from.
// Handlers get the source event's envelope through SourceEvent(ctx).
func NewEventGroupProcessor(router *message.Router, cfg ProcessorConfig) (*cqrs.EventGroupProcessor, error) {
	return cqrs.NewEventGroupProcessorWithConfig(router, cqrs.EventGroupProcessorConfig{
		Marshaler:         Marshaler{},
		AckOnUnknownEvent: true, // a topic carries other consumers' events too
		Logger:            cfg.Logger,
		GenerateSubscribeTopic: func(p cqrs.EventGroupProcessorGenerateSubscribeTopicParams) (string, error) {
			var topic string
			for _, h := range p.EventGroupHandlers {
				name := Marshaler{}.Name(h.NewEvent())
				t, err := events.Topic(name)
				if err != nil {
					return "", fmt.Errorf("group %s: %w", p.EventGroupName, err)
				}
				if topic != "" && t != topic {
					return "", fmt.Errorf("group %s mixes topics %s and %s: one group consumes one topic", p.EventGroupName, topic, t)
				}
				topic = t
			}
			if topic == "" {
				return "", fmt.Errorf("group %s has no handlers", p.EventGroupName)
			}
			return topic, nil
		},
		SubscriberConstructor: func(p cqrs.EventGroupProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			sc := cfg.Subscriber
			sc.Brokers = cfg.Brokers
			sc.ConsumerGroup = p.EventGroupName
			if sc.Logger == nil {
				sc.Logger = cfg.Logger
			}
			return NewSubscriber(sc)
		},
		OnHandle: func(p cqrs.EventGroupProcessorOnHandleParams) error {
			ctx, err := withSourceEvent(p.Message)
			if err != nil {
				return err
			}
			// The message's context already has the producer's span as
			// parent (consumedContext): the handler's appends join its trace.
			ctx, span := startConsume(ctx, "consume "+p.EventName, p.GroupName, p.Message.UUID, consumeOpts...)
			err = p.Handler.Handle(ctx, p.Event)
			endConsume(span, err)
			return err
		},
	})
}
