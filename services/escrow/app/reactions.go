package app

import (
	"context"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/escrow/domain"
)

type decision = *eventsv1.BookBatchAppended_Decision

// OnLedgerBatch records the ledger's answers to the service's requests:
// council actions on their councils' streams (FAN), pledge holds on their
// campaigns' streams (USD).
func (a *App) OnLedgerBatch(ctx context.Context, cause events.Envelope, e *eventsv1.BookBatchAppended) error {
	var council, campaigns []decision
	for _, en := range e.Entries {
		switch d := en.GetDecision(); d.GetRequest().GetRequestedBy() {
		case domain.RequestedBy:
			council = append(council, d)
		case domain.CampaignsRequestedBy:
			campaigns = append(campaigns, d)
		}
	}
	named := func(id string, d decision) string {
		if id == "" {
			slog.Warn("escrow: a ledger answer names no council or campaign", "transaction", d.Request.TransactionId)
		}
		return id
	}
	err := eventstore.ReactEach(ctx, a.Councils, CouncilOutcomeConsumer, cause, council,
		func(d decision) string {
			return named(ledgerview.DebitOwner(d.Request, accounts.AccountEscrow, "discovery"), d)
		},
		func(c *domain.Council, d decision) error { return c.Decide(d) }, nil)
	if err != nil {
		return err
	}
	now := a.Now()
	return eventstore.ReactEach(ctx, a.Campaigns, CampaignOutcomeConsumer, cause, campaigns,
		func(d decision) string { return named(domain.CampaignOf(d.Request.TransactionId), d) },
		func(c *domain.Campaign, d decision) error { return c.Decide(d, now) },
		func(_ string, c *domain.Campaign, ds []decision) {
			if c != nil { // nil: a redelivery, which changed nothing
				a.track(c)
			}
			for _, d := range ds {
				for _, h := range d.Request.Holds {
					a.waits.Notify(h.HoldId)
				}
			}
		})
}

// OnSettlementCompleted records a campaign's outcome once the crowdfund
// saga settled all its holds.
func (a *App) OnSettlementCompleted(ctx context.Context, cause events.Envelope, e *eventsv1.CampaignSettlementCompleted) error {
	var c *domain.Campaign
	err := a.Campaigns.React(ctx, e.CampaignId, SettledConsumer, cause, func(cc *domain.Campaign) error {
		c = cc
		return cc.Settled(e)
	})
	// c is nil for a redelivery the stream already holds.
	if err == nil && c != nil && c.Opened != nil {
		a.track(c)
	}
	return err
}
