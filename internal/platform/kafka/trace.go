package kafka

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// consumedContext is the context of a consumed message: where it was read
// from (RecordFromContext) and, when its producer was tracing, the
// producer's span as the remote parent of the consumer's work.
func consumedContext(ctx context.Context, rec *kgo.Record, msg *message.Message) context.Context {
	return tracing.WithRemote(withRecordInfo(ctx, rec), msg.Metadata.Get(TraceparentMetadataKey))
}

var (
	consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)
	// consumeOpts is passed as is, so a no-op span allocates no options.
	consumeOpts = []trace.SpanStartOption{consumerKind}
)

// startConsume starts a consumer span, a child of the producer's span in
// ctx when there is one; opts must include consumerKind. Attributes are
// only built for a span that is kept, so without a tracer provider a
// message costs a no-op span.
func startConsume(ctx context.Context, name, group, msgID string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := tracing.Start(ctx, name, opts...)
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeProcess, semconv.MessagingConsumerGroupName(group))
		if msgID != "" {
			span.SetAttributes(semconv.MessagingMessageID(msgID))
		}
		if info, ok := RecordFromContext(ctx); ok {
			span.SetAttributes(semconv.MessagingDestinationName(info.Topic),
				semconv.MessagingDestinationPartitionID(strconv.Itoa(int(info.Partition))), semconv.MessagingKafkaOffset(int(info.Offset)))
		}
	}
	return ctx, span
}

// endConsume ends a consumer span with the handler's outcome.
func endConsume(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
