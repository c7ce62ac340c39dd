package ports

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/app"
)

// LedgerRequestsGroup is the consumer group deciding sagas' ledger requests.
// It names the Kafka consumer group: never rename it casually.
const LedgerRequestsGroup = "accounts-ledger-requests"

// LedgerRequests is the handler for LedgerTransactionRequested. Redelivery
// is harmless: the book answers a repeated id with its first outcome.
func LedgerRequests(a *app.App) cqrs.GroupEventHandler {
	return cqrs.NewGroupEventHandler(func(ctx context.Context, e *eventsv1.LedgerTransactionRequested) error {
		return a.HandleLedgerRequest(ctx, e)
	})
}
