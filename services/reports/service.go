// Package reports is the reports service (DESIGN §8): the artist dashboard
// and payee activity from its projection of the services' events, and the
// settlement export and audit replay over the event log.
package reports

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/periodic"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	"github.com/fanfare/fanfare/services/reports/app"
	"github.com/fanfare/fanfare/services/reports/ports"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// Config configures the service.
type Config struct {
	Store *eventstore.Store
	// EventStoreURL is the store's connection string: the export and the
	// audit read the log over their own connection.
	EventStoreURL string
	// Brokers feed the projection; without them it stays empty (tests of
	// the export and the audit alone).
	Brokers     []string
	IdentityKey ed25519.PublicKey
	// SaveEvery is how often a changed projection is saved (default 5 s);
	// it is saved on stop too.
	SaveEvery time.Duration
	Now       func() time.Time
}

// Service is the reports service.
type Service struct {
	cfg Config
	App *app.App
}

// The topics the projection reads: songs, rewards, the ledger, campaigns.
var topics = func() []string {
	var out []string
	for _, t := range []string{"fanfare.songs.v1.SongRegistered", "fanfare.royalty.v1.RewardRequested",
		"fanfare.accounts.v1.BookBatchAppended", "fanfare.escrow.v1.CampaignOpened"} {
		topic, err := events.Topic(t)
		if err != nil {
			panic(err)
		}
		out = append(out, topic)
	}
	return out
}()

// New loads the saved projection.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.EventStoreURL == "" || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("reports: a store, its url and the identity key are required")
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := app.New(cfg.Store, cfg.EventStoreURL)
	if err := a.Load(ctx); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, App: a}, nil
}

// Handler serves ReportsService.
func (s *Service) Handler() (string, http.Handler) {
	return reportsv1connect.NewReportsServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run follows the topics into the projection and saves it every SaveEvery
// and once more on the way out.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if len(s.cfg.Brokers) > 0 {
		fns := map[string]func(context.Context, proto.Message) error{}
		for _, t := range topics {
			fns[t] = ports.Event(s.App)
		}
		kafka.FollowAll(gctx, g, s.cfg.Brokers, fns, func() { slog.Info("reports projection caught up") })
	}
	g.Go(func() error { return periodic.Run(gctx, s.cfg.SaveEvery, s.App.Save) })
	err := g.Wait()
	// A fresh context: ctx is done, and what was applied should not be
	// read again next time.
	saveCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, s.App.Save(saveCtx))
}
