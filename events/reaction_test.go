package events_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/fanfare/fanfare/events"
)

func TestReactionIDIsAFixedUUIDv5(t *testing.T) {
	source := uuid.MustParse("0b5f7a8e-3c2d-4e1f-9a6b-7c8d9e0f1a2b")
	// Values computed independently (Python's uuid.uuid5 with the documented
	// namespace); they must never change, stored reaction ids depend on them.
	cases := map[string]string{
		"royalty":  "c12e9d1e-3bf7-5717-93b3-743b9ac43515",
		"referral": "a2076600-521a-55f7-b216-a311e3b932e1",
	}
	for consumer, want := range cases {
		got := events.ReactionID(consumer, source)
		if got.String() != want {
			t.Errorf("ReactionID(%q) = %s; want %s", consumer, got, want)
		}
		if got.Version() != 5 || got.Variant() != uuid.RFC4122 {
			t.Errorf("ReactionID(%q) version %d variant %v; want 5, RFC4122", consumer, got.Version(), got.Variant())
		}
	}
}

func TestReactionIDDependsOnConsumerAndSource(t *testing.T) {
	a := uuid.MustParse("0b5f7a8e-3c2d-4e1f-9a6b-7c8d9e0f1a2b")
	b := uuid.MustParse("1b5f7a8e-3c2d-4e1f-9a6b-7c8d9e0f1a2b")
	first, second := events.ReactionID("royalty", a), events.ReactionID("royalty", a)
	if first != second {
		t.Fatal("same consumer and source gave different ids")
	}
	ids := map[uuid.UUID]string{}
	for _, c := range []struct {
		consumer string
		source   uuid.UUID
	}{{"royalty", a}, {"royalty", b}, {"referral", a}, {"referral", b}} {
		id := events.ReactionID(c.consumer, c.source)
		if prev, dup := ids[id]; dup {
			t.Fatalf("ReactionID(%s, %s) = ReactionID(%s)", c.consumer, c.source, prev)
		}
		if id == c.source {
			t.Fatalf("ReactionID(%s, %s) is the source id", c.consumer, c.source)
		}
		ids[id] = c.consumer + "/" + c.source.String()
	}
}
