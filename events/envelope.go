package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/tracing"
	"github.com/google/uuid"
)

// ErrInvalidEnvelope is returned for an envelope that is missing a field or
// holds a malformed one. The message lists every problem.
var ErrInvalidEnvelope = errors.New("invalid envelope")

// Envelope is the metadata stored with every event, as JSON in the event
// store's event metadata:
//
//	{"id":"…","type":"fanfare.accounts.v1.DepositConfirmed","stream":"deposit-…",
//	 "correlation_id":"…","causation_id":"…",
//	 "occurred_at":"2025-01-02T03:04:05.123456789Z","policy_version":3,
//	 "traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
//
// Every field is required but traceparent, which is there only when the
// event was written inside a trace. An event that starts a flow (the first
// event of a request) uses the request's id as both correlation and
// causation id; an event written in reaction to another keeps its
// correlation id and uses its event id as causation id.
type Envelope struct {
	// ID is the event id; the event store's event id.
	ID uuid.UUID
	// Type is the event's type name, fanfare.<service>.v<N>.<Message>.
	Type string
	// Stream is the event store stream the event is appended to.
	Stream string
	// CorrelationID ties together every event of one flow.
	CorrelationID uuid.UUID
	// CausationID is the id of the event or request that caused this one.
	CausationID uuid.UUID
	// OccurredAt is when the event happened; stored as RFC 3339 with
	// nanoseconds, in UTC.
	OccurredAt time.Time
	// PolicyVersion is the policy version in force when the event happened
	// (≥ 1; see PolicyVersioned).
	PolicyVersion uint64
	// Traceparent is the W3C trace context of the span the event was
	// written in ("00-<trace id>-<span id>-<flags>"), so the work that
	// reacts to the event joins its trace; "" for none. Optional: events
	// written before tracing, or outside a trace, have none.
	Traceparent string
}

// envelopeJSON is the stored form of Envelope.
type envelopeJSON struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Stream        string `json:"stream"`
	CorrelationID string `json:"correlation_id"`
	CausationID   string `json:"causation_id"`
	OccurredAt    string `json:"occurred_at"`
	PolicyVersion uint64 `json:"policy_version"`
	// Traceparent stays the last field: TraceparentOf looks only there.
	Traceparent traceparentJSON `json:"traceparent,omitempty"`
}

// traceparentJSON reads leniently: a traceparent is only a hint for
// tracing, so a malformed one (or one of another JSON type) reads as none
// instead of making its event unreadable.
type traceparentJSON string

func (t *traceparentJSON) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil && ValidTraceparent(s) {
		*t = traceparentJSON(s)
	}
	return nil
}

// ValidTraceparent reports whether s is a W3C traceparent, by the same
// parser that continues the trace from it (OpenTelemetry's TraceContext).
func ValidTraceparent(s string) bool { return tracing.Parse(s).IsValid() }

// TraceparentOf is the traceparent in an envelope's stored form as
// MarshalEnvelope writes it, "" when it has none or a malformed one. It
// looks at the last field only, where MarshalEnvelope puts the
// traceparent, and validates nothing else: the forwarder passes the
// traceparent on for every event, and an envelope without one costs it a
// few nanoseconds.
func TraceparentOf(data []byte) string {
	const key = `"traceparent":"`
	// A traceparent holds no comma, quote or backslash, so the last comma
	// comes right before its field.
	i := bytes.LastIndexByte(data, ',')
	if i < 0 || !bytes.HasPrefix(data[i+1:], []byte(key)) {
		return ""
	}
	value, ok := bytes.CutSuffix(data[i+1+len(key):], []byte(`"}`))
	if !ok {
		return ""
	}
	if s := string(value); ValidTraceparent(s) {
		return s
	}
	return ""
}

// problem is one thing wrong with one field of an envelope.
type problem struct{ field, detail string }

