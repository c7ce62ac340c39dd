package app

import (
	"context"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"go.opentelemetry.io/otel/trace"
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
//
// Escrows a request asks to open (open_escrows) are opened first, so a
// saga can credit an artist's escrow on its first reward; anything that is
// not an escrow of the request's book is left alone and the request decides
// as it would (unknown_account).
//
// traces[i] is the span evs[i] was requested in (its message's producer):
// the request's commit is recorded in that trace. Nil: in ctx's.
func (a *App) DecideLedgerRequests(ctx context.Context, evs []*eventsv1.LedgerTransactionRequested, traces []trace.SpanContext) error {
	byBook := map[*adapters.BookWriter][]domain.Request{}
	traced := map[*adapters.BookWriter][]trace.SpanContext{}
	opens := map[*adapters.BookWriter]map[string]bool{}
	for i, ev := range evs {
		req, convErr := adapters.RequestFromEvent(ev)
		book, err := a.Book(req.Asset)
		if convErr != nil || err != nil {
			book = a.Books[a.Policy.Assets.Codes()[0]]
			req = domain.Request{ID: ev.TransactionId, Asset: book.Asset(), RequestedBy: ev.RequestedBy, Memo: ev.Memo}
		}
		byBook[book] = append(byBook[book], req)
		if traces != nil {
			traced[book] = append(traced[book], traces[i])
		}
		for _, id := range ev.OpenEscrows {
			if aid, err := domain.ParseAccountID(id); err == nil && aid.Kind == domain.AccountEscrow && aid.Asset == book.Asset() {
				if opens[book] == nil {
					opens[book] = map[string]bool{}
				}
				opens[book][id] = true
			}
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	for book, reqs := range byBook {
		g.Go(func() error {
			for id := range opens[book] {
				var open bool
				book.Read(func(b *domain.Book) error { _, err := b.Balance(id); open = err == nil; return nil })
				if !open {
					if _, err := book.Open(ctx, id); err != nil {
						return err
					}
				}
			}
			_, err := book.ApplyTraced(ctx, reqs, traced[book])
			return err
		})
	}
	return g.Wait()
}
