// Package referral is the referral saga (DESIGN §6, Purchase): it joins a
// purchase request with the chains service's answer for its referral token,
// asks the ledger for the one transaction that pays the song's payees and
// the distributors (sagas/referral/domain), and records the ledger's
// decision. It talks to no service: it reads the tipping, chains, songs and
// accounts topics and writes only its own streams, referralpayout-<purchase id>.
package referral

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/referral/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
)

// RequestedBy names the saga on its ledger requests.
const RequestedBy = domain.RequestedBy

// Category is the stream category of the per-purchase aggregate:
// referralpayout-<purchase id> (the chains service's root tokens are
// referral-<token id>; each service owns its own category).
const Category = "referralpayout"

// Saga handles the events the referral saga reacts to.
type Saga struct {
	Purchases *eventstore.Repository[*domain.Referral]
	// Songs is the song read model, followed from the songs topic's start.
	Songs *songview.Catalog
	// SongWait bounds how long planning waits for a song to become known.
	SongWait time.Duration
}

// NewSaga returns the saga over store with an empty song catalog.
func NewSaga(store *eventstore.Store, songWait time.Duration) *Saga {
	return &Saga{Purchases: eventstore.NewRepository(store, Category, domain.NewReferral, eventstore.RepositoryOptions{}),
		Songs: songview.NewCatalog(), SongWait: songWait}
}

// OnPurchaseRequested notes a purchase request, or plans the purchase when
// its chain is known. A request delivered again appends nothing.
func (s *Saga) OnPurchaseRequested(ctx context.Context, cause events.Envelope, e *eventsv1.PurchaseRequested) error {
	if e.PurchaseId == "" {
		return nil // no purchase to pay, and none the tipping service waits on
	}
	return s.react(ctx, e.PurchaseId, PurchasesGroup, cause, func(r *domain.Referral, songs domain.SongLookup) error {
		return r.NotePurchase(e, songs)
	})
}

// OnChainResolved notes a purchase's resolved chain, or plans the purchase
// when its request is known.
func (s *Saga) OnChainResolved(ctx context.Context, cause events.Envelope, e *eventsv1.DistributorChainResolved) error {
	if e.PurchaseId == "" {
		return nil
	}
	return s.react(ctx, e.PurchaseId, ChainsGroup, cause, func(r *domain.Referral, songs domain.SongLookup) error {
		return r.NoteChain(e, songs)
	})
}

// OnChainRejected notes a purchase's rejected token, or fails the purchase
// when its request is known.
func (s *Saga) OnChainRejected(ctx context.Context, cause events.Envelope, e *eventsv1.DistributorChainRejected) error {
	if e.PurchaseId == "" {
		return nil
	}
	return s.Purchases.React(ctx, e.PurchaseId, ChainsGroup, cause, func(r *domain.Referral) error {
		return r.NoteRejectedChain(e)
	})
}

// OnBookBatch records the USD book's decisions on the saga's requests. One
// batch may decide many purchases: each is a reaction of its own, on its
// own stream, under a consumer name per purchase (so a redelivered batch
// appends nothing and a purchase that is settled or unknown is left
// alone), and they run side by side: the book's batches all come through
// one partition, so recording them one by one would queue every purchase.
func (s *Saga) OnBookBatch(ctx context.Context, cause events.Envelope, e *eventsv1.BookBatchAppended) error {
	if e.Asset != domain.USD {
		return nil
	}
	var mine []*eventsv1.BookBatchAppended_Decision
	for _, en := range e.Entries {
		if d := en.GetDecision(); d.GetRequest().GetRequestedBy() == RequestedBy && d.Request.TransactionId != "" {
			mine = append(mine, d)
		}
	}
	return eventstore.ReactEach(ctx, s.Purchases, LedgerGroup, cause, mine,
		func(d *eventsv1.BookBatchAppended_Decision) string { return d.Request.TransactionId },
		func(r *domain.Referral, d *eventsv1.BookBatchAppended_Decision) error { return r.Decide(d) }, nil)
}

// react runs fn as a reaction on purchase id with the catalog's songs.
// Planning takes the song as the catalog has it at that moment; when the
// song's registration has not been read yet, it waits for it (up to
// SongWait) and plans again. Errors: the store's, or the song still not
// known after SongWait (the router retries the event, then poisons it).
func (s *Saga) react(ctx context.Context, id, consumer string, cause events.Envelope, fn func(*domain.Referral, domain.SongLookup) error) error {
	var missing string
	songs := func(song string) *eventsv1.SongDescription {
		d, ok := s.Songs.Get(song)
		if !ok {
			missing = song
		}
		return d
	}
	run := func() error {
		return s.Purchases.React(ctx, id, consumer, cause, func(r *domain.Referral) error { return fn(r, songs) })
	}
	err := run()
	if !errors.Is(err, domain.ErrSongUnknown) {
		return err
	}
	if _, err := s.Songs.Wait(ctx, missing, s.SongWait); err != nil {
		return fmt.Errorf("referral: purchase %s: %w", id, err)
	}
	return run()
}
