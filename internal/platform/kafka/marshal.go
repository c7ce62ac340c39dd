package kafka

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// PartitionKeyMetadataKey is the metadata key whose value becomes the
	// Kafka record key. Fanfare puts the event's stream id there, so every
	// event of one aggregate lands in one partition, in order.
	PartitionKeyMetadataKey = "partition_key"

	// UUIDHeader carries the watermill message UUID. The name matches
	// watermill-kafka so records stay readable by its tooling.
	UUIDHeader = "_watermill_message_uuid"
)

// recordIDNamespace derives a stable message UUID for records that were not
// written by watermill (kcat, other producers). Stable, because consumers
// derive idempotency keys from the source message id.
var recordIDNamespace = uuid.MustParse("6f1b8f0e-8f0b-4c55-9d8c-3f7c1d6a2b10")

// SetPartitionKey sets the partition key (stream id) of msg.
func SetPartitionKey(msg *message.Message, key string) {
	msg.Metadata.Set(PartitionKeyMetadataKey, key)
}

// toRecord converts a watermill message into a Kafka record: UUID and every
// metadata entry travel as headers, the partition key as the record key.
func toRecord(topic string, msg *message.Message) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)
	headers = append(headers, kgo.RecordHeader{Key: UUIDHeader, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	rec := &kgo.Record{
		Topic:   topic,
		Value:   msg.Payload,
		Headers: headers,
	}
	if key := msg.Metadata.Get(PartitionKeyMetadataKey); key != "" {
		rec.Key = []byte(key)
	}
	return rec
}

// toMessage converts a consumed record back into a watermill message.
func toMessage(rec *kgo.Record) *message.Message {
	var id string
	md := make(message.Metadata, len(rec.Headers))
	for _, h := range rec.Headers {
		if h.Key == UUIDHeader {
			id = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if id == "" {
		id = uuid.NewSHA1(recordIDNamespace, []byte(rec.Topic+"/"+
			strconv.FormatInt(int64(rec.Partition), 10)+"/"+
			strconv.FormatInt(rec.Offset, 10))).String()
	}
	// Records from foreign producers carry only the key; expose it the same
	// way our own records do.
	if _, ok := md[PartitionKeyMetadataKey]; !ok && len(rec.Key) > 0 {
		md[PartitionKeyMetadataKey] = string(rec.Key)
	}
	msg := message.NewMessage(id, rec.Value)
	msg.Metadata = md
	return msg
}

// RecordInfo locates a consumed message in Kafka.
type RecordInfo struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Timestamp time.Time
}

type recordInfoKey struct{}

func withRecordInfo(ctx context.Context, rec *kgo.Record) context.Context {
	return context.WithValue(ctx, recordInfoKey{}, RecordInfo{
		Topic:     rec.Topic,
		Partition: rec.Partition,
		Offset:    rec.Offset,
		Key:       rec.Key,
		Timestamp: rec.Timestamp,
	})
}

// RecordFromContext returns where the message whose context this is was read
// from. ok is false for contexts that did not come from this Subscriber.
func RecordFromContext(ctx context.Context) (info RecordInfo, ok bool) {
	info, ok = ctx.Value(recordInfoKey{}).(RecordInfo)
	return info, ok
}
