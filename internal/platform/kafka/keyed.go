package kafka

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// KeyedConfig configures ConsumeKeyed.
type KeyedConfig struct {
	Brokers       []string
	ConsumerGroup string // required (a Kafka group id: never rename it casually)
	// Subscriber's group timings apply (SessionTimeout, HeartbeatInterval,
	// RebalanceTimeout), as for RunGroups' handlers.
	Subscriber SubscriberConfig
	// Router overrides the middlewares' settings (retries, poison topic).
	Router RouterConfig
	// InFlight bounds how many keys are handled at once (default 256).
	InFlight int
}

// ConsumeKeyed consumes the events of type E from their topic in a
// consumer group as RunGroups' handlers do — each event through the same
// middlewares (retried, then poisoned; a transient failure is waited
// out), its handler in a consumer span and with the source event's
// envelope — but keeps order per key instead of per partition: the events
// of one poll are handled at once across keys, in order within a key, and
// the poll's offsets are committed once every one is handled (or
// poisoned). For handlers whose work waits on a durable
// write that concurrent callers share (an eventstore.Writer folds them
// into one append): one message per partition at a time would pay a
// whole append per event. Events of other types are skipped. It returns
// nil when ctx ends.
func ConsumeKeyed[E proto.Message](ctx context.Context, cfg KeyedConfig, key func(E) string, handle func(ctx context.Context, cause events.Envelope, e E) error) error {
	newEvent := func() E { return reflect.New(reflect.TypeFor[E]().Elem()).Interface().(E) }
	name, err := events.TypeName(newEvent())
	if err != nil {
		return err
	}
	topic, err := events.Topic(name)
	if err != nil {
		return err
	}
	if len(cfg.Brokers) == 0 {
		return ErrNoBrokers
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 256
	}
	pub, err := NewPublisher(PublisherConfig{Brokers: cfg.Brokers})
	if err != nil {
		return err
	}
	defer pub.Close()
	mws, err := middlewares(cfg.Router, pub)
	if err != nil {
		return err
	}
	// The handler of one message, wrapped in the router's middlewares. The
	// event was decoded once, for its key, into the message's context; one
	// that did not decode fails here, under the middlewares (poisoned).
	var h message.HandlerFunc = func(m *message.Message) ([]*message.Message, error) {
		d := m.Context().Value(decodedKey{}).(decoded[E])
		if d.err != nil {
			return nil, fmt.Errorf("kafka: %s %s: %w", name, m.UUID, d.err)
		}
		e := d.event
		ctx, err := withSourceEvent(m)
		if err != nil {
			return nil, err
		}
		src, _ := SourceEvent(ctx)
		ctx, span := startConsume(ctx, "consume "+name, cfg.ConsumerGroup, m.UUID, consumeOpts...)
		err = handle(ctx, src, e)
		endConsume(span, err)
		return nil, err
	}
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}

	bc := BatchConfig{Brokers: cfg.Brokers, ConsumerGroup: cfg.ConsumerGroup, Topic: topic,
		SessionTimeout: cfg.Subscriber.SessionTimeout, HeartbeatInterval: cfg.Subscriber.HeartbeatInterval,
		RebalanceTimeout: cfg.Subscriber.RebalanceTimeout, Logger: cfg.Subscriber.Logger}
	return ConsumeBatches(ctx, bc, func(ctx context.Context, msgs []*message.Message) error {
		// Each key's messages in poll order (a partition's order; a key
		// lives in one partition when it is derived from the record key's
		// stream, as every event key here is).
		byKey := map[string][]*message.Message{}
		var keys []string
		for _, m := range msgs {
			if m.Metadata.Get(TypeMetadataKey) != name {
				continue
			}
			d := decoded[E]{event: newEvent()}
			k := ""
			if d.err = proto.Unmarshal(m.Payload, d.event); d.err == nil {
				k = key(d.event)
			}
			m.SetContext(context.WithValue(m.Context(), decodedKey{}, d))
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], m)
		}
		g := new(errgroup.Group)
		g.SetLimit(cfg.InFlight)
		for _, k := range keys {
			g.Go(func() error {
				for _, m := range byKey[k] {
					for {
						_, err := h(m)
						if err == nil {
							break
						}
						// Not poisoned. A transient failure (an outage)
						// is waited out here, as the router's subscriber
						// redelivers a nacked message; otherwise (a
						// canceled context, or the poison queue
						// unreachable) the batch is not committed and
						// comes again.
						if !apperr.Transient(err) || !sleep(keyedResendSleep, ctx.Done()) {
							return err
						}
					}
				}
				return nil
			})
		}
		// An error leaves the batch uncommitted (ConsumeBatches treats one
		// at shutdown as the end).
		return g.Wait()
	})
}

// keyedResendSleep is the pause before a message whose handler failed
// transiently (after its retries) is handled again: the subscriber's
// default NackResendSleep.
const keyedResendSleep = 100 * time.Millisecond

// decoded is a message's event, or why it did not decode.
type decoded[E proto.Message] struct {
	event E
	err   error
}

type decodedKey struct{}
