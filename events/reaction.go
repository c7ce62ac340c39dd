package events

import "github.com/google/uuid"

// reactionNamespace is the UUIDv5 namespace of reaction ids. Every stored
// reaction id depends on it: never change it.
var reactionNamespace = uuid.MustParse("c8f90846-4ebf-494b-ba44-5b9458c32a55")

// ReactionID returns the id of the event a consumer writes in reaction to the
// source event: the UUIDv5, in namespace c8f90846-4ebf-494b-ba44-5b9458c32a55,
// of "<consumer>/<source event id>". The consumer is its stable handler name
// (the Kafka consumer group). A redelivered source event yields the same id,
// so the event store's idempotent append writes nothing new. A consumer that
// writes several events in reaction to one source must tell them apart
// itself, e.g. by deriving each from a distinct consumer name.
func ReactionID(consumer string, sourceEventID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(reactionNamespace, []byte(consumer+"/"+sourceEventID.String()))
}
