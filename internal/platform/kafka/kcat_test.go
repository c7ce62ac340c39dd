package kafka_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/kafka/kafkatest"
)

// The embedded broker speaks real Kafka: Debian's kcat (librdkafka, no
// franz-go code) lists its topics, reads what our Publisher wrote, and
// writes what our Subscriber reads. kcat missing is a failure, not a skip.
func TestKcatAgainstEmbeddedBroker(t *testing.T) {
	kcat := kafkatest.RequireKcat(t)
	b := kafkatest.NewBroker(t)
	topic := uniqueTopic("fanfare.kcat.v1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pub := mustPublisher(t, b.Brokers())
	sent := keyed("account-9", `{"amount":125}`)
	sent.Metadata.Set("event_type", "Credited")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}

	// Metadata: the topic with its twelve partitions.
	out, err := kafkatest.RunKcat(ctx, "-L", "-b", b.Addr(), "-t", topic)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `topic "`+topic+`" with 12 partitions`) {
		t.Fatalf("kcat -L does not list %s with 12 partitions:\n%s", topic, out)
	}

	// Consume: key, payload and headers as our Publisher wrote them.
	out, err = kafkatest.RunKcat(ctx, "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-c", "1", "-e", "-J")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"`
	}
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("kcat -J output %q: %v", out, err)
	}
	headers := map[string]string{}
	for i := 0; i+1 < len(rec.Headers); i += 2 {
		headers[rec.Headers[i]] = rec.Headers[i+1]
	}
	if rec.Key != "account-9" || rec.Payload != `{"amount":125}` ||
		headers[kafka.UUIDHeader] != sent.UUID || headers["event_type"] != "Credited" {
		t.Fatalf("kcat read key %q payload %q headers %v", rec.Key, rec.Payload, headers)
	}

	// Produce with kcat, consume with our Subscriber.
	produce := exec.CommandContext(ctx, kcat, "-P", "-b", b.Addr(), "-t", topic, "-k", "account-10", "-H", "event_type=Debited")
	produce.Stdin = strings.NewReader("from-kcat")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v: %s", err, out)
	}
	sub := mustSubscriber(t, testSubscriberConfig(b.Brokers(), ""))
	ch := mustSubscribe(t, sub, topic)
	for {
		msg := receive(t, ch, waitLong)
		msg.Ack()
		if msg.UUID == sent.UUID {
			continue
		}
		if string(msg.Payload) != "from-kcat" || msg.Metadata.Get("event_type") != "Debited" ||
			msg.Metadata.Get(kafka.PartitionKeyMetadataKey) != "account-10" {
			t.Fatalf("subscriber read %q %v from kcat", msg.Payload, msg.Metadata)
		}
		break
	}
}
