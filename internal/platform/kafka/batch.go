package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// BatchConfig configures ConsumeBatches.
type BatchConfig struct {
	Brokers       []string
	ConsumerGroup string // required: batches are committed to it
	Topic         string
	// MaxRecords bounds one batch (default 5000).
	MaxRecords int
	// Group membership timings; kgo's defaults when zero.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long a rebalance waits for members to
	// rejoin — a killed member never does (kgo's default, 60 s, when 0).
	RebalanceTimeout time.Duration
	// InstanceID makes the member static (KIP-345): a restarted process
	// with the same id takes its predecessor's partitions at once instead
	// of waiting for the dead member to time out. One id per running
	// instance; empty: a dynamic member.
	InstanceID string
	Logger     watermill.LoggerAdapter
}

// ConsumeBatches is the consumer for handlers whose work batches: where the
// router hands a handler one message per partition at a time, this hands it
// everything one poll returned — each partition's records in order — and
// commits their offsets once it returns nil. Use it where each message's
// effect waits for a durable write that can be shared (the ledger's book
// writer folds a whole batch into one append).
//
// Delivery is at-least-once: a handler error ends ConsumeBatches without
// committing, so the batch is delivered again (to this group) after a
// restart. It returns nil when ctx ends.
func ConsumeBatches(ctx context.Context, cfg BatchConfig, handle func(ctx context.Context, msgs []*message.Message) error) error {
	if len(cfg.Brokers) == 0 {
		return ErrNoBrokers
	}
	if cfg.ConsumerGroup == "" {
		return errors.New("kafka: ConsumeBatches needs a consumer group")
	}
	if err := ValidateTopic(cfg.Topic); err != nil {
		return err
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 5000
	}
	logger := orNop(cfg.Logger)
	if err := EnsureTopics(ctx, cfg.Brokers, []string{cfg.Topic}, 0); err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.ConsumerGroup),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Partitions are not taken away in the middle of a batch.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.WithLogger(kgoLogger{logger}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			forgetLag(cfg.ConsumerGroup, revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			forgetLag(cfg.ConsumerGroup, lost)
		}),
	}
	opts = append(opts, groupTimings(cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.RebalanceTimeout)...)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: batch consumer: %w", err)
	}
	defer cl.Close() // leaves the group
	spanName := "consume " + cfg.Topic
	for {
		fetches := cl.PollRecords(ctx, cfg.MaxRecords)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			logger.Error("fetch failed", err, watermill.LogFields{"topic": topic, "partition": p})
		})
		recordLag(cfg.ConsumerGroup, fetches)
		recs := fetches.Records()
		if len(recs) == 0 {
			cl.AllowRebalance()
			continue
		}
		// One span for the batch, linked to every producer's span; each
		// message's context has its producer's span as parent (or the
		// batch's, without one), so the handler can record its work on a
		// message in that message's trace.
		bctx, span := startConsume(ctx, spanName, cfg.ConsumerGroup, "", consumeOpts...)
		recording := span.IsRecording()
		if recording {
			span.SetAttributes(semconv.MessagingDestinationName(cfg.Topic), semconv.MessagingBatchMessageCount(len(recs)))
		}
		msgs := make([]*message.Message, len(recs))
		for i, r := range recs {
			msgs[i] = toMessage(r)
			mctx := consumedContext(bctx, r, msgs[i])
			if recording {
				if sc := trace.SpanContextFromContext(mctx); sc.IsRemote() { // a producer's, not the batch's
					span.AddLink(trace.Link{SpanContext: sc})
				}
			}
			msgs[i].SetContext(mctx)
		}
		err := handle(bctx, msgs)
		endConsume(span, err)
		if err != nil {
			cl.AllowRebalance()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kafka: batch of %d from %s: %w", len(msgs), cfg.Topic, err)
		}
		// A handled batch is committed even when shutdown began meanwhile.
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = cl.CommitRecords(commitCtx, recs...)
		cancel()
		if err != nil {
			// Not fatal: the batch is delivered again and its handler is idempotent.
			logger.Error("commit failed", err, watermill.LogFields{"topic": cfg.Topic})
		}
		cl.AllowRebalance()
	}
}