// problems lists what is wrong with e, field by field.
func (e Envelope) problems() []problem {
	var ps []problem
	required := func(field string, missing bool) {
		if missing {
			ps = append(ps, problem{field, "required"})
		}
	}
	required("id", e.ID == uuid.Nil)
	if e.Type == "" {
		required("type", true)
	} else if _, known := reg.byName[e.Type]; !known { // the pattern costs more than the map
		if err := checkTypeName(e.Type); err != nil {
			ps = append(ps, problem{"type", err.Error()})
		}
	}
	required("stream", e.Stream == "")
	required("correlation_id", e.CorrelationID == uuid.Nil)
	required("causation_id", e.CausationID == uuid.Nil)
	if e.OccurredAt.IsZero() {
		required("occurred_at", true)
	} else if y := e.OccurredAt.UTC().Year(); y < 0 || y > 9999 {
		ps = append(ps, problem{"occurred_at", fmt.Sprintf("year %d outside 0000–9999", y)})
	}
	required("policy_version", e.PolicyVersion == 0)
	if e.Traceparent != "" && !ValidTraceparent(e.Traceparent) {
		ps = append(ps, problem{"traceparent", fmt.Sprintf("not a W3C traceparent: %q", e.Traceparent)})
	}
	return ps
}

func invalid(ps []problem) error {
	if len(ps) == 0 {
		return nil
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.field + ": " + p.detail
	}
	return fmt.Errorf("%w: %s", ErrInvalidEnvelope, strings.Join(parts, "; "))
}

// Validate reports every missing or malformed field.
//
// Errors: ErrInvalidEnvelope.
func (e Envelope) Validate() error {
	return invalid(e.problems())
}

// MarshalEnvelope returns the stored form of a valid envelope, with
// OccurredAt in UTC.
//
// Errors: ErrInvalidEnvelope.
func MarshalEnvelope(e Envelope) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(envelopeJSON{
		ID:            e.ID.String(),
		Type:          e.Type,
		Stream:        e.Stream,
		CorrelationID: e.CorrelationID.String(),
		CausationID:   e.CausationID.String(),
		OccurredAt:    e.OccurredAt.UTC().Format(time.RFC3339Nano),
		PolicyVersion: e.PolicyVersion,
		Traceparent:   traceparentJSON(e.Traceparent),
	})
}

// UnmarshalEnvelope parses and validates the stored form. Unknown fields are
// ignored, so newer writers may add some. OccurredAt must be UTC (a trailing
// Z) and ids in canonical UUID form. A malformed traceparent is dropped, not
// an error: it must never make an event unreadable.
//
// Errors: ErrInvalidEnvelope, for malformed JSON or any missing or invalid
// field; the message names each.
func UnmarshalEnvelope(data []byte) (Envelope, error) {
	var j envelopeJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	var parsed []problem
	id := func(field, s string) uuid.UUID {
		if s == "" {
			return uuid.Nil // reported as required
		}
		u, err := uuid.Parse(s)
		if err == nil && len(s) != 36 {
			err = errors.New("not in the canonical 8-4-4-4-12 form")
		}
		if err != nil {
			parsed = append(parsed, problem{field, fmt.Sprintf("invalid UUID %q: %v", s, err)})
			return uuid.Nil
		}
		return u
	}
	e := Envelope{
		ID:            id("id", j.ID),
		Type:          j.Type,
		Stream:        j.Stream,
		CorrelationID: id("correlation_id", j.CorrelationID),
		CausationID:   id("causation_id", j.CausationID),
		PolicyVersion: j.PolicyVersion,
		Traceparent:   string(j.Traceparent),
	}
	if j.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, j.OccurredAt)
		switch {
		case err != nil:
			parsed = append(parsed, problem{"occurred_at", fmt.Sprintf("not RFC 3339: %q", j.OccurredAt)})
		case !strings.HasSuffix(j.OccurredAt, "Z"):
			parsed = append(parsed, problem{"occurred_at", fmt.Sprintf("not UTC (want a trailing Z): %q", j.OccurredAt)})
		default:
			e.OccurredAt = t
		}
	}
	// Report each field once: a field that did not parse is also zero.
	ps := parsed
	for _, p := range e.problems() {
		if !slices.ContainsFunc(parsed, func(q problem) bool { return q.field == p.field }) {
			ps = append(ps, p)
		}
	}
	if err := invalid(ps); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// MarshalJSON implements json.Marshaler with MarshalEnvelope, so an Envelope
// inside another JSON document keeps its stored form.
func (e Envelope) MarshalJSON() ([]byte, error) {
	return MarshalEnvelope(e)
}

// UnmarshalJSON implements json.Unmarshaler with UnmarshalEnvelope; on error
// *e is left unchanged. (json.Unmarshal reports malformed JSON itself, before
// calling it, without ErrInvalidEnvelope; UnmarshalEnvelope does not.)
func (e *Envelope) UnmarshalJSON(data []byte) error {
	out, err := UnmarshalEnvelope(data)
	if err != nil {
		return err
	}
	*e = out
	return nil
}
