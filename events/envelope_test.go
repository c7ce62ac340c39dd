package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fanfare/fanfare/events"
)

func validEnvelope() events.Envelope {
	return events.Envelope{
		ID:            uuid.MustParse("11111111-1111-4111-8111-111111111111"),
		Type:          "fanfare.accounts.v1.DepositConfirmed",
		Stream:        "deposit-42",
		CorrelationID: uuid.MustParse("22222222-2222-4222-8222-222222222222"),
		CausationID:   uuid.MustParse("33333333-3333-4333-8333-333333333333"),
		OccurredAt:    time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC),
		PolicyVersion: 3,
	}
}

const validEnvelopeJSON = `{"id":"11111111-1111-4111-8111-111111111111",` +
	`"type":"fanfare.accounts.v1.DepositConfirmed","stream":"deposit-42",` +
	`"correlation_id":"22222222-2222-4222-8222-222222222222",` +
	`"causation_id":"33333333-3333-4333-8333-333333333333",` +
	`"occurred_at":"2025-01-02T03:04:05.123456789Z","policy_version":3}`

func TestEnvelopeStoredForm(t *testing.T) {
	got, err := events.MarshalEnvelope(validEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != validEnvelopeJSON {
		t.Fatalf("MarshalEnvelope =\n%s\nwant\n%s", got, validEnvelopeJSON)
	}
	back, err := events.UnmarshalEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	if back != validEnvelope() {
		t.Fatalf("round trip = %+v; want %+v", back, validEnvelope())
	}
}

func TestEnvelopeKeepsItsFormInsideOtherJSON(t *testing.T) {
	type record struct {
		Meta events.Envelope `json:"meta"`
	}
	got, err := json.Marshal(record{Meta: validEnvelope()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"meta":` + validEnvelopeJSON + `}`; string(got) != want {
		t.Fatalf("json.Marshal = %s; want %s", got, want)
	}
	var back record
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.Meta != validEnvelope() {
		t.Fatalf("json.Unmarshal = %+v", back.Meta)
	}
	_, err = json.Marshal(record{})
	if !errors.Is(err, events.ErrInvalidEnvelope) {
		t.Fatalf("json.Marshal(invalid) error = %v; want ErrInvalidEnvelope", err)
	}
}

func TestEnvelopeOccurredAtIsStoredInUTC(t *testing.T) {
	e := validEnvelope()
	e.OccurredAt = time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
	got, err := events.MarshalEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"occurred_at":"2025-01-02T03:04:05Z"`) {
		t.Fatalf("MarshalEnvelope = %s; want occurred_at 2025-01-02T03:04:05Z", got)
	}
	back, err := events.UnmarshalEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	if !back.OccurredAt.Equal(e.OccurredAt) || back.OccurredAt.Location() != time.UTC {
		t.Fatalf("OccurredAt = %v; want %v in UTC", back.OccurredAt, e.OccurredAt)
	}
}

func TestEnvelopeValidateNamesEveryProblem(t *testing.T) {
	if err := validEnvelope().Validate(); err != nil {
		t.Fatalf("valid envelope: %v", err)
	}
	cases := map[string]struct {
		mutate func(*events.Envelope)
		want   []string
	}{
		"empty": {func(e *events.Envelope) { *e = events.Envelope{} }, []string{
			"id: required", "type: required", "stream: required", "correlation_id: required",
			"causation_id: required", "occurred_at: required", "policy_version: required",
		}},
		"bad type":     {func(e *events.Envelope) { e.Type = "DepositConfirmed" }, []string{`type: type name "DepositConfirmed" is not fanfare.<service>.v<N>.<Message>`}},
		"lower type":   {func(e *events.Envelope) { e.Type = "fanfare.accounts.v1.depositConfirmed" }, []string{"type: "}},
		"no version":   {func(e *events.Envelope) { e.Type = "fanfare.accounts.x.DepositConfirmed" }, []string{"type: "}},
		"year 10000":   {func(e *events.Envelope) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"occurred_at: year 10000"}},
		"no policy":    {func(e *events.Envelope) { e.PolicyVersion = 0 }, []string{"policy_version: required"}},
		"no causation": {func(e *events.Envelope) { e.CausationID = uuid.Nil }, []string{"causation_id: required"}},
	}
	for name, c := range cases {
		e := validEnvelope()
		c.mutate(&e)
		err := e.Validate()
		if !errors.Is(err, events.ErrInvalidEnvelope) {
			t.Errorf("%s: Validate = %v; want ErrInvalidEnvelope", name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", name, err, w)
			}
		}
		if b, merr := events.MarshalEnvelope(e); !errors.Is(merr, events.ErrInvalidEnvelope) || b != nil {
			t.Errorf("%s: MarshalEnvelope = %s, %v; want ErrInvalidEnvelope", name, b, merr)
		}
	}
}

