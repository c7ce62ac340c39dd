// Package escrow is the escrow service (DESIGN §7): artists' discovery
// escrows, released to the artist's payees or forfeited by a moderator
// council, and crowdfund campaigns whose pledges are holds on the backers'
// wallets until the crowdfund saga settles them all or nothing.
package escrow

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/periodic"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/proto/gen/fanfare/escrow/v1/escrowv1connect"
	"github.com/fanfare/fanfare/services/escrow/app"
	"github.com/fanfare/fanfare/services/escrow/domain"
	"github.com/fanfare/fanfare/services/escrow/ports"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

var accountsTopic, _ = events.Topic("fanfare.accounts.v1.BookBatchAppended")

// Config wires the service.
type Config struct {
	Store      *eventstore.Store
	Brokers    []string
	Subscriber kafka.SubscriberConfig
	// IdentityKey verifies the gateway's signed identities.
	IdentityKey ed25519.PublicKey
	// Tick is how often campaign deadlines are checked (default 1 s).
	Tick time.Duration
	// Now is the clock of campaign deadlines (default time.Now).
	Now func() time.Time
}

// Service is a runnable escrow service.
type Service struct {
	cfg Config
	App *app.App
}

// New recovers the deadlines of the campaigns not closed yet.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("escrow: a store and the identity key are required")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := app.New(eventstore.NewRepository(cfg.Store, "council", domain.NewCouncil, eventstore.RepositoryOptions{}),
		eventstore.NewRepository(cfg.Store, "campaign", domain.NewCampaign, eventstore.RepositoryOptions{}), cfg.Now)
	if err := a.Recover(ctx, cfg.Store); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, App: a}, nil
}

// Handler is the Connect handler and the path to mount it on. Every call
// needs the gateway's signed identity.
func (s *Service) Handler() (string, http.Handler) {
	return escrowv1connect.NewEscrowServiceHandler(ports.Connect{App: s.App},
		// Identity tokens expire on the wall clock, not the deadlines' clock.
		rpc.HandlerOptions(s.cfg.IdentityKey, time.Now))
}

// Run runs the deadline clock, the FAN balance and policy read model (the
// accounts topic from its start) and, once it caught up (so no proposal
// is checked against a stale balance), the Kafka consumers, until ctx ends
// or one of them fails.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return periodic.Run(ctx, s.cfg.Tick, s.App.RunDue) })
	if len(s.cfg.Brokers) == 0 {
		return g.Wait()
	}
	kafka.FollowThenRunGroups(ctx, g, s.cfg.Brokers, s.cfg.Subscriber, map[string]func(context.Context, proto.Message) error{accountsTopic: s.App.OnLedgerEvent},
		nil, ports.Groups(s.App)...)
	return g.Wait()
}
