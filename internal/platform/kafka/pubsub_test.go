package kafka_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// stressEnabled gates the stress run of the universal suite (ten suites in
// parallel); the full test task sets FANFARE_STRESS=1.
var stressEnabled = os.Getenv("FANFARE_STRESS") == "1"

// testSubscriberConfig is tuned for tests only where the suite would
// otherwise just wait: fast heartbeats make rebalances quick, a short nack
// pause keeps nack loops of a hundred messages short, and a short close
// timeout matters because the suite's multiplied subscribers are closed one
// after another while each still holds a message nobody will ever ack.
func testSubscriberConfig(brokers []string, group string) kafka.SubscriberConfig {
	return kafka.SubscriberConfig{
		Brokers:           brokers,
		ConsumerGroup:     group,
		NackResendSleep:   5 * time.Millisecond,
		CloseTimeout:      250 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
	}
}

// newPubSub builds one publisher and one subscriber. keyed publishers put
// the payload in the partition key (when the message has none), so messages
// with equal payloads share a partition: the suite's ordering tests group
// messages by payload, and ordering is promised per partition key.
func newPubSub(t *testing.T, brokers []string, group string, keyed bool) (message.Publisher, message.Subscriber) {
	t.Helper()
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := kafka.NewSubscriber(testSubscriberConfig(brokers, group))
	if err != nil {
		t.Fatal(err)
	}
	if !keyed {
		return pub, sub
	}
	keyedPub, err := message.MessageTransformPublisherDecorator(func(msg *message.Message) {
		if msg.Metadata.Get(kafka.PartitionKeyMetadataKey) == "" {
			kafka.SetPartitionKey(msg, string(msg.Payload))
		}
	})(pub)
	if err != nil {
		t.Fatal(err)
	}
	return keyedPub, sub
}

var nonGroupChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// perTestGroup names the group after the running suite test, so every
// subscriber one suite test creates joins the same group and resumes from
// the offsets the previous one committed.
func perTestGroup(t *testing.T) string {
	return "g-" + nonGroupChars.ReplaceAllString(t.Name(), "_")
}

// noGroupFeatures: subscribers without a group each read the topic from the
// beginning, so a new one receives old messages. Messages are keyed, so
// order per key is guaranteed, even with ten subscribers merged into one
// channel (each delivers every key in order).
var noGroupFeatures = tests.Features{
	ConsumerGroups:                      true,
	ExactlyOnceDelivery:                 false,
	GuaranteedOrder:                     true,
	GuaranteedOrderWithSingleSubscriber: false,
	Persistent:                          true,
	NewSubscriberReceivesOldMessages:    true,
	RestartServiceCommand:               nil, // broker restarts: TestSubscriberSurvivesBrokerRestart
}

// groupFeatures: every subscriber of one suite test shares a group.
// Messages are unkeyed and spread over all partitions, so no order is
// promised; what this run proves is partition sharing and committed offsets
// surviving Close (TestContinueAfterSubscribeClose).
var groupFeatures = tests.Features{
	ConsumerGroups:                   true,
	ExactlyOnceDelivery:              false,
	GuaranteedOrder:                  false,
	Persistent:                       true,
	NewSubscriberReceivesOldMessages: false,
	RestartServiceCommand:            nil,
}

func TestPubSubNoGroup(t *testing.T) {
	b := kafkatest.NewBroker(t)
	tests.TestPubSub(t, noGroupFeatures,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, b.Brokers(), "", true)
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newPubSub(t, b.Brokers(), group, true)
		},
	)
}

func TestPubSubGroup(t *testing.T) {
	b := kafkatest.NewBroker(t)
	tests.TestPubSub(t, groupFeatures,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, b.Brokers(), perTestGroup(t), false)
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newPubSub(t, b.Brokers(), group, false)
		},
	)
}

// TestPubSubStress runs both suites ten times in parallel (STRESS_TEST_COUNT
// overrides ten). Enable with FANFARE_STRESS=1.
func TestPubSubStress(t *testing.T) {
	if !stressEnabled {
		t.Skip("stress suite: set FANFARE_STRESS=1")
	}
	b := kafkatest.NewBroker(t)
	t.Run("NoGroup", func(t *testing.T) {
		t.Parallel()
		tests.TestPubSubStressTest(t, noGroupFeatures,
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return newPubSub(t, b.Brokers(), "", true)
			},
			func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return newPubSub(t, b.Brokers(), group, true)
			},
		)
	})
	t.Run("Group", func(t *testing.T) {
		t.Parallel()
		tests.TestPubSubStressTest(t, groupFeatures,
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return newPubSub(t, b.Brokers(), perTestGroup(t), false)
			},
			func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return newPubSub(t, b.Brokers(), group, false)
			},
		)
	})
}
