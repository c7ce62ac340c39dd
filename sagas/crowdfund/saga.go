// Package crowdfund is the crowdfund saga (DESIGN §7): when the escrow
// service closes a campaign, the saga captures every standing pledge's hold
// to the campaign's payees, or voids every one, and reports the settlement
// back (CampaignSettlementCompleted), from which the escrow service records
// the campaign's success or failure.
package crowdfund

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/crowdfund/domain"
	escrow "github.com/fanfare/fanfare/services/escrow/domain"
	"golang.org/x/sync/errgroup"
)

// The saga's consumer groups (Kafka group ids, and part of the ids of the
// events the saga appends in reaction: never rename).
const (
	// CampaignsGroup consumes CampaignClosed (fanfare.escrow.v1).
	CampaignsGroup = "crowdfund.campaigns"
	// LedgerGroup consumes BookBatchAppended (fanfare.accounts.v1).
	LedgerGroup = "crowdfund.ledger"
)

// Category of the saga's streams: crowdfund-<campaign id>.
const Category = "crowdfund"

// Config wires the saga.
type Config struct {
	Store   *eventstore.Store
	Brokers []string
	// Subscriber tunes the consumer groups (group timings).
	Subscriber kafka.SubscriberConfig
}

// Service is the runnable saga; its state is in its streams.
type Service struct {
	cfg         Config
	Settlements *eventstore.Repository[*domain.Settlement]
}

// New builds the saga.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("crowdfund: a store and Kafka brokers are required")
	}
	return &Service{cfg: cfg, Settlements: eventstore.NewRepository(cfg.Store, Category, domain.NewSettlement, eventstore.RepositoryOptions{})}, nil
}

// OnCampaignClosed fixes the settlement's outcome and holds and requests
// the first wave.
func (s *Service) OnCampaignClosed(ctx context.Context, cause events.Envelope, e *eventsv1.CampaignClosed) error {
	return s.Settlements.React(ctx, e.CampaignId, CampaignsGroup, cause, func(st *domain.Settlement) error { return st.Start(e) })
}

// OnBookBatch records the ledger's answers to the saga's requests and
// requests the next holds.
func (s *Service) OnBookBatch(ctx context.Context, cause events.Envelope, e *eventsv1.BookBatchAppended) error {
	if e.Asset != domain.USD {
		return nil
	}
	var mine []*eventsv1.BookBatchAppended_Decision
	for _, en := range e.Entries {
		if d := en.GetDecision(); d.GetRequest().GetRequestedBy() == domain.RequestedBy {
			mine = append(mine, d)
		}
	}
	return eventstore.ReactEach(ctx, s.Settlements, LedgerGroup, cause, mine,
		func(d *eventsv1.BookBatchAppended_Decision) string {
			id := escrow.CampaignOf(d.Request.TransactionId)
			if id == "" {
				slog.Warn("crowdfund: a ledger answer names no campaign", "transaction", d.Request.TransactionId)
			}
			return id
		},
		func(st *domain.Settlement, d *eventsv1.BookBatchAppended_Decision) error { return st.Decide(d) }, nil)
}

// Groups are the saga's consumer groups.
func (s *Service) Groups() []kafka.HandlerGroup {
	return []kafka.HandlerGroup{
		{Name: CampaignsGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(s.OnCampaignClosed)}},
		{Name: LedgerGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(s.OnBookBatch)}},
	}
}

// Run runs the consumer groups until ctx ends (then it returns nil) or one
// fails.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	kafka.FollowThenRunGroups(ctx, g, s.cfg.Brokers, s.cfg.Subscriber, nil, nil, s.Groups()...)
	return g.Wait()
}
