package referral

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// The saga's consumer groups, one per topic (Kafka group ids, and part of
// the ids of the events the saga appends in reaction: never rename).
const (
	// PurchasesGroup consumes PurchaseRequested (fanfare.tipping.v1).
	PurchasesGroup = "referral.purchases"
	// ChainsGroup consumes DistributorChainResolved and
	// DistributorChainRejected (fanfare.chains.v1).
	ChainsGroup = "referral.chains"
	// LedgerGroup consumes BookBatchAppended (fanfare.accounts.v1).
	LedgerGroup = "referral.ledger"
)

// DefaultSongWait is how long planning waits for an unknown song.
const DefaultSongWait = 30 * time.Second

var songsTopic, _ = events.Topic("fanfare.songs.v1.SongRegistered")

// Config wires the saga.
type Config struct {
	Store   *eventstore.Store
	Brokers []string
	// Subscriber tunes the consumer groups (group timings).
	Subscriber kafka.SubscriberConfig
	// SongWait bounds how long planning waits for a song to become known
	// (default DefaultSongWait).
	SongWait time.Duration
}

// Service is the runnable saga.
type Service struct {
	cfg  Config
	Saga *Saga
}

// New builds the saga; its state is in its streams, loaded per purchase.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("referral: a store and Kafka brokers are required")
	}
	if cfg.SongWait <= 0 {
		cfg.SongWait = DefaultSongWait
	}
	return &Service{cfg: cfg, Saga: NewSaga(cfg.Store, cfg.SongWait)}, nil
}

// Groups are the saga's consumer groups.
func (s *Service) Groups() []kafka.HandlerGroup {
	return []kafka.HandlerGroup{
		{Name: PurchasesGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(s.Saga.OnPurchaseRequested)}},
		{Name: ChainsGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(s.Saga.OnChainResolved), kafka.Reaction(s.Saga.OnChainRejected)}},
		{Name: LedgerGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(s.Saga.OnBookBatch)}},
	}
}

// Run runs the saga until ctx ends (then it returns nil) or a part fails:
// the song read model (the songs topic read from its start) and, once it
// caught up (so no purchase is planned on a stale price), the consumer
// groups.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	kafka.FollowThenRunGroups(ctx, g, s.cfg.Brokers, s.cfg.Subscriber, map[string]func(context.Context, proto.Message) error{
		songsTopic: s.Saga.Songs.OnEvent,
	}, s.Saga.Songs.CaughtUp, s.Groups()...)
	return g.Wait()
}
