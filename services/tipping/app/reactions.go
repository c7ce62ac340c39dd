package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
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
	var tips, charges []*eventsv1.BookBatchAppended_Decision
	for _, en := range e.Entries {
		d := en.GetDecision()
		switch d.GetRequest().GetRequestedBy() {
		case domain.RequestedBy:
			tips = append(tips, d)
		case domain.SubscriptionsRequestedBy:
			charges = append(charges, d)
		}
	}
	err := eventstore.ReactEach(ctx, a.Fans, TipOutcomeConsumer, cause, tips,
		func(d *eventsv1.BookBatchAppended_Decision) string {
			fan := ledgerview.DebitOwner(d.Request, accounts.AccountWallet, "")
			if fan == "" {
				slog.Warn("a tip's ledger answer names no payer; the tip stays pending", "transaction", d.Request.TransactionId)
			}
			return fan
		},
		func(f *domain.Fan, d *eventsv1.BookBatchAppended_Decision) error { return f.Decide(d) },
		func(_ string, _ *domain.Fan, ds []*eventsv1.BookBatchAppended_Decision) {
			for _, d := range ds {
				a.waits.Notify(d.Request.TransactionId)
			}
		})
	if err != nil || len(charges) == 0 {
		return err
	}
	var subs []string
	err = a.Subs.Do(ctx, func(s *domain.Subscriptions) ([]proto.Message, error) {
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
