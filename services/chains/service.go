// Package chains is the distributor chains service (DESIGN §4): it issues
// sealed referral tokens, keeps distributors' keys, and answers every
// PurchaseRequested with the resolved chain or the reason it was rejected.
package chains

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	"github.com/fanfare/fanfare/services/chains/app"
	"github.com/fanfare/fanfare/services/chains/domain"
	"github.com/fanfare/fanfare/services/chains/ports"
)

// Config wires the service.
type Config struct {
	Store *eventstore.Store
	// Brokers for the purchase consumer; none: no Kafka consumer.
	Brokers    []string
	Subscriber kafka.SubscriberConfig
	// IdentityKey verifies the gateway's signed identities.
	IdentityKey ed25519.PublicKey
	// SigningKey is the service's key: it signs roots, and the box key hops
	// are sealed to is derived from it. Keep it stable: tokens in
	// circulation depend on it.
	SigningKey ed25519.PrivateKey
	// MaxHops bounds tokens (default 16).
	MaxHops int
	Now     func() time.Time
}

// Service is a runnable chains service.
type Service struct {
	cfg Config
	App *app.App
}

// New builds the service; it keeps no read model to rebuild.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.SigningKey) != ed25519.PrivateKeySize || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("chains: a store, a signing key and the identity key are required")
	}
	if cfg.MaxHops <= 0 {
		cfg.MaxHops = domain.DefaultMaxHops
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, App: &app.App{
		Keys:         domain.DeriveServiceKeys(cfg.SigningKey),
		MaxHops:      cfg.MaxHops,
		Distributors: eventstore.NewRepository(cfg.Store, "distributor", domain.NewDistributor, eventstore.RepositoryOptions{}),
		Referrals:    eventstore.NewRepository(cfg.Store, "referral", domain.NewReferral, eventstore.RepositoryOptions{}),
		Purchases:    eventstore.NewRepository(cfg.Store, "purchasechain", domain.NewPurchaseChain, eventstore.RepositoryOptions{}),
	}}, nil
}

// Handler is the Connect handler and the path to mount it on.
func (s *Service) Handler() (string, http.Handler) {
	return chainsv1connect.NewChainsServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run resolves purchases' tokens until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return kafka.RunGroups(ctx, s.cfg.Brokers, s.cfg.Subscriber, ports.Groups(s.App)...)
}
