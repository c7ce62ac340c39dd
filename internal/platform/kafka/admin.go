package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPartitions is the partition count of topics Fanfare creates. Twelve
// divides evenly among 1, 2, 3, 4, 6 and 12 consumers of a group.
const DefaultPartitions int32 = 12

// ErrNoBrokers is returned by constructors given an empty broker list.
var ErrNoBrokers = errors.New("kafka: no brokers configured (set Brokers, e.g. 127.0.0.1:9092)")

// EnsureTopics creates every topic in topics that does not exist yet, with
// the given partition count (DefaultPartitions when partitions <= 0) and the
// broker's default replication factor. Existing topics are left as they are.
// It speaks the plain Kafka admin protocol, so it works the same against the
// embedded broker and a real cluster.
func EnsureTopics(ctx context.Context, brokers []string, topics []string, partitions int32) error {
	if len(brokers) == 0 {
		return ErrNoBrokers
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	defer cl.Close()
	return ensureTopics(ctx, kadm.NewClient(cl), topics, partitions)
}

// ValidateTopic applies Kafka's topic naming rules. Real brokers enforce
// them; the embedded one does not, and it stores topics under their names
// on disk, so we check before creating anything.
func ValidateTopic(topic string) error {
	switch {
	case topic == "":
		return errors.New("kafka: empty topic name")
	case topic == "." || topic == "..":
		return fmt.Errorf("kafka: invalid topic name %q", topic)
	case len(topic) > 249:
		return fmt.Errorf("kafka: topic name %.20q... is longer than 249 characters", topic)
	}
	for _, r := range topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("kafka: invalid topic name %q: only ASCII letters, digits, '.', '_' and '-' are allowed", topic)
		}
	}
	return nil
}

func ensureTopics(ctx context.Context, adm *kadm.Client, topics []string, partitions int32) error {
	if len(topics) == 0 {
		return nil
	}
	for _, t := range topics {
		if err := ValidateTopic(t); err != nil {
			return err
		}
	}
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	resps, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("kafka: create topics %v: %w", topics, err)
	}
	var errs []error
	for _, t := range topics {
		r, err := resps.On(t, nil)
		if err == nil {
			err = r.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			continue
		}
		if r.ErrMessage != "" {
			err = fmt.Errorf("%w (%s)", err, r.ErrMessage)
		}
		errs = append(errs, fmt.Errorf("kafka: create topic %q: %w", t, err))
	}
	return errors.Join(errs...)
}

// Ping checks that the cluster answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	if len(brokers) == 0 {
		return ErrNoBrokers
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping %v: %w", brokers, err)
	}
	return nil
}
