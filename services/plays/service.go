// Package plays is the plays service (DESIGN §5): listening sessions fed
// by player heartbeats, counted once at 50% coverage, with each song's plays
// numbered exactly.
package plays

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/periodic"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/services/plays/adapters"
	"github.com/fanfare/fanfare/services/plays/app"
	"github.com/fanfare/fanfare/services/plays/domain"
	"github.com/fanfare/fanfare/services/plays/ports"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// DefaultShards is the shard count of a new deployment. It is fixed for
// the life of the data: songs hash to shards.
const DefaultShards = 16

// Config wires the service.
type Config struct {
	Store *eventstore.Store
	// Brokers to learn songs from; none: songs only through App.Songs.
	Brokers     []string
	IdentityKey ed25519.PublicKey
	Shards      int
	// Rules apply until a policy with play rules arrives (default: the
	// design's).
	Rules domain.Rules
	// SnapshotEvery is how many events of a shard go by between snapshots
	// of it, so a restart replays at most that many per shard (default
	// 10,000).
	SnapshotEvery uint64
	// ExpireEvery is how often expired sessions are closed (default 1 s).
	ExpireEvery time.Duration
	Now         func() time.Time
}

// Service is a runnable plays service.
type Service struct {
	cfg Config
	App *app.App
}

// The topics the service learns from: the registrar's songs, the royalty
// saga's burn rate and the ledger's FAN balances and policy.
var (
	songsTopic, _    = events.Topic("fanfare.songs.v1.SongRegistered")
	royaltyTopic, _  = events.Topic("fanfare.royalty.v1.BurnRateChanged")
	accountsTopic, _ = events.Topic("fanfare.accounts.v1.BookBatchAppended")
)

// New recovers every shard from its stream.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.IdentityKey) != ed25519.PublicKeySize {
		return nil, errors.New("plays: a store and the identity key are required")
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.Rules == (domain.Rules{}) {
		cfg.Rules = domain.DefaultRules()
	}
	if err := cfg.Rules.Validate(); err != nil {
		return nil, err
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10_000
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	shards := make([]*adapters.ShardWriter, cfg.Shards)
	for i := range shards {
		w, err := adapters.OpenShard(ctx, cfg.Store, i, cfg.Rules, cfg.SnapshotEvery)
		if err != nil {
			return nil, err
		}
		shards[i] = w
	}
	return &Service{cfg: cfg, App: app.New(shards, app.NewSongs(), cfg.Rules, cfg.Now)}, nil
}

// Handler is the Connect handler and the path to mount it on.
func (s *Service) Handler() (string, http.Handler) {
	return playsv1connect.NewPlaysServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run runs the shard writers, the expiry clock and the followers of songs,
// balances, burn rate and policy until ctx ends or one of them fails.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, w := range s.App.Shards {
		g.Go(func() error { return w.Run(ctx) })
	}
	// Sessions start once the open-session counts are rebuilt and the read
	// models have caught up.
	var waiting atomic.Int32
	waiting.Store(2)
	ready := func() {
		if waiting.Add(-1) == 0 {
			close(s.App.Ready)
		}
	}
	g.Go(func() error {
		if err := s.App.Recover(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while recovering
			}
			return err
		}
		ready()
		return periodic.Run(ctx, s.cfg.ExpireEvery, s.App.ExpireSessions)
	})
	if len(s.cfg.Brokers) > 0 {
		kafka.FollowAll(ctx, g, s.cfg.Brokers, map[string]func(context.Context, proto.Message) error{
			songsTopic:    ports.SongEvent(s.App.Songs),
			royaltyTopic:  ports.LedgerEvent(s.App),
			accountsTopic: ports.LedgerEvent(s.App),
		}, ready)
	} else {
		ready() // songs come through App.Songs
	}
	return g.Wait()
}
