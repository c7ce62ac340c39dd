package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("kafka: publisher is closed")

// PublisherConfig configures a Publisher. Only Brokers is required.
type PublisherConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string

	// ClientID names the client in broker logs; "fanfare" when empty.
	ClientID string

	// PublishTimeout bounds how long one Publish waits for the broker to
	// acknowledge (kgo retries meanwhile, e.g. across a broker restart);
	// 30s when zero.
	PublishTimeout time.Duration

	// Partitions is the partition count of topics the publisher creates;
	// DefaultPartitions when zero.
	Partitions int32

	// DisableTopicCreation stops the publisher from creating a missing topic
	// on first use (for clusters where topics are provisioned elsewhere).
	DisableTopicCreation bool

	Logger watermill.LoggerAdapter

	// ClientOptions are appended last to the kgo options (TLS, SASL, tuning)
	// and so override the defaults set here.
	ClientOptions []kgo.Opt
}

func (c *PublisherConfig) setDefaults() error {
	if len(c.Brokers) == 0 {
		return ErrNoBrokers
	}
	if c.ClientID == "" {
		c.ClientID = "fanfare"
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.PublishTimeout < time.Second {
		return fmt.Errorf("kafka: PublishTimeout %s is below kgo's minimum of 1s", c.PublishTimeout)
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	c.Logger = orNop(c.Logger)
	return nil
}

// Publisher is a watermill message.Publisher writing to Kafka with an
// idempotent producer (acks=all, no duplicates from retries, order kept per
// partition). Publish is synchronous: it returns once every message is
// acknowledged by the broker, or with the first failure.
type Publisher struct {
	cfg PublisherConfig
	cl  *kgo.Client
	adm *kadm.Client

	topics sync.Map // topic -> struct{}: already ensured to exist

	mu     sync.RWMutex // Publish holds it shared, Close exclusively
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher connects lazily: it fails only on a bad configuration; an
// unreachable broker shows up as a Publish error.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kgoLogger{cfg.Logger}),
		// Idempotent writes are kgo's default; acks=all is required by them.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(cfg.PublishTimeout),
		// Publish waits for the ack anyway; lingering would only add latency.
		kgo.ProducerLinger(0),
	}
	opts = append(opts, cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new publisher: %w", err)
	}
	return &Publisher{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Publish writes messages to topic and waits until all are acknowledged.
// Each record is produced under its message's context, so a canceled message
// context cancels its publish. Messages sharing a partition key are written
// in the order given.
func (p *Publisher) Publish(topic string, messages ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if len(messages) == 0 {
		return nil
	}
	if err := p.ensureTopic(messages[0].Context(), topic); err != nil {
		return err
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wg.Add(len(messages))
	for _, msg := range messages {
		rec := toRecord(topic, msg)
		id := msg.UUID
		p.cl.Produce(msg.Context(), rec, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("kafka: publish message %s to %s: %w", id, topic, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (p *Publisher) ensureTopic(ctx context.Context, topic string) error {
	if p.cfg.DisableTopicCreation {
		return nil
	}
	if _, ok := p.topics.Load(topic); ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	if err := ensureTopics(ctx, p.adm, []string{topic}, p.cfg.Partitions); err != nil {
		return err
	}
	p.topics.Store(topic, struct{}{})
	return nil
}

// Close waits for publishes in progress and closes the connection. It is safe
// to call more than once.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cl.Close()
	return nil
}
