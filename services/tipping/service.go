// Package tipping is the fan payments service (DESIGN §6): tips,
// thumbs-up and auto-tips paid to a song's payees by its splits, "true fan"
// subscriptions charged on the clock, and purchases, which the referral
// saga pays. Every payment is a ledger request in the service's own
// streams; the ledger's answers come back through Kafka.
package tipping

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
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/fanfare/fanfare/services/songs/songview"
	"github.com/fanfare/fanfare/services/tipping/app"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"github.com/fanfare/fanfare/services/tipping/ports"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// SubscriptionsStream is the one stream of every subscription.
const SubscriptionsStream = "subscriptions"

var songsTopic, _ = events.Topic("fanfare.songs.v1.SongRegistered")

// Config wires the service.
type Config struct {
	Store      *eventstore.Store
	Brokers    []string
	Subscriber kafka.SubscriberConfig
	// IdentityKey verifies the gateway's signed identities.
	IdentityKey ed25519.PublicKey
	// Rules (default: the design's).
	Rules domain.Rules
	// Tick is how often the subscription clock is checked (default 1 s).
	Tick time.Duration
	// Now is the clock subscriptions are charged by (default time.Now).
	Now func() time.Time
}

// Service is a runnable tipping service.
type Service struct {
	cfg Config
	App *app.App
}

// New recovers the subscriptions' state; the song catalog fills in Run.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("tipping: a store and the identity key are required")
	}
	if cfg.Rules == (domain.Rules{}) {
		cfg.Rules = domain.DefaultRules()
	}
	if err := cfg.Rules.Validate(); err != nil {
		return nil, err
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rules := cfg.Rules
	subs, err := eventstore.OpenWriter(ctx, cfg.Store, SubscriptionsStream, func() *domain.Subscriptions { return domain.NewSubscriptions(rules) },
		func(s *domain.Subscriptions, e eventstore.Event) error { return s.Apply(e.Message) }, eventstore.WriterOptions[*domain.Subscriptions]{})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, App: &app.App{
		Rules:     cfg.Rules,
		Fans:      eventstore.NewRepository(cfg.Store, "fan", domain.NewFan, eventstore.RepositoryOptions{}),
		Purchases: eventstore.NewRepository(cfg.Store, "purchase", domain.NewPurchase, eventstore.RepositoryOptions{}),
		Subs:      subs,
		Songs:     songview.NewCatalog(),
		SongWait:  30 * time.Second,
		Now:       cfg.Now,
	}}, nil
}

// Handler is the Connect handler and the path to mount it on. Every call
// needs the gateway's signed identity.
func (s *Service) Handler() (string, http.Handler) {
	return tippingv1connect.NewTippingServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run runs the subscriptions' writer and clock, the song catalog and,
// once the catalog caught up, the Kafka consumers, until ctx ends or one
// of them fails.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.App.Subs.Run(ctx) })
	g.Go(func() error { return periodic.Run(ctx, s.cfg.Tick, s.App.RunDue) })
	if len(s.cfg.Brokers) == 0 {
		s.App.Songs.CaughtUp()
		return g.Wait()
	}
	kafka.FollowThenRunGroups(ctx, g, s.cfg.Brokers, s.cfg.Subscriber, map[string]func(context.Context, proto.Message) error{songsTopic: s.App.Songs.OnEvent},
		s.App.Songs.CaughtUp, ports.Groups(s.App)...)
	return g.Wait()
}
