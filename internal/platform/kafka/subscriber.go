package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/fanfare/fanfare/internal/platform/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("kafka: subscriber is closed")

// SubscriberConfig configures a Subscriber. Only Brokers is required.
type SubscriberConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string

	// ConsumerGroup shares a topic's partitions among every subscriber of
	// the group and resumes from the group's committed offsets. Empty means
	// no group: each Subscribe reads the whole topic from the beginning (or
	// the end, with StartAtEnd) and commits nothing.
	ConsumerGroup string

	// ClientID names the client in broker logs; "fanfare" when empty.
	ClientID string

	// StartAtEnd makes a subscription without committed offsets start at the
	// end of the topic instead of its beginning.
	StartAtEnd bool

	// NackResendSleep is the pause before a nacked message is redelivered;
	// 100ms when zero, none when negative.
	NackResendSleep time.Duration

	// CloseTimeout bounds how long Close (or canceling the Subscribe
	// context) waits for delivered messages to be acked or nacked before
	// canceling their contexts and giving up on them; 10s when zero.
	CloseTimeout time.Duration

	// Group membership timings; kgo's defaults (45s, 3s, 60s) when zero.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration

	// Partitions is the partition count of topics the subscriber creates;
	// DefaultPartitions when zero.
	Partitions int32

	// DisableTopicCreation stops Subscribe from creating a missing topic.
	DisableTopicCreation bool

	Logger watermill.LoggerAdapter

	// ClientOptions are appended last to the kgo options (TLS, SASL, tuning)
	// and so override the defaults set here.
	ClientOptions []kgo.Opt
}

func (c *SubscriberConfig) setDefaults() error {
	if len(c.Brokers) == 0 {
		return ErrNoBrokers
	}
	if c.ClientID == "" {
		c.ClientID = "fanfare"
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = 100 * time.Millisecond
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.SessionTimeout < 0 || c.HeartbeatInterval < 0 || c.RebalanceTimeout < 0 {
		return errors.New("kafka: group timings must not be negative")
	}
	c.Logger = orNop(c.Logger)
	return nil
}

// Subscriber is a watermill message.Subscriber reading Kafka topics. Every
// Subscribe call gets its own Kafka client (and, with a ConsumerGroup, its
// own group member). See the package documentation for the delivery
// contract.
type Subscriber struct {
	cfg SubscriberConfig

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	admin  *kgo.Client // lazily created, for topic creation
	wg     sync.WaitGroup

	topics sync.Map // topic -> struct{}: already ensured to exist
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber checks the configuration; it connects on Subscribe.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg, subs: map[*subscription]struct{}{}}, nil
}

// SubscribeInitialize creates topic if it is missing.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.ensureTopic(ctx, topic)
}

func (s *Subscriber) ensureTopic(ctx context.Context, topic string) error {
	if _, ok := s.topics.Load(topic); ok {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSubscriberClosed
	}
	if s.admin == nil {
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(s.cfg.Brokers...),
			kgo.ClientID(s.cfg.ClientID),
			kgo.WithLogger(kgoLogger{s.cfg.Logger}),
		}, s.cfg.ClientOptions...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("kafka: subscriber admin client: %w", err)
		}
		s.admin = cl
	}
	adm := kadm.NewClient(s.admin)
	s.mu.Unlock()

	if err := ensureTopics(ctx, adm, []string{topic}, s.cfg.Partitions); err != nil {
		return err
	}
	s.topics.Store(topic, struct{}{})
	return nil
}

// Subscribe starts consuming topic. The returned channel is closed when ctx
// is canceled or the Subscriber is closed, after messages in flight were
// settled (or CloseTimeout passed). Message contexts derive from ctx and are
// canceled once the message is acked or nacked.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if !s.cfg.DisableTopicCreation {
		createCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.ensureTopic(createCtx, topic)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSubscriberClosed
	}

	sub := &subscription{
		cfg:       &s.cfg,
		topic:     topic,
		group:     s.cfg.ConsumerGroup != "",
		ctx:       ctx,
		out:       make(chan *message.Message),
		soft:      make(chan struct{}),
		hard:      make(chan struct{}),
		done:      make(chan struct{}),
		rebalance: make(chan struct{}, 1),
		pending:   map[int32]kgo.EpochOffset{},
		logger: s.cfg.Logger.With(watermill.LogFields{
			"topic":          topic,
			"consumer_group": s.cfg.ConsumerGroup,
		}),
	}
	cl, err := kgo.NewClient(sub.clientOptions()...)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscribe to %s: %w", topic, err)
	}
	sub.cl = cl

	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sub.run()
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	go func() {
		select {
		case <-ctx.Done():
			sub.stop()
		case <-sub.done:
		}
	}()
	return sub.out, nil
}

