package ports

import (
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/services/tipping/app"
)

// Consumer groups of the tipping service (Kafka group ids: never rename).
const (
	PlaysGroup     = "tipping.plays"     // fanfare.plays.v1: PlayCounted → auto-tips
	LedgerGroup    = "tipping.ledger"    // fanfare.accounts.v1: answers to tips and charges
	ReferralsGroup = "tipping.referrals" // fanfare.referral.v1: purchases paid or failed
)

// Groups are the service's Kafka handlers.
func Groups(a *app.App) []kafka.HandlerGroup {
	return []kafka.HandlerGroup{
		{Name: PlaysGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.OnPlayCounted)}},
		{Name: LedgerGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.OnLedgerBatch)}},
		{Name: ReferralsGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.OnPayoutCompleted), kafka.Reaction(a.OnPayoutFailed)}},
	}
}
