package ports

import (
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/services/songs/app"
)

// Consumer groups of the registrar (Kafka group ids: never rename).
const (
	PurchasesGroup = "songs.purchases" // fanfare.tipping.v1: PurchaseCompleted
	CampaignsGroup = "songs.campaigns" // fanfare.escrow.v1: CampaignSucceeded
)

// Groups are the registrar's Kafka handlers.
func Groups(a *app.App) []kafka.HandlerGroup {
	return []kafka.HandlerGroup{
		{Name: PurchasesGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.Reveal)}},
		{Name: CampaignsGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.Unlock)}},
	}
}
