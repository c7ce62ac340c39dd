package ports

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/app"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// LedgerRequestsGroup is the consumer group deciding sagas' ledger requests.
// It names the Kafka consumer group: never rename it casually.
const LedgerRequestsGroup = "accounts-ledger-requests"

var ledgerRequestType, _ = events.TypeName(&eventsv1.LedgerTransactionRequested{})

// LedgerRequestBatches handles a batch from the accounts topic: its
// LedgerTransactionRequested events are decided together (one durable
// append for many), the topic's other events are skipped.
func LedgerRequestBatches(a *app.App) func(context.Context, []*message.Message) error {
	return func(ctx context.Context, msgs []*message.Message) error {
		var evs []*eventsv1.LedgerTransactionRequested
		var traces []trace.SpanContext
		for _, m := range msgs {
			if m.Metadata.Get(kafka.TypeMetadataKey) != ledgerRequestType {
				continue
			}
			ev := &eventsv1.LedgerTransactionRequested{}
			if err := proto.Unmarshal(m.Payload, ev); err != nil {
				// A request that cannot be read cannot be answered either;
				// stopping keeps it, and everything after it, undelivered
				// until a fix is deployed.
				return fmt.Errorf("ledger request %s: %w", m.UUID, err)
			}
			evs = append(evs, ev)
			// The message's context has the span that requested it (its
			// producer's, else the batch's): its commit is recorded there.
			traces = append(traces, trace.SpanContextFromContext(m.Context()))
		}
		if len(evs) == 0 {
			return nil
		}
		return a.DecideLedgerRequests(ctx, evs, traces)
	}
}