// Close stops every subscription: no new messages are delivered, messages in
// flight get up to CloseTimeout to be acked, the offsets of acked messages
// are committed, and the group is left. Safe to call more than once.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	admin := s.admin
	s.mu.Unlock()

	for _, sub := range subs {
		sub.stop()
	}
	s.wg.Wait()
	if admin != nil {
		admin.Close()
	}
	return nil
}

// subscription is one Subscribe call: one kgo client, one output channel.
type subscription struct {
	cfg    *SubscriberConfig
	topic  string
	group  bool
	cl     *kgo.Client
	ctx    context.Context
	out    chan *message.Message
	logger watermill.LoggerAdapter

	stopOnce sync.Once
	soft     chan struct{} // closed: deliver nothing new
	hard     chan struct{} // closed: stop waiting for in-flight acks
	done     chan struct{} // closed: run returned, out is closed

	// rebalance is signaled when a group rebalance waits for us (we block
	// rebalances while a poll is being processed).
	rebalance chan struct{}

	mu      sync.Mutex
	pending map[int32]kgo.EpochOffset // acked, not yet committed (group only)
}

func (sub *subscription) clientOptions() []kgo.Opt {
	cfg := sub.cfg
	reset := kgo.NewOffset().AtStart()
	if cfg.StartAtEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kgoLogger{sub.logger}),
		kgo.ConsumeTopics(sub.topic),
		kgo.ConsumeResetOffset(reset),
		// Kafka's own default rather than kgo's 5s: partitions whose
		// committed offsets load after a fetch was sent join only the next
		// fetch, so this wait is also how long a new group member can sit
		// idle next to data.
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if sub.group {
		opts = append(opts,
			kgo.ConsumerGroup(cfg.ConsumerGroup),
			// We commit acked offsets ourselves: never an unacked one.
			kgo.DisableAutoCommit(),
			// No rebalance while a poll is being delivered, so commits
			// only ever cover partitions we still own.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
				select {
				case sub.rebalance <- struct{}{}:
				default:
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
				sub.commit()
				sub.forget(revoked[sub.topic])
				forgetLag(cfg.ConsumerGroup, revoked)
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
				sub.forget(lost[sub.topic])
				forgetLag(cfg.ConsumerGroup, lost)
			}),
		)
		opts = append(opts, groupTimings(cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.RebalanceTimeout)...)
	}
	return append(opts, cfg.ClientOptions...)
}

// stop begins a graceful stop: nothing new is delivered at once, and after
// CloseTimeout in-flight messages are abandoned.
func (sub *subscription) stop() {
	sub.stopOnce.Do(func() {
		close(sub.soft)
		go func() {
			t := time.NewTimer(sub.cfg.CloseTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				close(sub.hard)
			case <-sub.done:
			}
		}()
	})
}

func (sub *subscription) stopping() bool {
	select {
	case <-sub.soft:
		return true
	default:
		return false
	}
}

func (sub *subscription) run() {
	defer close(sub.done)
	defer close(sub.out)

	pollCtx, cancelPoll := context.WithCancel(context.Background())
	defer cancelPoll()
	go func() {
		select {
		case <-sub.soft:
			cancelPoll()
		case <-pollCtx.Done():
		}
	}()

	for !sub.stopping() {
		fetches := sub.cl.PollFetches(pollCtx)
		if fetches.IsClientClosed() || sub.stopping() {
			break
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			// kgo keeps retrying (reconnects, leader moves); we only report.
			failed = true
			sub.logger.Error("Fetch error", err, watermill.LogFields{"partition": partition})
		})
		if failed && fetches.Empty() {
			if sub.group {
				sub.cl.AllowRebalance()
			}
			// Do not spin on an error that repeats until the broker is back.
			sleep(250*time.Millisecond, sub.soft)
			continue
		}

		// A pending rebalance signal is kept even if it may be stale: kgo
		// sends it from a goroutine, so it can arrive after this poll
		// started blocking the rebalance, and dropping it would deliver
		// the poll to a reader that may never come while the group waits.
		// A stale one costs only a rewind and a re-poll.

		if sub.group {
			recordLag(sub.cfg.ConsumerGroup, fetches)
		}
		leftovers := sub.process(fetches)
		if sub.group {
			sub.commit()
			if len(leftovers) > 0 && !sub.stopping() {
				// Delivery stopped early for a rebalance: rewind so the
				// undelivered records of partitions we keep are fetched
				// again instead of skipped.
				sub.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{sub.topic: leftovers})
			}
			sub.cl.AllowRebalance()
		}
	}

	if sub.group {
		sub.commit()
		sub.cl.AllowRebalance()
		// Leave the group within CloseTimeout even if the broker is gone.
		ctx, cancel := context.WithTimeout(context.Background(), sub.cfg.CloseTimeout)
		if err := sub.cl.LeaveGroupContext(ctx); err != nil {
			sub.logger.Error("Leaving consumer group", err, nil)
		}
		cancel()
	}
	sub.cl.Close()
}

