// Package app holds the escrow service's use cases: the council's
// proposals and approvals on discovery escrows, the artist's payees, and
// crowdfund campaigns with their deadline clock, plus its reactions to the
// ledger's answers and the crowdfund saga's settlements.
package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/waiters"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// Consumer names of the service's reactions (part of their event ids:
// never rename).
const (
	CouncilOutcomeConsumer  = "escrow.council-outcome"
	CampaignOutcomeConsumer = "escrow.campaign-outcome"
	SettledConsumer         = "escrow.settled"
)

// Id namespaces: a request id is scoped to its caller.
var (
	proposalIDs = uuid.MustParse("5d3c1b2a-4e6f-4a8b-9c0d-e1f2a3b4c5d6")
	campaignIDs = uuid.MustParse("8a6b4c2d-0e1f-4a3b-8c5d-6e7f8a9b0c1d")
	pledgeIDs   = uuid.MustParse("3e5f7a9b-1c2d-4e6f-8a0b-c2d4e6f8a0b2")
)

// App is the escrow service's application layer.
type App struct {
	Councils  *eventstore.Repository[*domain.Council]
	Campaigns *eventstore.Repository[*domain.Campaign]
	// FAN is the FAN book as read from the accounts topic: the escrows'
	// balances.
	FAN *ledgerview.Balances
	Now func() time.Time

	mu    sync.Mutex
	rules domain.CouncilRules
	// due are the deadlines of campaigns not closed yet, for the clock.
	due   map[string]time.Time
	waits waiters.Set
}

// New is an App on the default council rules.
func New(councils *eventstore.Repository[*domain.Council], campaigns *eventstore.Repository[*domain.Campaign], now func() time.Time) *App {
	return &App{Councils: councils, Campaigns: campaigns, FAN: ledgerview.NewBalances(domain.FAN), Now: now,
		rules: domain.DefaultCouncilRules(), due: map[string]time.Time{}}
}

// Rules are the council rules in force.
func (a *App) Rules() domain.CouncilRules {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rules
}

// OnLedgerEvent follows the accounts topic from its start: the FAN book
// keeps the escrow balances, and a policy with escrow rules sets the
// council's.
func (a *App) OnLedgerEvent(_ context.Context, m proto.Message) error {
	switch e := m.(type) {
	case *eventsv1.BookBatchAppended:
		a.FAN.Apply(e)
	case *eventsv1.PolicyVersioned:
		if e.GetPolicy().GetEscrow() == nil {
			return nil
		}
		r, err := domain.CouncilRulesFromPolicy(e.Policy.Escrow)
		if err != nil {
			// The ledger accepted the policy; the council keeps the rules in force.
			slog.Error("escrow: policy has council rules no proposal can meet; keeping the rules in force", "version", e.Version, "err", err)
			return nil
		}
		a.mu.Lock()
		a.rules = r
		a.mu.Unlock()
	}
	return nil
}