func TestEnvelopeUnmarshalRejectsBadInput(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(validEnvelopeJSON, old, new, 1) }
	cases := map[string]struct {
		in   string
		want []string
	}{
		"not JSON":        {`{"id":`, []string{"invalid envelope: unexpected end of JSON input"}},
		"array":           {`[]`, []string{"invalid envelope: json: cannot unmarshal array"}},
		"null":            {`null`, []string{"id: required", "policy_version: required"}},
		"bad id":          {replace(`"id":"11111111-1111-4111-8111-111111111111"`, `"id":"nope"`), []string{`id: invalid UUID "nope"`}},
		"braced id":       {replace(`"id":"11111111-1111-4111-8111-111111111111"`, `"id":"{11111111-1111-4111-8111-111111111111}"`), []string{"id: invalid UUID", "canonical"}},
		"nil correlation": {replace("22222222-2222-4222-8222-222222222222", "00000000-0000-0000-0000-000000000000"), []string{"correlation_id: required"}},
		"local time":      {replace("05.123456789Z", "05.123456789+01:00"), []string{"occurred_at: not UTC"}},
		"not a time":      {replace("2025-01-02T03:04:05.123456789Z", "yesterday"), []string{`occurred_at: not RFC 3339: "yesterday"`}},
		"negative policy": {replace(`"policy_version":3`, `"policy_version":-1`), []string{"invalid envelope", "policy_version"}},
		"string policy":   {replace(`"policy_version":3`, `"policy_version":"3"`), []string{"invalid envelope", "policy_version"}},
		"trailing data":   {validEnvelopeJSON + `{}`, []string{"invalid envelope: invalid character"}},
	}
	for name, c := range cases {
		e, err := events.UnmarshalEnvelope([]byte(c.in))
		if !errors.Is(err, events.ErrInvalidEnvelope) {
			t.Errorf("%s: UnmarshalEnvelope error = %v; want ErrInvalidEnvelope", name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", name, err, w)
			}
		}
		if e != (events.Envelope{}) {
			t.Errorf("%s: failed UnmarshalEnvelope returned %+v", name, e)
		}
		// Through encoding/json, a failure leaves the target as it was.
		before := validEnvelope()
		target := before
		if err := json.Unmarshal([]byte(c.in), &target); err == nil || target != before {
			t.Errorf("%s: json.Unmarshal = %v, target %+v; want an error and the target unchanged", name, err, target)
		}
	}
}

func TestEnvelopeUnmarshalReportsEachFieldOnce(t *testing.T) {
	in := `{"id":"x","type":"","stream":"s","correlation_id":"22222222-2222-4222-8222-222222222222",` +
		`"causation_id":"33333333-3333-4333-8333-333333333333","occurred_at":"2025-01-02T03:04:05Z","policy_version":1}`
	_, err := events.UnmarshalEnvelope([]byte(in))
	if err == nil {
		t.Fatal("UnmarshalEnvelope succeeded")
	}
	msg := err.Error()
	if strings.Count(msg, "id: ") != 1 || strings.Contains(msg, "id: required") {
		t.Errorf("error %q should report the bad id once, as invalid", msg)
	}
	if !strings.Contains(msg, "type: required") {
		t.Errorf("error %q should also report the missing type", msg)
	}
}