// process delivers one poll, partitions concurrently, each in order. It
// returns, per partition it stopped early, the offset of the first record
// that was not acked.
func (sub *subscription) process(fetches kgo.Fetches) map[int32]kgo.EpochOffset {
	abort := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		select {
		case <-sub.soft:
		case <-sub.rebalance:
		case <-finished:
			return
		}
		close(abort)
	}()
	defer close(finished)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		leftovers = map[int32]kgo.EpochOffset{}
	)
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		wg.Add(1)
		go func(recs []*kgo.Record) {
			defer wg.Done()
			if rest := sub.deliver(recs, abort); rest != nil {
				mu.Lock()
				leftovers[rest.Partition] = kgo.EpochOffset{Epoch: rest.LeaderEpoch, Offset: rest.Offset}
				mu.Unlock()
			}
		}(p.Records)
	})
	wg.Wait()
	return leftovers
}

// deliver hands recs (one partition, in offset order) out one at a time,
// waiting for each to be acked; a nack redelivers the same record. It
// returns the first record not acked, or nil when all were.
func (sub *subscription) deliver(recs []*kgo.Record, abort <-chan struct{}) *kgo.Record {
	for _, rec := range recs {
		for acked := false; !acked; {
			select {
			case <-abort:
				return rec
			default:
			}

			msg := toMessage(rec)
			ctx, cancel := context.WithCancel(consumedContext(sub.ctx, rec, msg))
			msg.SetContext(ctx)

			select {
			case sub.out <- msg:
			case <-abort:
				cancel()
				return rec
			}

			select {
			case <-msg.Acked():
				cancel()
				sub.markAcked(rec)
				acked = true
			case <-msg.Nacked():
				cancel()
				if !sleep(sub.cfg.NackResendSleep, abort) {
					return rec
				}
			case <-sub.hard:
				cancel()
				return rec
			}
		}
	}
	return nil
}

func sleep(d time.Duration, abort <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-abort:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-abort:
		return false
	}
}

func (sub *subscription) markAcked(rec *kgo.Record) {
	if !sub.group {
		return
	}
	sub.mu.Lock()
	sub.pending[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	sub.mu.Unlock()
}

// forget drops pending commits of partitions we no longer own.
func (sub *subscription) forget(partitions []int32) {
	sub.mu.Lock()
	for _, p := range partitions {
		delete(sub.pending, p)
	}
	sub.mu.Unlock()
}

// commit commits the offsets of acked messages. On failure they stay
// pending and go with the next commit; meanwhile redelivery covers them.
func (sub *subscription) commit() {
	sub.mu.Lock()
	if len(sub.pending) == 0 {
		sub.mu.Unlock()
		return
	}
	offsets := make(map[int32]kgo.EpochOffset, len(sub.pending))
	for p, eo := range sub.pending {
		offsets[p] = eo
	}
	sub.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), sub.cfg.CloseTimeout)
	defer cancel()
	var commitErr error
	sub.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{sub.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				commitErr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						commitErr = fmt.Errorf("partition %d: %w", p.Partition, err)
						return
					}
				}
			}
		})
	if commitErr != nil {
		sub.logger.Error("Committing offsets", commitErr, nil)
		return
	}

	sub.mu.Lock()
	for p, eo := range offsets {
		if sub.pending[p] == eo {
			delete(sub.pending, p)
		}
	}
	sub.mu.Unlock()
}

// recordLag sets the consumer lag of group on every partition a poll
// returned records of: what is left behind the partition's high watermark
// once those records are handled.
func recordLag(group string, fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		last := p.Records[len(p.Records)-1]
		metrics.SetConsumerLag(group, p.Topic, p.Partition, max(p.HighWatermark-(last.Offset+1), 0))
	})
}

// forgetLag drops the lag of partitions the group member no longer owns,
// so a stale value does not outlive the assignment.
func forgetLag(group string, partitions map[string][]int32) {
	for topic, ps := range partitions {
		metrics.ForgetConsumerLag(group, topic, ps...)
	}
}

// groupTimings are the consumer-group membership options that are set
// (kgo's defaults where zero), for every group consumer here.
func groupTimings(session, heartbeat, rebalance time.Duration) []kgo.Opt {
	var opts []kgo.Opt
	if session > 0 {
		opts = append(opts, kgo.SessionTimeout(session))
	}
	if heartbeat > 0 {
		opts = append(opts, kgo.HeartbeatInterval(heartbeat))
	}
	if rebalance > 0 {
		opts = append(opts, kgo.RebalanceTimeout(rebalance))
	}
	return opts
}
