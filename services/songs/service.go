// Package songs is the registrar (DESIGN §3): signed song descriptions,
// content-hash copies, fingerprint conflicts held for moderators, and
// download locations sealed until a purchase or a campaign reveals them.
package songs

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	"github.com/fanfare/fanfare/services/songs/adapters"
	"github.com/fanfare/fanfare/services/songs/app"
	"github.com/fanfare/fanfare/services/songs/domain"
	"github.com/fanfare/fanfare/services/songs/ports"
)

// Category is the stream category of songs: song-<id>.
const Category = "song"

// Config wires the service.
type Config struct {
	Store *eventstore.Store
	// Brokers for the reveal and unlock consumers; none: no Kafka consumer.
	Brokers []string
	// Subscriber tunes the consumers (group timings).
	Subscriber kafka.SubscriberConfig
	// IdentityKey verifies the gateway's signed identities.
	IdentityKey ed25519.PublicKey
	// SigningKey is the registrar's key: it signs descriptions, and the box
	// key that seals locations is derived from it. Keep it stable: peers
	// verify with its public half.
	SigningKey ed25519.PrivateKey
	// Assets prices may be in (default USD and FAN).
	Assets      money.Assets
	Fingerprint domain.FingerprintIndexConfig
	Now         func() time.Time
}

// Service is a runnable songs service.
type Service struct {
	cfg Config
	App *app.App
}

// New rebuilds the catalog from the song streams.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.SigningKey) != ed25519.PrivateKeySize || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("songs: a store, a signing key and the identity key are required")
	}
	if cfg.Assets.Len() == 0 {
		cfg.Assets = money.DefaultAssets()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &app.App{
		Songs:   eventstore.NewRepository(cfg.Store, Category, domain.NewSong, eventstore.RepositoryOptions{}),
		Catalog: adapters.NewCatalog(cfg.Fingerprint),
		Assets:  cfg.Assets,
		Key:     cfg.SigningKey,
		Box:     sealbox.Derive(cfg.SigningKey, app.BoxPurpose),
	}
	songs := map[string]*domain.Song{}
	var order []*domain.Song
	prefix := Category + "-"
	if _, err := cfg.Store.CatchUp(ctx, []string{prefix}, func(e eventstore.Event) error {
		id := e.Envelope.Stream[len(prefix):]
		s, ok := songs[id]
		if !ok {
			s = domain.NewSong(id)
			songs[id] = s
			order = append(order, s)
		}
		return s.Apply(e.Message)
	}); err != nil {
		return nil, fmt.Errorf("songs: catalog: %w", err)
	}
	// In first-seen order, so the conflict index is built as it was written.
	for _, s := range order {
		if err := a.Catalog.Put(s); err != nil {
			return nil, fmt.Errorf("songs: catalog: %w", err)
		}
	}
	return &Service{cfg: cfg, App: a}, nil
}

// Handler is the Connect handler and the path to mount it on.
func (s *Service) Handler() (string, http.Handler) {
	return songsv1connect.NewSongsServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run consumes purchase and campaign events until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return kafka.RunGroups(ctx, s.cfg.Brokers, s.cfg.Subscriber, ports.Groups(s.App)...)
}
