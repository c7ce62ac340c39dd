package kafka

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/events"
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
