package royalty

import (
	"context"
	"errors"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/sagas/royalty/domain"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// PlaysGroup consumes PlayCounted (a Kafka group id: never rename).
const PlaysGroup = "royalty.plays"

var (
	songsTopic, _    = events.Topic("fanfare.songs.v1.SongRegistered")
	accountsTopic, _ = events.Topic("fanfare.accounts.v1.BookBatchAppended")
)

// Config wires the saga.
type Config struct {
	Store   *eventstore.Store
	Brokers []string
	// Subscriber tunes the PlayCounted consumer (group timings).
	Subscriber kafka.SubscriberConfig
	// Rules apply until a policy with reward rules arrives (default: the
	// design's).
	Rules domain.Rules
	// SnapshotEvery is how many saga events go by between snapshots of its
	// state, so a restart replays at most that many (default 10,000).
	SnapshotEvery uint64
}

// Service is the runnable saga.
type Service struct {
	cfg  Config
	Saga *Saga
}

// New recovers the saga's state from its stream.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("royalty: a store and Kafka brokers are required")
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10_000
	}
	if cfg.Rules == (domain.Rules{}) {
		cfg.Rules = domain.DefaultRules()
	}
	w, err := eventstore.OpenWriter(ctx, cfg.Store, Stream, newState(cfg.Rules), applyState,
		eventstore.WriterOptions[*State]{SnapshotEvery: cfg.SnapshotEvery, Snapshot: snapshot, Restore: restore})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, Saga: newSaga(w)}, nil
}

// Run runs the saga until ctx ends or a part fails: its writer, the song
// and ledger read models (each topic read from its start), and, once both
// models caught up (so no play is planned on a stale balance), the
// PlayCounted consumer. That one keeps each song's plays in order (the
// saga's state is a watermark per song) and handles different songs' at
// once, so their reward requests share the writer's appends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Saga.W.Run(ctx) })
	caughtUp := make(chan struct{})
	kafka.FollowAll(ctx, g, s.cfg.Brokers, map[string]func(context.Context, proto.Message) error{
		songsTopic:    s.Saga.Songs.OnEvent,
		accountsTopic: s.Saga.OnLedgerEvent,
	}, func() { close(caughtUp) })
	g.Go(func() error {
		select {
		case <-caughtUp:
		case <-ctx.Done():
			return nil
		}
		return kafka.ConsumeKeyed(ctx, kafka.KeyedConfig{Brokers: s.cfg.Brokers, ConsumerGroup: PlaysGroup, Subscriber: s.cfg.Subscriber},
			func(e *eventsv1.PlayCounted) string { return e.SongId }, s.Saga.OnPlayCounted)
	})
	return g.Wait()
}
