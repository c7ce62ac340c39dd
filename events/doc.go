// Package events names, encodes and decodes Fanfare's events, and carries the
// envelope every event is stored with.
//
// # Schemas
//
// Every event is a protobuf message in proto/fanfare/events/v1 (proto package
// fanfare.events.v1, Go package eventsv1), one file per producing service or
// saga: accounts.proto, songs.proto, chains.proto, plays.proto,
// tipping.proto, escrow.proto, royalty.proto, referral.proto,
// crowdfund.proto. common.proto holds the value types events share (Money,
// Posting, Split, Policy, …); none of them is an event.
//
// The rule, which the registry applies to the generated descriptors (there is
// no hand-kept list):
//
//   - every top-level message of a file <service>.proto in package
//     fanfare.events.v1, other than common.proto, is an event;
//   - its type name is fanfare.<service>.v1.<Message>, for example
//     fanfare.accounts.v1.DepositConfirmed for message DepositConfirmed in
//     accounts.proto;
//   - nested messages and enums are parts of their event, not events.
//
// So adding an event is adding a message to its service's file and running
// `go tool buf generate`; adding a service is adding a file. Message names are
// unique within the proto package, so two services cannot define the same
// event name, and moving a message to another file renames its event (a
// breaking change; keep the old name readable with an upcaster).
//
// The service in a type name is the service that owns the event's contract,
// and Topic gives the Kafka topic the forwarder publishes it on,
// fanfare.<service>.v1. For facts that is the producer. Requests addressed to
// a service (LedgerTransactionRequested, HoldRequested, …) are defined in the
// file of the service that answers them, so they travel on that service's
// topic whichever saga appended them.
//
// Event type names are not proto full names: the message behind
// fanfare.accounts.v1.DepositConfirmed is fanfare.events.v1.DepositConfirmed.
// Resolve type names through this package, never through protoregistry.
//
// # Encoding
//
// Event data is the deterministic binary protobuf encoding of the message
// (Encode); the event store's event type is the type name. Decode turns both
// back into a message, applying upcasters first.
//
// # Versions and upcasters
//
// The version is part of the type name. A stored event whose type is no longer
// generated (fanfare.accounts.v0.Deposited, or a renamed message) is kept
// readable by an Upcaster registered under its old type name: it rewrites
// (type, data) into a newer type and encoding. Upcasters chain until a type
// has none, so v0 → v1 → v2 takes one upcaster per step. The forwarder should
// publish upcast events, so Kafka consumers only ever see current types.
//
// # Envelope
//
// Envelope is the metadata stored with each event (JSON in the event store's
// metadata): event id, type, stream, correlation and causation ids, when it
// occurred and the policy version in force.
//
// # Reactions
//
// ReactionID gives the id of what a consumer writes in reaction to an event,
// so a redelivered event appends nothing new.
package events
