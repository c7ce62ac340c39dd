package app

import (
	"context"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"golang.org/x/sync/errgroup"
)

// DecideLedgerRequests decides sagas' LedgerTransactionRequested events, in
// order per book, and returns once every decision is durable. The decision
// is the answer: it is logged in the book's batch (BookBatchAppended, a
// Committed or Rejected entry) and reaches the saga through Kafka.
// Redelivery is harmless: a repeated id gets its first outcome back.
//
// A request that names no known book, or mixes assets, still gets an
// answer: it is logged as an invalid request (no postings) in the first
// book, so the requester sees a rejection under its id.
func (a *App) DecideLedgerRequests(ctx context.Context, evs []*eventsv1.LedgerTransactionRequested) error {
	byBook := map[*adapters.BookWriter][]domain.Request{}
	for _, ev := range evs {
		req, convErr := adapters.RequestFromEvent(ev)
		book, err := a.Book(req.Asset)
		if convErr != nil || err != nil {
			book = a.Books[a.Policy.Assets.Codes()[0]]
			req = domain.Request{ID: ev.TransactionId, Asset: book.Asset(), RequestedBy: ev.RequestedBy, Memo: ev.Memo}
		}
		byBook[book] = append(byBook[book], req)
	}
	g, ctx := errgroup.WithContext(ctx)
	for book, reqs := range byBook {
		g.Go(func() error {
			_, err := book.ApplyAll(ctx, reqs)
			return err
		})
	}
	return g.Wait()
}
