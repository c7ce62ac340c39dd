// Package app holds the tipping service's use cases: tips, thumbs-up and
// auto-tips, subscriptions, purchases, and its reactions to plays, ledger
// decisions and the referral saga's payouts.
package app

import (
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/waiters"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/google/uuid"
)

// Consumer names of the service's reactions (part of their event ids:
// never rename).
const (
	AutoTipConsumer         = "tipping.autotip"
	TipOutcomeConsumer      = "tipping.tip-outcome"
	PurchaseOutcomeConsumer = "tipping.purchase-outcome"
)

// Id namespaces: a request id is scoped to its caller.
var (
	tipIDs          = uuid.MustParse("7f4e2c1a-9b3d-4a5e-8c6f-1d2e3f4a5b6c")
	purchaseIDs     = uuid.MustParse("2b8d4f6a-1c3e-4b5d-9e7f-a1b2c3d4e5f6")
	subscriptionIDs = uuid.MustParse("9c1e3a5b-7d2f-4e6a-8b0c-d1e2f3a4b5c6")
)

// App is the tipping service's application layer.
type App struct {
	Rules     domain.Rules
	Fans      *eventstore.Repository[*domain.Fan]
	Purchases *eventstore.Repository[*domain.Purchase]
	Subs      *eventstore.Writer[*domain.Subscriptions]
	Songs     *songview.Catalog
	// SongWait bounds how long a counted play waits for its song.
	SongWait time.Duration
	Now      func() time.Time

	waits waiters.Set
}
