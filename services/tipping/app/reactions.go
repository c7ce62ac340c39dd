package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// OnPlayCounted auto-tips a counted play when its listener opted in and
// played the song more than AutoTipAfterPlays times; the budget month is
// the month the play was counted in, so a redelivery decides the same.
func (a *App) OnPlayCounted(ctx context.Context, cause events.Envelope, e *eventsv1.PlayCounted) error {
	if e.ListenerPlayNumber <= uint64(a.Rules.AutoTipAfterPlays) {
		return nil
	}
	id := uuid.NewSHA1(tipIDs, []byte("auto/"+e.PlayId)).String()
	// One read of the fan's stream decides it all; a listener who has not
	// opted in (most) gets nothing written.
	return a.Fans.React(ctx, e.ListenerId, AutoTipConsumer, cause, func(f *domain.Fan) error {
		if !f.AutoTipOn {
			return nil
		}
		song, err := a.Songs.Wait(ctx, e.SongId, a.SongWait)
		if err != nil {
			return fmt.Errorf("tipping: auto-tip for play %s: %w", e.PlayId, err)
		}
		parts, err := songview.Payments(song.Splits, domain.USD.Code, a.Rules.AutoTipAmount)
		var postings []*eventsv1.Posting
		if err == nil {
			postings, err = domain.Payments(e.ListenerId, e.SongId, parts)
		}
		if err != nil {
			// A song that pays only this listener has no one to tip: not a failure to retry.
			slog.Info("no auto-tip", "play", e.PlayId, "listener", e.ListenerId, "reason", err)
			return nil
		}
		return f.AutoTip(e, domain.Month(cause.OccurredAt), a.Rules, postings, id)
	})
}

// OnLedgerBatch records the ledger's answers to the service's requests:
// tips on their fans' streams, charges on the subscriptions stream.
func (a *App) OnLedgerBatch(ctx context.Context, cause events.Envelope, e *eventsv1.BookBatchAppended) error {
	if e.Asset != domain.USD.Code {
		return nil
	}
	byFan := map[string][]*eventsv1.BookBatchAppended_Decision{}
	var fans []string
	var charges []*eventsv1.BookBatchAppended_Decision
	for _, en := range e.Entries {
		d := en.GetDecision()
		switch d.GetRequest().GetRequestedBy() {
		case domain.RequestedBy:
			fan := payer(d.Request)
			if fan == "" {
				slog.Warn("a tip's ledger answer names no payer; the tip stays pending", "transaction", d.Request.TransactionId)
				continue
			}
			if byFan[fan] == nil {
				fans = append(fans, fan)
			}
			byFan[fan] = append(byFan[fan], d)
		case domain.SubscriptionsRequestedBy:
			charges = append(charges, d)
		}
	}
	// Fans' streams are independent: their reactions run side by side (the
	// book's batches all come through one partition).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for _, fan := range fans {
		// One reaction per fan stream; the consumer name tells the streams'
		// event ids apart, as they share the batch as their cause.
		g.Go(func() error {
			err := a.Fans.React(gctx, fan, TipOutcomeConsumer+"/"+fan, cause, func(f *domain.Fan) error {
				for _, d := range byFan[fan] {
					if err := f.Decide(d); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, d := range byFan[fan] {
				a.waits.Notify(d.Request.TransactionId)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(charges) == 0 {
		return nil
	}
	var subs []string
	err := a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) {
		subs = subs[:0]
		var evs []proto.Message
		for _, d := range charges {
			if id, ok := s.Pending[d.Request.TransactionId]; ok {
				subs = append(subs, id)
			}
			more, err := s.Decide(d, a.Now())
			if err != nil {
				return nil, err
			}
			evs = append(evs, more...)
		}
		return evs, nil
	})
	for _, id := range subs {
		a.waits.Notify(id)
	}
	return err
}

// batchWorkers bounds the reactions to one book batch that run at once.
const batchWorkers = 16

// payer is the identity whose wallet a tip debits.
func payer(r *eventsv1.LedgerTransactionRequested) string {
	for _, p := range r.GetPostings() {
		if id, err := accounts.ParseAccountID(p.Debit); err == nil && id.Kind == accounts.AccountWallet {
			return id.Owner
		}
	}
	return ""
}
