// Package kafka is Fanfare's Kafka plumbing, written once for every service:
// a watermill Publisher and Subscriber built on franz-go (kgo), the embedded
// broker used by `fanfare dev` (franz-go's kfake, persisted to a data
// directory), the topic admin step, and the one watermill Router constructor
// every consumer shares.
//
// Delivery contract of the Subscriber:
//
//   - At-least-once. Offsets are committed only for acknowledged messages.
//   - Per partition, a message is acknowledged before the next one of that
//     partition is delivered; a Nack redelivers the same record, so order
//     per partition (and therefore per partition key) is kept.
//   - Different partitions are delivered concurrently.
//
// The partition key is taken from the message metadata key
// [PartitionKeyMetadataKey] (the event's stream id), so one aggregate's
// events stay in one partition and in order.
//
// A consumed message's context has its producer's span (the W3C trace
// context in [TraceparentMetadataKey]) as remote parent; the event group
// processor runs each handler in a consumer span under it, and
// ConsumeBatches each batch in one span linked to every producer.
package kafka