func TestEnvelopeUnmarshalIgnoresUnknownFields(t *testing.T) {
	in := strings.Replace(validEnvelopeJSON, `{`, `{"actor":"finance-7",`, 1)
	e, err := events.UnmarshalEnvelope([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if e != validEnvelope() {
		t.Fatalf("UnmarshalEnvelope = %+v", e)
	}
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestEnvelopeTraceparentRoundTrip(t *testing.T) {
	e := validEnvelope()
	e.Traceparent = traceparent
	got, err := events.MarshalEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(validEnvelopeJSON, "}") + `,"traceparent":"` + traceparent + `"}`
	if string(got) != want {
		t.Fatalf("MarshalEnvelope =\n%s\nwant\n%s", got, want)
	}
	back, err := events.UnmarshalEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	if back != e {
		t.Fatalf("round trip = %+v; want %+v", back, e)
	}
	if tp := events.TraceparentOf(got); tp != traceparent {
		t.Fatalf("TraceparentOf = %q; want %q", tp, traceparent)
	}
	// Without one, the stored form is what it was before tracing.
	if tp := events.TraceparentOf([]byte(validEnvelopeJSON)); tp != "" {
		t.Fatalf("TraceparentOf(no traceparent) = %q", tp)
	}
}

// A traceparent is a hint: a malformed one is refused on write but read as
// none, so an event whose writer got it wrong stays readable.
func TestEnvelopeMalformedTraceparentIsDroppedOnRead(t *testing.T) {
	zeroTrace := "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
	for name, raw := range map[string]string{
		"nonsense":        `"not-a-traceparent"`,
		"upper case":      `"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"`,
		"zero trace id":   `"` + zeroTrace + `"`,
		"zero span id":    `"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"`,
		"version ff":      `"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`,
		"00 with extra":   `"` + traceparent + `-extra"`,
		"short":           `"` + traceparent[:54] + `"`,
		"a number":        `5`,
		"an object":       `{"traceparent":"` + traceparent + `"}`,
		"null":            `null`,
		"empty":           `""`,
		"bad separator":   `"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`,
		"non-hex flags":   `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"`,
		"later, no dash":  `"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"`,
		"escaped unicode": `"\u0030` + traceparent[1:] + `x"`,
	} {
		in := strings.TrimSuffix(validEnvelopeJSON, "}") + `,"traceparent":` + raw + `}`
		e, err := events.UnmarshalEnvelope([]byte(in))
		if err != nil {
			t.Errorf("%s: UnmarshalEnvelope = %v; want the envelope without its traceparent", name, err)
			continue
		}
		if e != validEnvelope() {
			t.Errorf("%s: UnmarshalEnvelope = %+v; want %+v", name, e, validEnvelope())
		}
		if tp := events.TraceparentOf([]byte(in)); tp != "" {
			t.Errorf("%s: TraceparentOf = %q; want none", name, tp)
		}
	}
	e := validEnvelope()
	e.Traceparent = zeroTrace
	if err := e.Validate(); !errors.Is(err, events.ErrInvalidEnvelope) || !strings.Contains(err.Error(), "traceparent: not a W3C traceparent") {
		t.Fatalf("Validate(zero trace id) = %v; want ErrInvalidEnvelope naming the traceparent", err)
	}
}

// A later version may add fields after the four version 00 has.
func TestEnvelopeAcceptsALaterTraceparentVersion(t *testing.T) {
	later := "01" + traceparent[2:] + "-what-comes-next"
	in := strings.TrimSuffix(validEnvelopeJSON, "}") + `,"traceparent":"` + later + `"}`
	e, err := events.UnmarshalEnvelope([]byte(in))
	if err != nil || e.Traceparent != later {
		t.Fatalf("UnmarshalEnvelope = %+v, %v; want traceparent %q", e, err, later)
	}
}
