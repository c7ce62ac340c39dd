package app

import (
	"context"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
)

// HandleLedgerRequest decides a LedgerTransactionRequested from a saga. The
// decision is the answer: it is logged in the book's batch
// (BookBatchAppended, a Committed or Rejected entry) and reaches the saga
// through Kafka. A request that names no known book, or mixes assets, still
// gets an answer: it is logged as an invalid request (no postings) in the
// first book, so the requester sees a rejection under its id.
func (a *App) HandleLedgerRequest(ctx context.Context, ev *eventsv1.LedgerTransactionRequested) error {
	req, convErr := adapters.RequestFromEvent(ev)
	book, err := a.Book(req.Asset)
	if convErr != nil || err != nil {
		// Let the book reject it, with its reason and detail, so the
		// requester gets an answer: an empty-posting request is invalid.
		book = a.Books[a.Policy.Assets.Codes()[0]]
		req = domain.Request{ID: ev.TransactionId, Asset: book.Asset(), RequestedBy: ev.RequestedBy, Memo: ev.Memo}
	}
	_, err = book.Apply(ctx, req)
	return err
}
