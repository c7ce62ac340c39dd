// Package accounts is the ledger service (DESIGN §2): double-entry books
// per asset with holds and idempotent requests, deposits and withdrawals
// through payment rails, and ledger requests from sagas over Kafka.
package accounts

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/periodic"
	"github.com/fanfare/fanfare/internal/platform/rpc"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/accounts/adapters"
	"github.com/fanfare/fanfare/services/accounts/app"
	"github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ports"
	"golang.org/x/sync/errgroup"
)

// Config wires the service.
type Config struct {
	Store *eventstore.Store
	// Brokers for the ledger-request consumer; none: no Kafka consumer.
	Brokers []string
	// ConsumerSessionTimeout bounds how long partitions of a crashed
	// instance wait before another takes them (kgo's defaults, 45 s and a
	// 60 s rebalance timeout, when 0; else it bounds both).
	ConsumerSessionTimeout time.Duration
	// ConsumerInstanceID makes this instance a static member of the
	// ledger-request consumer group, so a restart takes its partitions back
	// at once. Give each running instance its own stable id.
	ConsumerInstanceID string
	// IdentityKey verifies the gateway's signed identities.
	IdentityKey ed25519.PublicKey
	// Policy is recorded as version 1 the first time the service starts on
	// an empty store (default: domain.DefaultPolicy). After that the newest
	// PolicyVersioned in the store's "policy" stream is in force.
	Policy domain.Policy
	// BankAccount is shown in the manual bank rail's deposit instructions.
	BankAccount string
	Writer      adapters.WriterConfig
	// HoldExpiryEvery is how often expired holds are voided (default 1 s).
	HoldExpiryEvery time.Duration
	Now             func() time.Time
}

// ledgerTopic carries LedgerTransactionRequested (an accounts event,
// whoever appends it).
var ledgerTopic, _ = events.Topic("fanfare.accounts.v1.LedgerTransactionRequested")

// Service is a runnable accounts service.
type Service struct {
	cfg Config
	App *app.App
}

// New recovers the books and read models from the event store.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Policy.Version == 0 {
		cfg.Policy = domain.DefaultPolicy()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HoldExpiryEvery <= 0 {
		cfg.HoldExpiryEvery = time.Second
	}
	if cfg.BankAccount == "" {
		cfg.BankAccount = "Fanfare Ltd, IBAN GB00 FANF 0000 0000 0000 00"
	}
	policy, err := adapters.CurrentPolicy(ctx, cfg.Store, cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("accounts: policy: %w", err)
	}
	cfg.Policy = policy
	a := &app.App{
		Books:      map[string]*adapters.BookWriter{},
		Transfers:  eventstore.NewRepository(cfg.Store, "transfer", domain.NewTransfer, eventstore.RepositoryOptions{}),
		Statements: adapters.NewStatements(),
		Rails:      map[string]app.Rail{"bank": app.ManualBank{Account: cfg.BankAccount}},
		Policy:     cfg.Policy,
	}
	for _, asset := range cfg.Policy.Assets.Codes() {
		// The statement read model replays the whole book, then follows the writer.
		if _, err := cfg.Store.ReadStream(ctx, adapters.BookStream(asset), 0, func(e eventstore.Event) error {
			if b, ok := e.Message.(*eventsv1.BookBatchAppended); ok {
				a.Statements.Apply(b)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("accounts: statements of %s: %w", asset, err)
		}
		wc := cfg.Writer
		wc.OnBatch = a.Statements.Apply
		w, err := adapters.OpenBookWriter(ctx, cfg.Store, asset, cfg.Policy, wc)
		if err != nil {
			return nil, err
		}
		a.Books[asset] = w
	}
	return &Service{cfg: cfg, App: a}, nil
}

// Handler is the Connect handler and the path to mount it on. Every call
// needs the gateway's signed identity.
func (s *Service) Handler() (string, http.Handler) {
	return accountsv1connect.NewAccountsServiceHandler(ports.Connect{App: s.App},
		rpc.HandlerOptions(s.cfg.IdentityKey, s.cfg.Now))
}

// Run runs the book writers, the hold-expiry clock and, with brokers, the
// ledger-request consumer, until ctx ends or one of them fails.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, w := range s.App.Books {
		g.Go(func() error { return w.Run(ctx) })
		// A book recovered under an older policy switches now, in its log.
		var current uint64
		w.Read(func(b *domain.Book) error { current = b.Policy().Version; return nil })
		if current < s.cfg.Policy.Version {
			if err := w.SetPolicy(ctx, s.cfg.Policy); err != nil {
				if ctx.Err() != nil {
					break // stopped (or a writer failed: Wait says which)
				}
				return fmt.Errorf("accounts: book %s to policy v%d: %w", w.Asset(), s.cfg.Policy.Version, err)
			}
		}
	}
	g.Go(func() error {
		return periodic.Run(ctx, s.cfg.HoldExpiryEvery, func(ctx context.Context) error {
			for _, w := range s.App.Books {
				if err := w.ExpireHolds(ctx, s.cfg.Now()); err != nil && !errors.Is(err, adapters.ErrWriterStopped) {
					return err
				}
			}
			return nil
		})
	})
	if len(s.cfg.Brokers) > 0 {
		g.Go(func() error {
			bc := kafka.BatchConfig{Brokers: s.cfg.Brokers, ConsumerGroup: ports.LedgerRequestsGroup, Topic: ledgerTopic,
				SessionTimeout: s.cfg.ConsumerSessionTimeout, InstanceID: s.cfg.ConsumerInstanceID}
			if bc.SessionTimeout > 0 {
				bc.HeartbeatInterval = bc.SessionTimeout / 10
				bc.RebalanceTimeout = bc.SessionTimeout
			}
			return kafka.ConsumeBatches(ctx, bc, ports.LedgerRequestBatches(s.App))
		})
	}
	return g.Wait()
}
