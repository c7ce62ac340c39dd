package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/fanfare/fanfare/internal/platform/apperr"
)

const (
	// PoisonTopic receives every message a handler gave up on.
	PoisonTopic = "fanfare.poison.v1"

	// PoisonReasonMetadataKey holds, on a poisoned message, the error that
	// poisoned it. The topic, handler and subscriber it failed in are under
	// middleware.PoisonedTopicKey, PoisonedHandlerKey and
	// PoisonedSubscriberKey.
	PoisonReasonMetadataKey = middleware.ReasonForPoisonedKey
)

// RetryConfig is the exponential backoff a failing handler gets before its
// message is poisoned.
type RetryConfig struct {
	// MaxRetries after the first attempt; 5 when zero, none when negative.
	MaxRetries int
	// InitialInterval is the first pause; 100ms when zero.
	InitialInterval time.Duration
	// MaxInterval caps a pause; 10s when zero.
	MaxInterval time.Duration
	// Multiplier grows the pause after each retry; 2 when zero.
	Multiplier float64
	// MaxElapsedTime stops retrying after this long in total; no limit when
	// zero.
	MaxElapsedTime time.Duration
}

// RouterConfig configures NewRouter.
type RouterConfig struct {
	Retry RetryConfig

	// PoisonTopic overrides PoisonTopic (tests).
	PoisonTopic string

	// CloseTimeout is how long Close waits for running handlers; 30s when
	// zero.
	CloseTimeout time.Duration

	Logger watermill.LoggerAdapter
}

// NewRouter returns the watermill router every Fanfare consumer runs on, with
// the middlewares composed once, outermost first:
//
//   - CorrelationID: messages a handler produces carry the correlation id of
//     the message it handled.
//   - PoisonQueue: once retries are exhausted the message is published, with
//     the reason under PoisonReasonMetadataKey, to the poison topic through
//     poisonPublisher, and acked so the partition moves on. If that publish
//     fails, or the failure is a canceled context (shutdown) or transient
//     (apperr.Transient: an outage), the message is nacked and redelivered
//     instead.
//   - Retry: exponential backoff.
//   - Recoverer: innermost, so a panic becomes an error that is retried and
//     then poisoned like any other.
func NewRouter(cfg RouterConfig, poisonPublisher message.Publisher) (*message.Router, error) {
	mws, err := middlewares(cfg, poisonPublisher)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, orNop(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("kafka: new router: %w", err)
	}
	router.AddMiddleware(mws...)
	return router, nil
}

// middlewares are the router's middlewares, outermost first (see
// NewRouter); ConsumeKeyed wraps each message's handler in the same.
func middlewares(cfg RouterConfig, poisonPublisher message.Publisher) ([]message.HandlerMiddleware, error) {
	if poisonPublisher == nil {
		return nil, errors.New("kafka: router needs a publisher for the poison queue")
	}
	logger := orNop(cfg.Logger)
	topic := cfg.PoisonTopic
	if topic == "" {
		topic = PoisonTopic
	}
	retry := cfg.Retry
	switch {
	case retry.MaxRetries == 0:
		retry.MaxRetries = 5
	case retry.MaxRetries < 0:
		retry.MaxRetries = 0
	}
	if retry.InitialInterval <= 0 {
		retry.InitialInterval = 100 * time.Millisecond
	}
	if retry.MaxInterval <= 0 {
		retry.MaxInterval = 10 * time.Second
	}
	if retry.Multiplier <= 0 {
		retry.Multiplier = 2
	}
	// A canceled message context means the subscriber is shutting down, and
	// a transient failure (the event store down) that a dependency is out:
	// neither says the message is bad, so it is nacked and redelivered —
	// an outage is waited out, however long, instead of poisoning every
	// message that arrives during it.
	poison, err := middleware.PoisonQueueWithFilter(poisonPublisher, topic, func(err error) bool {
		return !errors.Is(err, context.Canceled) && !apperr.Transient(err)
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: poison queue: %w", err)
	}
	return []message.HandlerMiddleware{
		middleware.CorrelationID,
		poison,
		middleware.Retry{
			MaxRetries:      retry.MaxRetries,
			InitialInterval: retry.InitialInterval,
			MaxInterval:     retry.MaxInterval,
			Multiplier:      retry.Multiplier,
			MaxElapsedTime:  retry.MaxElapsedTime,
			// Each attempt gets the message's own context back, so one
			// attempt's values do not leak into the next.
			ResetContextOnRetry: true,
			Logger:              logger,
		}.Middleware,
		middleware.Recoverer,
	}, nil
}
