package app

import (
	"context"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"golang.org/x/sync/errgroup"
)

// batchWorkers bounds the reactions to one book batch that run at once.
const batchWorkers = 16

// OnLedgerBatch records the ledger's answers to the service's requests:
// council actions on their councils' streams (FAN), pledge holds on their
// campaigns' streams (USD).
func (a *App) OnLedgerBatch(ctx context.Context, cause events.Envelope, e *eventsv1.BookBatchAppended) error {
	byStream := map[string][]*eventsv1.BookBatchAppended_Decision{}
	var councils, campaigns []string
	for _, en := range e.Entries {
		d := en.GetDecision()
		var id string
		var ids *[]string
		switch d.GetRequest().GetRequestedBy() {
		case domain.RequestedBy:
			id, ids = escrowOwner(d.Request), &councils
		case domain.CampaignsRequestedBy:
			id, ids = domain.CampaignOf(d.Request.TransactionId), &campaigns
		default:
			continue
		}
		if id == "" {
			slog.Warn("escrow: a ledger answer names no council or campaign", "transaction", d.Request.TransactionId)
			continue
		}
		if byStream[id] == nil {
			*ids = append(*ids, id)
		}
		byStream[id] = append(byStream[id], d)
	}
	now := a.Now()
	// Streams are independent: their reactions run side by side (a book's
	// batches all come through one partition).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchWorkers)
	for _, artist := range councils {
		g.Go(func() error {
			return a.Councils.React(gctx, artist, CouncilOutcomeConsumer+"/"+artist, cause, func(c *domain.Council) error {
				for _, d := range byStream[artist] {
					if err := c.Decide(d); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	for _, id := range campaigns {
		g.Go(func() error {
			var c *domain.Campaign
			err := a.Campaigns.React(gctx, id, CampaignOutcomeConsumer+"/"+id, cause, func(cc *domain.Campaign) error {
				c = cc
				for _, d := range byStream[id] {
					if err := cc.Decide(d, now); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			a.track(c)
			for _, d := range byStream[id] {
				for _, h := range d.Request.Holds {
					a.waits.Notify(h.HoldId)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// escrowOwner is the artist whose discovery escrow a council request
// debits.
func escrowOwner(r *eventsv1.LedgerTransactionRequested) string {
	for _, p := range r.GetPostings() {
		if id, err := accounts.ParseAccountID(p.Debit); err == nil && id.Kind == accounts.AccountEscrow && id.Purpose == "discovery" {
			return id.Owner
		}
	}
	return ""
}

// OnSettlementCompleted records a campaign's outcome once the crowdfund
// saga settled all its holds.
func (a *App) OnSettlementCompleted(ctx context.Context, cause events.Envelope, e *eventsv1.CampaignSettlementCompleted) error {
	var c *domain.Campaign
	err := a.Campaigns.React(ctx, e.CampaignId, SettledConsumer, cause, func(cc *domain.Campaign) error {
		c = cc
		return cc.Settled(e)
	})
	if err == nil && c.Opened != nil {
		a.track(c)
	}
	return err
}
